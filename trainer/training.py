"""Train one model on a dataset file and leave a run directory (imports TensorFlow).

Run directory:
    config.json    the resolved training config (the grid's winner)
    run.json       what export needs: model, contract fields, dataset, subjects, metrics, timings
    model.keras    the weights, Keras native format (no pickle)
    history.json   loss/accuracy per epoch
    curves.png     the same, drawn; confusion_test.png on the protocol's test subjects
    grid.json      every grid point with its validation accuracy (with --grid)

Subjects: the protocol's training subjects are split into `folds` cross-validation folds
(trainer/selection.py), each validating once (early stopping, grid choice, the `unknown`
threshold); the final model is refit on all of them. Test subjects are only used for the
final report, never for a choice.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.errors import ConfigError, DatasetError
from engine.classify.runtime import frame_items, item_keys
from engine.classify.features import keypoint_features_batch
from engine.classify.pairs import pair_features_batch
from trainer.augment import augment_pairs, augment_windows, jitter_windows, mirror_windows
from trainer.config import TrainConfig
from trainer.pair_negatives import NONE, NegativeOptions, concat, negative_windows
from trainer.dataset import Dataset, split_protocol
from trainer.selection import Fold, choose_threshold, stride_for, subject_folds, window_from_data
from trainer.metrics import summarize
from trainer.models import model_module
from trainer.windows import PER_IMAGE_KINDS, WindowSet, build_windows, pair_sequences, training_contract

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
_CANDIDATE_FILE = "fold1_candidate.keras"

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


def protocol_masks(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks of the protocol; refused when there is nothing to test on."""
    train, test = split_protocol(dataset)
    if not test.any():
        raise DatasetError(f"{dataset.path or 'dataset'}: no test sequences (split 'test' or subjects 8-12)")
    if not train.any():
        raise DatasetError(f"{dataset.path or 'dataset'}: no training sequences (split 'train' or subjects 1-7)")
    return train, test


def resolve_config(config: TrainConfig, dataset: Dataset, train: np.ndarray) -> TrainConfig:
    """The config with its data-derived values (window, stride) filled in from the training sequences."""
    window = config.window or window_from_data(dataset, train, config.fps)
    stride = config.stride or stride_for(window)
    return dataclasses.replace(config, window=window, stride=stride, min_window=min(config.min_window, window))


def _balanced_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return per_class[labels].astype(np.float32)


