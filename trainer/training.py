"""Train one model on a dataset file and leave a run directory (imports TensorFlow).

Run directory:
    config.json    the resolved training config (the grid's winner)
    run.json       what export needs: model, contract fields, dataset, subjects, metrics, timings
    model.keras    the weights, Keras native format (no pickle)
    history.json   loss/accuracy per epoch
    curves.png     the same, drawn; confusion_test.png on the protocol's test subjects
    grid.json      every grid point with its validation accuracy (with --grid)

Subjects: the protocol's training subjects are split again, the highest-numbered
`validation_subjects` of them validating (early stopping, grid choice); test subjects are
only used for the final report, never for a choice.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.errors import DatasetError
from engine.classify.runtime import frame_items, item_keys
from engine.classify.features import keypoint_features_batch
from trainer.augment import augment_windows
from trainer.config import TrainConfig
from trainer.dataset import Dataset, split_protocol
from trainer.metrics import summarize
from trainer.models import model_module
from trainer.windows import PER_IMAGE_KINDS, WindowSet, build_windows, training_contract

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
# Config keys that change the windows themselves; other keys reuse the windows built once.
_WINDOW_KEYS = ("fps", "window", "stride", "min_window", "train_stride", "image_size")

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    seconds: float


def configure_tensorflow(threads: int) -> None:
    """Thread counts must be set before TensorFlow runs anything; determinism for reproducibility."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process (tests train twice): keep the first setting
    tf.config.experimental.enable_op_determinism()


