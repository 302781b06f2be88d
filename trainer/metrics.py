"""Accuracy figures from window probabilities: the same numbers for training reports and `engine evaluate`."""
from __future__ import annotations

from typing import Any

import numpy as np

from trainer.windows import sequence_scores


def summarize(
    probs: np.ndarray,
    labels: np.ndarray,
    sequence: np.ndarray,
    label_names: tuple[str, ...],
    partial: np.ndarray | None = None,
) -> dict[str, Any]:
    """top1/top5 and per-class accuracy over windows, the confusion matrix (rows true, columns
    predicted, window counts), and sequence-level accuracy with one vote per sequence (the
    mean of its windows' probabilities), which is the figure the MHAD research reports.

    Partial windows (bool[N] `partial`, a track's first labels before it has W model frames)
    count like the others everywhere; `top1_partial` / `top1_full` split window top-1 by kind
    (None when there is none of that kind), the figure for how early labels can be trusted."""
    n_classes = len(label_names)
    probs = np.asarray(probs, np.float32).reshape(-1, n_classes)
    labels = np.asarray(labels, np.int64)
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    k = min(5, n_classes)
    top5 = np.argsort(-probs, axis=1, kind="stable")[:, :k] if len(probs) else np.zeros((0, k), np.int64)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {}
    for c, name in enumerate(label_names):
        total = int(confusion[c].sum())
        per_class[name] = float(confusion[c, c] / total) if total else None
    ids, seq_probs = sequence_scores(probs, sequence) if len(probs) else (np.zeros(0, np.int64), probs)
    seq_labels = np.array([labels[np.flatnonzero(sequence == i)[0]] for i in ids], np.int64)
    seq_pred = seq_probs.argmax(axis=1) if len(seq_probs) else np.zeros(0, np.int64)
    seq_confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(seq_confusion, (seq_labels, seq_pred), 1)
    partial = np.zeros(len(labels), bool) if partial is None else np.asarray(partial, bool).reshape(-1)
    correct = predicted == labels
    return {
        "top1": float((predicted == labels).mean()) if len(labels) else 0.0,
        "top5": float((top5 == labels[:, None]).any(axis=1).mean()) if len(labels) else 0.0,
        "per_class": per_class,
        "n_windows": int(len(labels)),
        "n_partial_windows": int(partial.sum()),
        "top1_partial": float(correct[partial].mean()) if partial.any() else None,
        "top1_full": float(correct[~partial].mean()) if (~partial).any() else None,
        "n_sequences": int(len(ids)),
        "sequence_top1": float((seq_pred == seq_labels).mean()) if len(ids) else 0.0,
        "labels": list(label_names),
        "confusion": confusion.tolist(),
        "sequence_confusion": seq_confusion.tolist(),
    }
