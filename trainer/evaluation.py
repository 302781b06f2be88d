"""Evaluate an exported classifier through the runtime (engine.classify.runtime), not Keras.

Each test sequence goes through `sequence_windows` (the live windowing) and
`ClassifierRuntime.classify_windows` (the live inference and probability handling), so the
figures are those of the model as the engine runs it. TensorFlow-free.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, sequence_windows
from engine.errors import DatasetError
from trainer.dataset import Dataset, split_protocol
from trainer.metrics import summarize


def evaluate(model_path: str, dataset: Dataset, threads: int = 1, split: str = "test") -> dict[str, Any]:
    """Figures of trainer.metrics.summarize plus `windows_per_s` (inference only) and the model's name."""
    runtime = ClassifierRuntime(model_path, ClassifyOptions(threads=threads))
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
    all_probs, labels, sequences = [], [], []
    infer_s = 0.0
    for i in np.flatnonzero(mask).tolist():
        windows = [items for _, _, items in sequence_windows(contract, dataset.sequence(i), float(dataset.fps[i]))]
        if not windows:
            continue
        start = time.perf_counter()
        probs = runtime.classify_windows(windows)
        infer_s += time.perf_counter() - start
        all_probs.append(probs)
        labels.append(np.full(len(probs), to_model[dataset.labels[i]]))
        sequences.append(np.full(len(probs), i))
    n_seq_total = int(mask.sum())
    if not all_probs:
        raise DatasetError(f"{dataset.path}: no {split} sequence is long enough for one window of {contract.window} frames at {contract.fps} fps")
    probs = np.concatenate(all_probs)
    result = summarize(probs, np.concatenate(labels), np.concatenate(sequences), contract.labels)
    result.update(
        model=contract.name,
        dataset=dataset.path,
        split=split,
        sequences_without_window=n_seq_total - result["n_sequences"],
        windows_per_s=round(len(probs) / infer_s, 1) if infer_s > 0 else None,
        threads=threads,
    )
    return result