def split_subjects(dataset: Dataset, validation_subjects: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, validation, test) masks; validation = the last training subjects by id."""
    train, test = split_protocol(dataset)
    subjects = sorted(set(dataset.subjects[train].tolist()))
    if len(subjects) <= validation_subjects:
        raise DatasetError(
            f"{dataset.path or 'dataset'}: {len(subjects)} training subject(s) cannot give {validation_subjects} "
            "for validation and keep some to train; lower validation_subjects in the config"
        )
    val = train & np.isin(dataset.subjects, subjects[-validation_subjects:])
    if not test.any():
        raise DatasetError(f"{dataset.path or 'dataset'}: no test sequences (split 'test' or subjects 8-12)")
    return train & ~val, val, test


def _balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return per_class[labels].astype(np.float32)


def _feeds(ws: WindowSet, batch_size: int, shuffle: bool, seed: int, weighted: bool, augment: float = 0.0):
    from trainer.batches import Batches

    n_classes = ws.contract.n_classes
    kind = ws.contract.input_kind
    rng = np.random.default_rng(seed + 1)
    if augment > 0 and kind != "keypoint_sequence" and ws.frame_keypoints is not None:
        # Images are drawn again per batch from augmented keypoints (one draw per window).
        keys = item_keys(ws.contract)
        per_image = kind in PER_IMAGE_KINDS
        labels = ws.frame_labels if per_image else ws.labels
        table = ws.frame_keypoints

        def make(rows: np.ndarray) -> list[np.ndarray]:
            kp = table[rows][:, None] if per_image else table[ws.index[rows]]
            kp = augment_windows(kp, rng, augment)
            items = frame_items(ws.contract, kp.reshape(-1, *kp.shape[2:]))
            shape = (len(rows),) if per_image else (len(rows), kp.shape[1])
            return [(items[k].astype(np.float32) / np.float32(255.0)).reshape(shape + items[k].shape[1:]) for k in keys]
    elif kind in PER_IMAGE_KINDS:
        labels = ws.frame_labels
        make = ws.frame_inputs
    elif augment > 0 and ws.keypoints is not None:
        labels = ws.labels

        def make(rows: np.ndarray) -> list[np.ndarray]:
            return [keypoint_features_batch(augment_windows(ws.keypoints[rows], rng, augment))]
    else:
        labels = ws.labels
        make = ws.inputs
    weights = _balanced_weights(labels, n_classes) if weighted else None
    return Batches(make, labels, len(labels), batch_size, shuffle=shuffle, seed=seed, weights=weights)


def predict_windows(model: Any, ws: WindowSet, batch_size: int = 256) -> np.ndarray:
    """float32[N, C] per window, as the runtime computes it (per-image kinds: mean over the window)."""
    if not len(ws):
        return np.zeros((0, ws.contract.n_classes), np.float32)
    feed = _feeds(ws, batch_size, shuffle=False, seed=0, weighted=False)
    probs = np.asarray(model.predict(feed, verbose=0), np.float32)
    if ws.contract.input_kind in PER_IMAGE_KINDS:
        return probs[ws.index].mean(axis=1)
    return probs


def _fit(
    config: TrainConfig, fit_ws: WindowSet, val_ws: WindowSet | None, log: Log, epochs: int | None = None
) -> tuple[Any, dict[str, list[float]]]:
    """Train one model; without val_ws (a refit) it runs exactly `epochs` epochs."""
    import keras

    keras.utils.set_random_seed(config.seed)
    module = model_module(config.model)
    model = module.build(config, fit_ws.contract.n_classes, fit_ws)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    augment = float(config.params.get("augment", 0.0))
    train = _feeds(fit_ws, config.batch_size, shuffle=True, seed=config.seed, weighted=True, augment=augment)
    val = _feeds(val_ws, 256, shuffle=False, seed=0, weighted=False) if val_ws is not None else None
    callbacks = []
    if val is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True))
    log(f"{config.model}: {model.count_params():,} parameters, {train.n} training and {val.n if val else 0} validation "
        f"{'images' if fit_ws.contract.input_kind in PER_IMAGE_KINDS else 'windows'}")
    history = model.fit(
        train, validation_data=val, epochs=epochs or config.epochs, callbacks=callbacks,
        verbose=1 if sys.stderr.isatty() else 2,
    )
    return model, {k: [float(v) for v in values] for k, values in history.history.items()}


def train(
    config: TrainConfig,
    dataset: Dataset,
    out_dir: str | Path,
    grid: bool = False,
    command: str = "",
    log: Log = print,
) -> RunResult:
    """Train (the grid's best with `grid`), report on the test subjects, write the run directory."""
    started = time.perf_counter()
    configure_tensorflow(config.threads)
    import keras
    import tensorflow as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = model_module(config.model)
    labels = dataset.label_names
    fit_mask, val_mask, test_mask = split_subjects(dataset, config.validation_subjects)
    cache: dict[tuple, tuple[WindowSet, WindowSet]] = {}

    def windows(cfg: TrainConfig) -> tuple[WindowSet, WindowSet]:
        key = tuple(getattr(cfg, k) for k in _WINDOW_KEYS)
        if key not in cache:
            contract = training_contract(module.INPUT_KIND, labels, cfg.window, cfg.stride, cfg.fps, cfg.image_size, cfg.min_window)
            cache.clear()  # one set of windows in memory at a time
            cache[key] = (
                build_windows(dataset, fit_mask, contract, stride=cfg.train_stride),
                build_windows(dataset, val_mask, contract),
            )
        return cache[key]

    points = config.grid_points() if grid else [{}]
    best: tuple[float, float] | None = None
    best_config, best_history, grid_log = config, {}, []
    for n, point in enumerate(points, 1):
        cfg = config.with_values(point)
        if grid:
            log(f"grid point {n}/{len(points)}: {json.dumps(point)}")
        fit_ws, val_ws = windows(cfg)
        if not len(fit_ws) or not len(val_ws):
            raise DatasetError(f"{dataset.path or 'dataset'}: no window of {cfg.window} frames at {cfg.fps} fps; sequences are too short for this config")
        model, history = _fit(cfg, fit_ws, val_ws, log)
        val_metrics = summarize(predict_windows(model, val_ws), val_ws.labels, val_ws.sequence, labels, val_ws.partial)
        score = (val_metrics["top1"], -min(history.get("val_loss", [np.inf])))
        grid_log.append({"point": point, "val_top1_window": val_metrics["top1"], "val_loss": -score[1],
                         "val_top1_sequence": val_metrics["sequence_top1"], "epochs": len(history.get("loss", []))})
        log(f"validation: window top-1 {val_metrics['top1']:.3f}, sequence top-1 {val_metrics['sequence_top1']:.3f}")
        if best is None or score > best:
            best, best_config, best_history = score, cfg, history
            model.save(out / MODEL_FILE)
            best_val = val_metrics
        keras.backend.clear_session()
    best_epoch = int(np.argmin(best_history["val_loss"])) + 1 if best_history.get("val_loss") else best_config.epochs
    if best_config.refit:
        # The validation subjects have chosen the config and the epoch count; now they train too.
        log(f"refit on all training subjects for {best_epoch} epochs")
        contract = training_contract(module.INPUT_KIND, labels, best_config.window, best_config.stride, best_config.fps, best_config.image_size, best_config.min_window)
        all_ws = build_windows(dataset, fit_mask | val_mask, contract, stride=best_config.train_stride)
        cache.clear()
        model, refit_history = _fit(best_config, all_ws, None, log, epochs=best_epoch)
        model.save(out / MODEL_FILE)
        best_history = {**best_history, **{f"refit_{k}": v for k, v in refit_history.items()}}
        keras.backend.clear_session()
    train_seconds = time.perf_counter() - started

    model = keras.models.load_model(out / MODEL_FILE, compile=False)
    contract = training_contract(module.INPUT_KIND, labels, best_config.window, best_config.stride, best_config.fps, best_config.image_size, best_config.min_window)
    test_ws = build_windows(dataset, test_mask, contract)
    test = summarize(predict_windows(model, test_ws), test_ws.labels, test_ws.sequence, labels, test_ws.partial)
    log(f"test subjects: window top-1 {test['top1']:.3f}, sequence top-1 {test['sequence_top1']:.3f} "
        f"({test['n_windows']} windows, {test['n_sequences']} sequences)")

    from trainer.plots import confusion_png, curves_png

    curves_png(best_history, out / "curves.png", title=f"{config.model} ({Path(dataset.path).name or 'dataset'})")
    confusion_png(test["confusion"], labels, out / "confusion_test.png", title=f"{config.model}: test subjects, windows")
    subjects = lambda mask: sorted(set(dataset.subjects[mask].tolist()))  # noqa: E731
    metrics = {
        "val_top1_window": best_val["top1"],
        "val_top1_sequence": best_val["sequence_top1"],
        "top1_window": test["top1"],
        "top5_window": test["top5"],
        "top1_sequence": test["sequence_top1"],
        "test_windows": test["n_windows"],
        "top1_partial_window": test["top1_partial"],  # windows of tracks shorter than the window (padded)
        "test_partial_windows": test["n_partial_windows"],
        "test_sequences": test["n_sequences"],
    }
    run = {
        "model": config.model,
        "input_kind": module.INPUT_KIND,
        "labels": list(labels),
        "window": best_config.window,
        "stride": best_config.stride,
        "min_window": contract.min_window,
        "fps": best_config.fps,
        "image_size": best_config.image_size,
        "feature_version": contract.feature_version,
        "dataset": str(Path(dataset.path).resolve()) if dataset.path else "",
        "command": command,
        "subjects": {"fit": subjects(fit_mask | val_mask if best_config.refit else fit_mask), "validation": subjects(val_mask), "test": subjects(test_mask)},
        "metrics": metrics,
        "train_seconds": round(train_seconds, 1),
        "epochs": len(best_history.get("loss", [])),
        "best_epoch": best_epoch,
        "refit": best_config.refit,
        "parameters": int(model.count_params()),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    _write_json(out / RUN_FILE, run)
    _write_json(out / "config.json", best_config.as_dict())
    _write_json(out / "history.json", best_history)
    _write_json(out / "test_metrics.json", test)
    if grid:
        _write_json(out / "grid.json", grid_log)
    return RunResult(out, metrics, train_seconds)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
