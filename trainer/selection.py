"""How training chooses without looking at the test subjects: folds, data-derived defaults, thresholds.

Small real datasets have few subjects (SBU 7, MHAD 7 for training), so holding out two of
them for validation trains on a fraction of the data (a set with 4 training subjects trained
on 2 and scored 13-52 %). Instead every training subject validates once, in `folds` folds
over the training subjects, and the final model is refit on all of them for the epoch count
the folds agreed on. Everything here sees only the protocol's training sequences.
TensorFlow-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import DatasetError
from trainer.dataset import Dataset

# Window length chosen from the data when the config leaves it at 0: the 25th percentile of
# the training clips' durations, so that three clips in four fill a whole window (shorter
# ones get partial windows), kept between 1 s (a wave or a punch) and 3 s (the research's
# MHAD windows: sitting down vs sitting down and standing up needs the context).
_WINDOW_CLIP_QUANTILE = 0.25
WINDOW_RANGE_S = (1.0, 3.0)
_STRIDE_PER_WINDOW = 8  # classify about 8 times per window length at run time
# Without negatives a threshold can only trade right answers for silence: keep this share of
# the validation windows the model got right (the rest, its least sure, become `unknown`).
KEEP_RIGHT = 0.95


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: masks over the whole dataset."""

    fit: np.ndarray
    validation: np.ndarray
    validation_subjects: tuple[int, ...]


def subject_folds(dataset: Dataset, train: np.ndarray, folds: int) -> list[Fold]:
    """Folds over the training subjects, round robin on sorted ids (each validates once).

    With fewer subjects than folds, one subject per fold. A dataset whose training part has a
    single subject (or none named) is split by sequence instead, per class in turn, so that
    every fold sees every class.
    """
    train = np.asarray(train, bool)
    subjects = sorted(set(dataset.subjects[train].tolist()))
    if folds < 2:
        raise DatasetError(f"training config key 'folds' must be 2 or more, got {folds}")
    if len(subjects) >= 2:
        k = min(folds, len(subjects))
        groups = [subjects[i::k] for i in range(k)]
        out = []
        for group in groups:
            val = train & np.isin(dataset.subjects, group)
            out.append(Fold(train & ~val, val, tuple(int(s) for s in group)))
        return out
    index = np.flatnonzero(train)
    if len(index) < folds:
        raise DatasetError(f"{dataset.path or 'dataset'}: {len(index)} training sequence(s) cannot make {folds} validation folds")
    fold_of = np.zeros(len(dataset), np.int64)
    for label in np.unique(dataset.labels[index]):
        members = index[dataset.labels[index] == label]
        fold_of[members] = np.arange(len(members)) % folds
    out = []
    for f in range(folds):
        val = train & (fold_of == f)
        out.append(Fold(train & ~val, val, ()))
    return out


def clip_seconds(dataset: Dataset, mask: np.ndarray) -> np.ndarray:
    """float64[N]: duration of each selected sequence in seconds (frames / capture rate)."""
    mask = np.asarray(mask, bool)
    return dataset.lengths[mask].astype(np.float64) / dataset.fps[mask].astype(np.float64)


def window_from_data(dataset: Dataset, train: np.ndarray, fps: float) -> int:
    """Model frames per window for this data (see _WINDOW_CLIP_QUANTILE)."""
    seconds = clip_seconds(dataset, train)
    if not len(seconds):
        raise DatasetError(f"{dataset.path or 'dataset'}: no training sequences to choose a window from")
    window_s = float(np.clip(np.quantile(seconds, _WINDOW_CLIP_QUANTILE), *WINDOW_RANGE_S))
    return max(2, int(round(window_s * fps)))


def stride_for(window: int) -> int:
    """Model frames between classifications at run time for a window of `window` frames."""
    return max(1, window // _STRIDE_PER_WINDOW)


def choose_threshold(probs: np.ndarray, labels: np.ndarray, unknown_ids: tuple[int, ...] = ()) -> float:
    """The `unknown_below` threshold from out-of-fold validation windows (float32[N, C], int[N]).

    With negatives (windows whose label is one of `unknown_ids`, a class of "none of my
    actions"): the threshold that maximises the mean per-class accuracy when a window under
    it, or predicted as a negatives class, counts as rejected (right for negatives, wrong for
    the others). Without: the highest threshold that keeps KEEP_RIGHT of the right answers.
    """
    probs = np.asarray(probs, np.float32)
    labels = np.asarray(labels, np.int64)
    if not len(probs):
        return 0.0
    predicted = probs.argmax(axis=1)
    top = probs.max(axis=1)
    right = predicted == labels
    negative = np.isin(labels, unknown_ids)
    if not negative.any():
        if not right.any():
            return 0.0
        return float(np.quantile(top[right], 1.0 - KEEP_RIGHT, method="lower"))
    said_unknown = np.isin(predicted, unknown_ids)
    classes = np.unique(labels)
    best_t, best_score = 0.0, -1.0
    for t in np.unique(np.concatenate([[0.0], np.round(top, 3)])):
        rejected = said_unknown | (top < t)
        ok = np.where(negative, rejected, right & ~rejected)
        score = float(np.mean([ok[labels == c].mean() for c in classes]))
        if score > best_score + 1e-9:
            best_t, best_score = float(t), score
    return best_t
