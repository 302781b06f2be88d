"""Export a run directory to one ONNX classifier file with the model contract's metadata.

The export is checked before it is accepted: the ONNX model and the Keras model must agree
(max absolute difference at most `tolerance`) on real inputs built from the run's dataset
by the runtime's windowing, and the written file must pass engine.classify.contract's checks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelError
from engine.paths import write_atomically
from engine.classify.contract import Contract, expected_input_shapes, open_model, write_metadata
from trainer.dataset import Dataset, load, split_protocol
from trainer.training import MODEL_FILE, RUN_FILE
from trainer.windows import PER_IMAGE_KINDS, build_windows, training_contract

OPSET = 17
PARITY_SAMPLES = 64


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    n_checked: int
    size_bytes: int


def read_run(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ModelError(f"{run_dir}: no {RUN_FILE}; pass a run directory written by `engine train`")
    return json.loads(path.read_text(encoding="utf-8"))


def run_contract(run: dict[str, Any]) -> Contract:
    """The contract a run trained for; a run from before `min_window` trained on full windows only."""
    return training_contract(run["input_kind"], tuple(run["labels"]), run["window"], run["stride"], run["fps"],
                             run["image_size"], run.get("min_window", run["window"]))


def parity_inputs(run: dict[str, Any], dataset: Dataset, n: int = PARITY_SAMPLES) -> list[np.ndarray]:
    """Up to n real model inputs (windows, or images for per-image kinds) from the test subjects."""
    contract = run_contract(run)
    _, test = split_protocol(dataset)
    picked = np.flatnonzero(test)
    # A spread of sequences (every class), not the first few of one.
    picked = picked[np.linspace(0, len(picked) - 1, min(len(picked), 22)).astype(int)] if len(picked) else picked
    ws = build_windows(dataset, picked, contract)
    if not len(ws):
        raise ModelError(f"{dataset.path}: no window to check the export on; pass --data with sequences of at least {contract.min_window} model frames")
    if run["input_kind"] in PER_IMAGE_KINDS:
        rows = np.linspace(0, len(ws.frame_labels) - 1, min(n, len(ws.frame_labels))).astype(int)
        return ws.frame_inputs(rows)
    rows = np.linspace(0, len(ws) - 1, min(n, len(ws))).astype(int)
    return ws.inputs(rows)


def _validation_text(run: dict[str, Any]) -> str:
    if run.get("folds", 1) == 0:
        return f"no validation, {run.get('epochs')} epochs fixed beforehand"
    return f"{run.get('folds', 1)}-fold validation: {run['subjects']['validation']}"


def export(run_dir: str | Path, out_path: str | Path, data: str | Path | None = None, tolerance: float = 1e-4) -> ExportResult:
    """Write the run's model as ONNX with contract metadata; raises ModelError if parity fails."""
    from trainer.training import configure_tensorflow

    run = read_run(run_dir)
    configure_tensorflow(1)
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    model = keras.models.load_model(Path(run_dir) / MODEL_FILE, compile=False)
    contract = run_contract(run)
    shapes = expected_input_shapes(contract)
    if run["input_kind"] in PER_IMAGE_KINDS:
        names = [f"image_{s}" for s in contract.pyramid_sizes] if run["input_kind"] == "skeleton_pyramid" else ["image"]
    else:
        names = ["features" if run["input_kind"] in ("keypoint_sequence", "pair") else "images"]
    spec = tuple(tf.TensorSpec((None,) + tuple(shape[1:]), tf.float32, name=name) for name, shape in zip(names, shapes))
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)

    metrics = {k: round(float(v), 4) if isinstance(v, float) else v for k, v in run["metrics"].items()}
    metrics["evaluated_on"] = "protocol test subjects of the training dataset, Keras model, runtime windowing"
    fields: dict[str, Any] = {
        "labels": run["labels"],
        "input_kind": run["input_kind"],
        "image_size": run["image_size"],
        "window": run["window"],
        "stride": run["stride"],
        "min_window": contract.min_window,
        "padding": contract.padding,
        "fps": run["fps"],
        "trained_on": f"{Path(run['dataset']).name} ({run['command'] or 'engine train'}); subjects {run['subjects']['fit']} "
        f"trained ({_validation_text(run)}), {run['subjects']['test']} tested",
        "metrics": metrics,
    }
    if run.get("feature_version") is not None:
        fields["feature_version"] = run["feature_version"]
    if run.get("unknown_below"):
        fields["unknown_below"] = run["unknown_below"]
    if run.get("unknown_labels"):
        fields["unknown_labels"] = run["unknown_labels"]
    write_metadata(proto, fields)
    proto.producer_name = "har-engine trainer"

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    checked: dict[str, float | int] = {}

    def write_checked(tmp: str) -> None:
        """Save, then run the saved file against Keras; a failed check leaves no file behind."""
        onnx.save(proto, tmp)
        dataset = load(data or run["dataset"])
        inputs = parity_inputs(run, dataset)
        _, session = open_model(tmp)
        feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
        got = session.run(None, feeds)[0]
        want = np.asarray(model(inputs if len(inputs) > 1 else inputs[0], training=False), np.float32)
        diff = float(np.max(np.abs(got - want)))
        if not diff <= tolerance:
            raise ModelError(f"{run_dir}: ONNX and Keras outputs differ by {diff:.2e} (> {tolerance:g}) on {len(got)} real inputs; the export is not trusted")
        checked.update(diff=diff, n=len(got))

    write_atomically(out, write_checked, suffix=".onnx")  # a model is meant to be shared: 0644
    diff, n_checked = float(checked["diff"]), int(checked["n"])
    return ExportResult(out, diff, n_checked, out.stat().st_size)
