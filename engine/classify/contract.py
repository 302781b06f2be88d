"""The classifier model contract: the one module that knows the `.onnx` metadata keys.

A classifier is one ONNX file whose `metadata_props` say everything the classify stage
needs (see docs/architecture.md, "Model contract"). Every check happens here, before any
inference, so a bad file is refused with one line naming the file, the key and the fix.

Short tracks (optional keys `min_window`, `padding`): a track with at least `min_window` model
frames but fewer than `window` is classified on a *partial window*, padded at the front to
`window` frames by repeating its first model frame (`padding` = `first_frame`, the only rule:
it needs no change to the graph's inputs and fits images as well as keypoints), every
`stride` model frames until the window is full. Training, `engine evaluate` and the classify
stage all make these windows (engine.classify.runtime.TrackWindow). A file without
`min_window` was trained on full windows only, so its default is `window`: it runs as before.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from engine.errors import ModelError

INPUT_KINDS: tuple[str, ...] = ("skeleton_sequence", "skeleton_image", "skeleton_pyramid", "keypoint_sequence", "pair")
# `pair`: two people's keypoints per window, float32[B, W, F] rows of engine.classify.pairs
# (`feature_version` there is the pair feature version); the classify stage feeds it tracks it paired.
IMAGE_KINDS: frozenset[str] = frozenset({"skeleton_sequence", "skeleton_image", "skeleton_pyramid"})
REQUIRED_KEYS: tuple[str, ...] = ("labels", "input_kind", "image_size", "window", "stride", "fps", "trained_on", "metrics")
OPTIONAL_KEYS: tuple[str, ...] = ("feature_version", "min_window", "padding", "unknown_below", "unknown_labels")
PADDINGS: tuple[str, ...] = ("first_frame",)  # how a partial window is filled up to `window` frames
PYRAMID_LEVELS = 4  # image_size, /2, /4, /8 as in the research's autoencoder pyramid
MAX_MODEL_BYTES = 1 << 30  # a classifier is small; a bigger file is almost surely the wrong file
_FIX = "re-export it with `engine export` (the model contract is in docs/architecture.md)"


@dataclass(frozen=True)
class Contract:
    """What a classifier file promises; read from its metadata and checked against its graph.

    input_shapes hold None for symbolic dimensions (the batch dimension normally is).
    """

    path: str
    labels: tuple[str, ...]
    input_kind: str
    image_size: int
    window: int
    stride: int
    min_window: int  # model frames before a track's first (partial) window; == window: full windows only
    padding: str
    fps: float
    trained_on: str
    metrics: dict[str, Any] = field(compare=False, hash=False)
    feature_version: int | None
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]
    output_shape: tuple[int | None, ...]
    # Open set (optional keys): a smoothed top score under `unknown_below` (chosen on validation
    # data by the trainer) or a top label in `unknown_labels` (a class of "none of my actions"
    # trained on negatives) is published as `unknown`.
    unknown_below: float = 0.0
    unknown_labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The model's file stem, used as `model` in label messages."""
        return Path(self.path).stem

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def pyramid_sizes(self) -> tuple[int, ...]:
        """Image sizes of the pyramid levels, largest first."""
        return tuple(self.image_size >> i for i in range(PYRAMID_LEVELS))

    def with_min_window_s(self, seconds: float) -> "Contract":
        """This contract with `min_window` set from seconds (floor, 1 to `window` model frames)."""
        return replace(self, min_window=model_frames(seconds, self.fps, self.window))

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph insists on, or None when it is symbolic (the normal case)."""
        return self.input_shapes[0][0] if self.input_shapes and self.input_shapes[0] else None


def model_frames(seconds: float, fps: float, window: int) -> int:
    """Model frames in `seconds` at `fps`, rounded down (a clip that long then has them all), in [1, window]."""
    return max(1, min(int(window), math.floor(seconds * fps + 1e-6)))


def load_contract(path: str | os.PathLike[str]) -> Contract:
    """Read and check the contract of a classifier file; raises ModelError naming the problem."""
    contract, _ = open_model(path)
    return contract


def open_model(path: str | os.PathLike[str], threads: int = 1) -> tuple[Contract, Any]:
    """Load a classifier and check it fully; returns (contract, onnxruntime.InferenceSession)."""
    import onnxruntime as ort

    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {p}; pass the path of an exported classifier .onnx (see models/)")
    if not p.is_file():
        raise ModelError(f"model path is not a file: {p}; pass the path of a classifier .onnx file")
    size = p.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelError(
            f"{p}: {size / 2**30:.1f} GiB is over the 1 GiB limit for a classifier; check that this is the right file"
        )
    if threads < 1:
        raise ModelError(f"{p}: threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(p), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several pybind types for unreadable files
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{p}: not an ONNX model onnxruntime can load ({reason}); {_FIX}") from None
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    contract = _contract_from(
        p,
        metadata,
        tuple(i.name for i in inputs),
        tuple(_shape(i.shape) for i in inputs),
        _shape(outputs[0].shape) if outputs else (),
    )
    return contract, session


def write_metadata(model: Any, contract_fields: Mapping[str, Any]) -> None:
    """Set the contract keys on an `onnx.ModelProto` in place (lists/dicts as JSON, numbers as text).

    Used by the exporter and the tests; replaces keys already there and keeps other keys.
    """
    values = {key: _to_text(value) for key, value in contract_fields.items()}
    unknown = sorted(set(values) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ModelError(f"unknown model metadata key(s) {', '.join(unknown)}: use {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}")
    kept = [(prop.key, prop.value) for prop in model.metadata_props if prop.key not in values]
    del model.metadata_props[:]
    for key, value in kept + list(values.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def _shape(dims: Any) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in (dims or ()))


def _contract_from(
    path: Path,
    metadata: Mapping[str, str],
    input_names: tuple[str, ...],
    input_shapes: tuple[tuple[int | None, ...], ...],
    output_shape: tuple[int | None, ...],
) -> Contract:
    for key in REQUIRED_KEYS:
        if key not in metadata:
            raise ModelError(f"{path}: model metadata key {key!r} is missing; {_FIX} so it sets all of {', '.join(REQUIRED_KEYS)}")

    def bad(key: str, expected: str) -> ModelError:
        return ModelError(f"{path}: model metadata key {key!r} must be {expected}, got {metadata[key][:80]!r}; {_FIX}")

    try:
        labels = json.loads(metadata["labels"])
    except ValueError:
        raise bad("labels", "a JSON list of class names") from None
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise bad("labels", "a JSON list of distinct, non-empty class names")
    if "unknown" in labels:
        raise bad("labels", "class names other than 'unknown' (the runtime's label for low confidence)")

    input_kind = metadata["input_kind"]
    if input_kind not in INPUT_KINDS:
        raise ModelError(f"{path}: model metadata key 'input_kind' is {input_kind[:80]!r}; accepted: {', '.join(INPUT_KINDS)}")

    image_size = _int(metadata, "image_size", bad, minimum=0)
    window = _int(metadata, "window", bad, minimum=1)
    stride = _int(metadata, "stride", bad, minimum=1)
    try:
        fps = float(metadata["fps"])
    except ValueError:
        raise bad("fps", "a frame rate in frames per second") from None
    if not math.isfinite(fps) or not 0 < fps <= 1000:
        raise bad("fps", "a frame rate above 0 and at most 1000")
    try:
        metrics = json.loads(metadata["metrics"])
    except ValueError:
        raise bad("metrics", "a JSON object") from None
    if not isinstance(metrics, dict):
        raise bad("metrics", "a JSON object")
    feature_version = _int(metadata, "feature_version", bad, minimum=1) if "feature_version" in metadata else None
    min_window = _int(metadata, "min_window", bad, minimum=1) if "min_window" in metadata else window
    if min_window > window:
        raise bad("min_window", f"an integer from 1 to the window ({window})")
    unknown_below = 0.0
    if "unknown_below" in metadata:
        try:
            unknown_below = float(metadata["unknown_below"])
        except ValueError:
            raise bad("unknown_below", "a score from 0 to 1") from None
        if not 0.0 <= unknown_below <= 1.0:
            raise bad("unknown_below", "a score from 0 to 1")
    unknown_labels: tuple[str, ...] = ()
    if "unknown_labels" in metadata:
        try:
            names = json.loads(metadata["unknown_labels"])
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) and n in labels for n in names):
            raise bad("unknown_labels", "a JSON list of names from 'labels'")
        unknown_labels = tuple(names)
    padding = metadata.get("padding", PADDINGS[0])
    if padding not in PADDINGS:
        raise ModelError(f"{path}: model metadata key 'padding' is {padding[:80]!r}; accepted: {', '.join(PADDINGS)}")

    if input_kind in IMAGE_KINDS:
        if image_size < 8 or (input_kind == "skeleton_pyramid" and image_size % 8):
            raise bad("image_size", "at least 8" + (" and a multiple of 8 for a pyramid" if input_kind == "skeleton_pyramid" else ""))
    if input_kind == "keypoint_sequence" and feature_version is not None:
        from engine.classify.features import SUPPORTED_VERSIONS

        if feature_version not in SUPPORTED_VERSIONS:
            raise ModelError(
                f"{path}: model metadata key 'feature_version' is {feature_version} but this engine computes keypoint "
                f"features version {', '.join(map(str, SUPPORTED_VERSIONS))}; retrain or re-export the model with this engine"
            )
    if input_kind == "pair":
        from engine.classify.pairs import PAIR_SUPPORTED_VERSIONS

        if (feature_version or 1) not in PAIR_SUPPORTED_VERSIONS:
            raise ModelError(
                f"{path}: model metadata key 'feature_version' is {feature_version} but this engine computes pair "
                f"features version {', '.join(map(str, PAIR_SUPPORTED_VERSIONS))}; retrain or re-export the model with this engine"
            )

    contract = Contract(
        path=str(path),
        labels=tuple(labels),
        input_kind=input_kind,
        image_size=image_size,
        window=window,
        stride=stride,
        min_window=min_window,
        padding=padding,
        fps=fps,
        trained_on=metadata["trained_on"],
        metrics=metrics,
        feature_version=feature_version,
        input_names=input_names,
        input_shapes=input_shapes,
        output_shape=output_shape,
        unknown_below=unknown_below,
        unknown_labels=unknown_labels,
    )
    _check_graph(contract)
    return contract


def _int(metadata: Mapping[str, str], key: str, bad: Any, minimum: int) -> int:
    try:
        value = int(metadata[key].strip())
    except ValueError:
        raise bad(key, f"an integer >= {minimum}") from None
    if value < minimum:
        raise bad(key, f"an integer >= {minimum}")
    return value


def expected_input_shapes(contract: Contract) -> list[tuple[int | None, ...]]:
    """The input shapes the metadata implies, batch dimension as None, in session input order."""
    w, s = contract.window, contract.image_size
    if contract.input_kind == "keypoint_sequence":
        from engine.classify.features import feature_layout

        return [(None, w, feature_layout(contract.feature_version).n_features)]
    if contract.input_kind == "pair":
        from engine.classify.pairs import pair_n_features

        return [(None, w, pair_n_features(contract.feature_version))]
    if contract.input_kind == "skeleton_sequence":
        return [(None, w, s, s, 3)]
    if contract.input_kind == "skeleton_image":
        return [(None, s, s, 3)]
    return [(None, size, size, 3) for size in contract.pyramid_sizes]


def _check_graph(contract: Contract) -> None:
    path = contract.path
    expected = expected_input_shapes(contract)
    if len(contract.input_shapes) != len(expected):
        raise ModelError(
            f"{path}: input_kind {contract.input_kind!r} needs {len(expected)} model input(s), the graph has "
            f"{len(contract.input_shapes)}; {_FIX}"
        )
    batch = {shape[0] for shape in contract.input_shapes if shape}
    for name, got, want in zip(contract.input_names, contract.input_shapes, expected):
        # A dimension the graph leaves symbolic is accepted; a fixed one must agree with the metadata.
        if len(got) != len(want) or any(g is not None and w is not None and g != w for g, w in zip(got[1:], want[1:])):
            raise ModelError(
                f"{path}: model input {name!r} has shape {_fmt(got)} but the metadata (input_kind "
                f"{contract.input_kind}, window {contract.window}, image_size {contract.image_size}) implies "
                f"{_fmt(want)}; {_FIX}"
            )
    if len(batch) > 1:
        raise ModelError(f"{path}: model inputs disagree on the batch dimension {sorted(map(str, batch))}; {_FIX}")
    out = contract.output_shape
    if len(out) != 2 or (out[1] is not None and out[1] != contract.n_classes):
        raise ModelError(
            f"{path}: first model output has shape {_fmt(out)} but metadata key 'labels' names "
            f"{contract.n_classes} classes, so it must be [B, {contract.n_classes}]; {_FIX}"
        )


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("B" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + "]"