def _feeds(ws: WindowSet, batch_size: int, shuffle: bool, seed: int, weighted: bool, augment: float = 0.0,
           jitter: float = 0.0, mirrored: float = 0.0, speed: float = 0.0):
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
    elif kind == "pair" and (augment > 0 or jitter > 0 or mirrored > 0 or speed > 0):
        labels = ws.labels

        def make(rows: np.ndarray) -> list[np.ndarray]:
            kp = augment_pairs(ws.keypoints[rows], rng, augment, jitter, mirrored, speed)
            return [pair_features_batch(kp, ws.contract.feature_version)]
    elif (augment > 0 or jitter > 0 or mirrored > 0) and ws.keypoints is not None:
        labels = ws.labels

        def make(rows: np.ndarray) -> list[np.ndarray]:
            kp = ws.keypoints[rows]
            kp = augment_windows(kp, rng, augment) if augment > 0 else kp
            kp = jitter_windows(kp, rng, jitter) if jitter > 0 else kp
            kp = mirror_windows(kp, rng, mirrored) if mirrored > 0 else kp
            return [keypoint_features_batch(kp)]
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
    learning_rate: Any = config.learning_rate
    if config.params.get("cosine", False):
        # Decay to zero over the run: the last epoch's weights, the ones kept, no longer jump
        # from batch to batch (on SBU's 282 pairs a constant rate left them 10-20 points apart).
        steps = (epochs or config.epochs) * max(1, -(-len(fit_ws.labels if fit_ws.contract.input_kind not in PER_IMAGE_KINDS
                                                           else fit_ws.frame_labels) // config.batch_size))
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    augment = float(config.params.get("augment", 0.0))
    jitter = float(config.params.get("jitter", 0.0))  # keypoint models: pose-backend noise (trainer/augment.py)
    mirrored = float(config.params.get("mirror", 0.0))  # keypoint models: share of windows seen mirrored
    speed = float(config.params.get("speed", 0.0))  # pair models: tempo change, +- this fraction
    train = _feeds(fit_ws, config.batch_size, shuffle=True, seed=config.seed, weighted=True, augment=augment,
                   jitter=jitter, mirrored=mirrored, speed=speed)
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
    """Train (the grid's best with `grid`), report on the test subjects, write the run directory.

    Each grid point is trained once per fold over the training subjects; the point with the
    best out-of-fold sequence top-1 wins, its out-of-fold windows set the `unknown` threshold,
    and (refit, the default) the final model trains on every training subject for the median
    of the folds' best epoch counts. The test subjects are used only for the final report.
    """
    started = time.perf_counter()
    configure_tensorflow(config.threads)
    import keras
    import tensorflow as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = model_module(config.model)
    labels = dataset.label_names
    negatives = NegativeOptions.from_params(config.params) if module.INPUT_KIND == "pair" else None
    if negatives is not None:
        labels = tuple(labels) + (NONE,)  # the negatives' class, last (trainer/pair_negatives.py)
    missing = [name for name in config.unknown_labels if name not in labels]
    if missing:
        raise DatasetError(f"{dataset.path or 'dataset'}: unknown_labels {missing} are not classes of the dataset ({', '.join(labels)})")
    unknown_ids = tuple(labels.index(name) for name in config.unknown_labels)
    train_mask, test_mask = protocol_masks(dataset)
    # folds = 0: no validation at all; one model on every training subject for exactly `epochs` epochs
    # (for small datasets whose epoch count was settled beforehand; no grid, no `unknown` threshold).
    folds = subject_folds(dataset, train_mask, config.folds) if config.folds else []
    if folds:
        log(f"{len(folds)} folds over the training subjects: " + "; ".join(_fold_text(f) for f in folds))
    elif grid:
        raise ConfigError("--grid needs validation: set folds to 2 or more in the training config")
    else:
        log(f"no validation folds (folds = 0): {config.epochs} epochs on every training subject")

    def contract_of(cfg: TrainConfig):
        return training_contract(module.INPUT_KIND, labels, cfg.window, cfg.stride, cfg.fps, cfg.image_size, cfg.min_window)

    points = config.grid_points() if grid else [{}] if folds else []
    best: tuple[float, float] | None = None
    best_config, best_epochs, grid_log, best_val, best_oof, best_history = config, [], [], {}, None, {}
    if not folds:
        best_config = dataclasses.replace(resolve_config(config, dataset, train_mask), refit=True)
        best_epochs, best_val = [config.epochs], {"top1": None, "sequence_top1": None}
    for n, point in enumerate(points, 1):
        cfg = resolve_config(config.with_values(point), dataset, train_mask)
        log(f"{'grid point %d/%d: %s; ' % (n, len(points), json.dumps(point)) if grid else ''}window {cfg.window} frames "
            f"({cfg.window / cfg.fps:.2f} s at {cfg.fps:g} fps), stride {cfg.stride}")
        contract = contract_of(cfg)
        oof: list[tuple[np.ndarray, WindowSet]] = []
        epochs = []
        for k, fold in enumerate(folds, 1):
            fit_ws = _with_negatives(build_windows(dataset, fold.fit, contract, stride=cfg.train_stride), dataset,
                                     fold.fit, negatives, log)
            val_ws = build_windows(dataset, fold.validation, contract)
            if not len(fit_ws) or not len(val_ws):
                raise DatasetError(f"{dataset.path or 'dataset'}: fold {k} has no window of {contract.min_window} frames at "
                                   f"{cfg.fps} fps to train or validate on; sequences are too short for this config")
            model, history = _fit(cfg, fit_ws, val_ws, log)
            oof.append((predict_windows(model, val_ws), val_ws))
            epochs.append(int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else cfg.epochs)
            if k == 1:
                first_history = history
                if not cfg.refit:
                    model.save(out / _CANDIDATE_FILE)  # without a refit, the winner's first-fold model is kept
            keras.backend.clear_session()
        probs = np.concatenate([p for p, _ in oof])
        val_labels = np.concatenate([w.labels for _, w in oof])
        val_metrics = summarize(probs, val_labels, np.concatenate([w.sequence for _, w in oof]), labels,
                                np.concatenate([w.partial for _, w in oof]))
        score = (val_metrics["sequence_top1"], val_metrics["top1"])
        grid_log.append({"point": point, "window": cfg.window, "val_top1_window": val_metrics["top1"],
                         "val_top1_sequence": val_metrics["sequence_top1"], "best_epochs": epochs})
        log(f"validation (out of fold): window top-1 {val_metrics['top1']:.3f}, sequence top-1 {val_metrics['sequence_top1']:.3f}")
        if best is None or score > best:
            best, best_config, best_epochs, best_val, best_oof = score, cfg, epochs, val_metrics, (probs, val_labels)
            best_history = first_history
            if not cfg.refit:
                os.replace(out / _CANDIDATE_FILE, out / MODEL_FILE)
    (out / _CANDIDATE_FILE).unlink(missing_ok=True)  # a losing grid point's model, when there was no refit
    unknown_below = choose_threshold(best_oof[0], best_oof[1], unknown_ids) if best_oof is not None else 0.0
    epoch_count = max(1, int(np.median(best_epochs)))
    contract = contract_of(best_config)
    history: dict[str, list[float]] = best_history  # the first fold's curves, unless refit below
    if best_config.refit:
        log(f"refit on all training subjects for {epoch_count} epochs (fold best epochs {best_epochs})")
        all_ws = _with_negatives(build_windows(dataset, train_mask, contract, stride=best_config.train_stride), dataset,
                                 train_mask, negatives, log)
        model, history = _fit(best_config, all_ws, None, log, epochs=epoch_count)
        model.save(out / MODEL_FILE)
        keras.backend.clear_session()
    train_seconds = time.perf_counter() - started

    model = keras.models.load_model(out / MODEL_FILE, compile=False)
    test_ws = build_windows(dataset, test_mask, contract)
    test = summarize(predict_windows(model, test_ws), test_ws.labels, test_ws.sequence, labels, test_ws.partial)
    # What a test "sequence" is: one person's, or for a pair model one pair's (two people's).
    n_test = len(pair_sequences(dataset, np.flatnonzero(test_mask))) if contract.input_kind == "pair" else int(test_mask.sum())
    log(f"test subjects: window top-1 {test['top1']:.3f}, sequence top-1 {test['sequence_top1']:.3f} "
        f"({test['n_windows']} windows, {test['n_sequences']} of {n_test} sequences labelled)")
    baseline = None
    if config.baseline:
        try:
            from trainer.baseline import extra_trees
        except ImportError:
            log("baseline skipped: scikit-learn is not installed (bash scripts/setup.sh train)")
        else:
            baseline = extra_trees(dataset, train_mask, test_mask, seed=config.seed, threads=config.threads)
            verdict = "beats" if test["sequence_top1"] > baseline.sequence_top1 else "does NOT beat"
            log(f"baseline, {baseline.name}: sequence top-1 {baseline.sequence_top1:.3f}; {config.model} "
                f"{test['sequence_top1']:.3f} {verdict} it")

    from trainer.plots import confusion_png, curves_png

    curves_png(history, out / "curves.png", title=f"{config.model} ({Path(dataset.path).name or 'dataset'})")
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
        "test_sequences_without_window": n_test - test["n_sequences"],
    }
    if baseline is not None:
        metrics["baseline_top1_sequence"] = baseline.sequence_top1
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
        "unknown_below": round(float(unknown_below), 4),
        "unknown_labels": list(config.unknown_labels),
        "dataset": str(Path(dataset.path).resolve()) if dataset.path else "",
        "command": command,
        "subjects": {"fit": subjects(train_mask) if best_config.refit else subjects(folds[0].fit),
                     "validation": [list(f.validation_subjects) for f in folds], "test": subjects(test_mask)},
        "folds": len(folds),
        "metrics": metrics,
        "train_seconds": round(train_seconds, 1),
        "epochs": epoch_count if best_config.refit else best_epochs[0],
        "fold_best_epochs": best_epochs,
        "refit": best_config.refit,
        "parameters": int(model.count_params()),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    if baseline is not None:
        run["baseline"] = {"name": baseline.name, "top1_sequence": baseline.sequence_top1, "seconds": round(baseline.seconds, 1)}
    _write_json(out / RUN_FILE, run)
    _write_json(out / "config.json", best_config.as_dict())
    _write_json(out / "history.json", history)
    _write_json(out / "test_metrics.json", test)
    if grid:
        _write_json(out / "grid.json", grid_log)
    return RunResult(out, metrics, train_seconds)


def _with_negatives(ws: WindowSet, dataset: Dataset, mask: np.ndarray, negatives: NegativeOptions | None,
                    log: Log) -> WindowSet:
    """Training windows plus the `none` class's negative pair windows (only from `mask`'s sequences and
    from sources independent of the dataset), when the config asks for them."""
    if negatives is None:
        return ws
    extra = negative_windows(dataset, mask, ws.contract, negatives, none_label=ws.contract.labels.index(NONE))
    log(f"negatives ({NONE}): {len(extra)} windows from {negatives.synthetic} synthetic, {negatives.penn} Penn Action and "
        f"{negatives.sbu_mixed} mixed training pairs")
    return concat(ws, extra)


def _fold_text(fold: Fold) -> str:
    subjects = fold.validation_subjects
    if not subjects or len(subjects) > 8:
        return f"validate {int(fold.validation.sum())} sequences" + (f" of {len(subjects)} subjects" if subjects else "")
    return f"validate subjects {', '.join(map(str, subjects))}"


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
