"""Evaluate an exported classifier through the runtime (engine.classify.runtime), not Keras.

Each test sequence goes through `track_windows` (the live windowing, partial windows of short
tracks included) and `ClassifierRuntime.classify_windows` (the live inference and probability
handling), so the figures are those of the model as the engine runs it. TensorFlow-free.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, Window, track_windows
from engine.errors import DatasetError
from trainer.dataset import Dataset, split_protocol
from trainer.metrics import summarize


def evaluate(
    model_path: str, dataset: Dataset, threads: int = 1, split: str = "test", min_window_s: float = 0.0
) -> dict[str, Any]:
    """Figures of trainer.metrics.summarize plus `windows_per_s` (inference only) and the model's name.

    min_window_s: as the classify stage's option (0: the model's `min_window`); `min_window` in
    the result is the one used, in model frames.
    """
    runtime = ClassifierRuntime(model_path, ClassifyOptions(threads=threads, min_window_s=min_window_s))
    contract = runtime.contract
    # Dataset classes are matched to the model's by name, so their order may differ.
    unknown = [name for name in dataset.label_names if name not in contract.labels]
    if unknown:
        raise DatasetError(
            f"{dataset.path}: class(es) {', '.join(map(repr, unknown[:3]))} are not among the model's labels "
            f"({', '.join(contract.labels)}); evaluate on a dataset of the classes the model knows"
        )
    to_model = np.array([contract.labels.index(name) for name in dataset.label_names], np.int64)
    train, test = split_protocol(dataset)
    mask = test if split == "test" else train if split == "train" else np.ones(len(dataset), bool)
    all_probs, labels, sequences, partial = [], [], [], []
    infer_s = 0.0
    if contract.input_kind == "pair":  # one "sequence" per pair of people, both in one window
        from trainer.windows import pair_keypoints, pair_sequences

        pairs = pair_sequences(dataset, np.flatnonzero(mask))
        items = [(i, pair_keypoints(dataset, i, j)) for i, j in pairs]
        n_seq_total = len(pairs)
    else:
        items = [(i, dataset.sequence(i)) for i in np.flatnonzero(mask).tolist()]
        n_seq_total = int(mask.sum())
    for i, keypoints in items:
        windows, probs, seconds = classify_sequence(runtime, keypoints, float(dataset.fps[i]))
        if not windows:
            continue
        infer_s += seconds
        all_probs.append(probs)
        labels.append(np.full(len(probs), to_model[dataset.labels[i]]))
        sequences.append(np.full(len(probs), i))
        partial.append(np.array([w.frames < contract.window for w in windows]))
    if not all_probs:
        raise DatasetError(
            f"{dataset.path}: no {split} sequence is long enough for the model's first window "
            f"({contract.min_window} frames at {contract.fps} fps); pass longer sequences or a lower --min-window"
        )
    probs = np.concatenate(all_probs)
    result = summarize(probs, np.concatenate(labels), np.concatenate(sequences), contract.labels, np.concatenate(partial))
    result.update(
        model=contract.name,
        dataset=dataset.path,
        split=split,
        window=contract.window,
        min_window=contract.min_window,
        sequences_without_window=n_seq_total - result["n_sequences"],
        windows_per_s=round(len(probs) / infer_s, 1) if infer_s > 0 else None,
        threads=threads,
    )
    return result


def classify_sequence(
    runtime: ClassifierRuntime, keypoints: np.ndarray, source_fps: float
) -> tuple[list[Window], np.ndarray, float]:
    """One recorded sequence float32[T, 18, 3] (a pair model: float32[T, 2, 18, 3]): the windows the classify stage makes of it, their
    class probabilities float32[N, C] (unsmoothed, in the model's label order) and the seconds
    inference took."""
    windows = list(track_windows(runtime.contract, keypoints, source_fps))
    start = time.perf_counter()
    probs = runtime.classify_windows([w.items for w in windows])
    return windows, probs, time.perf_counter() - start
