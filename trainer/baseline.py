"""A plain baseline beside every training run: extra trees on whole-sequence keypoint features.

Printed next to the deep model's result so a user sees at once whether the deep model earns
its keep on their data. Each sequence becomes one vector: its frames resampled to a fixed
count by index, then the engine's own keypoint features (hip-centred, torso-scaled positions
and velocities, body joints only) flattened. It sees the same training sequences as the deep
model and is scored on the same test sequences, one vote per sequence. TensorFlow-free;
needs scikit-learn (the training extra).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.classify.features import keypoint_features_batch
from trainer.dataset import Dataset

FRAMES = 32  # per sequence, as in the Penn Action baseline figure quoted in shared data notes
TREES = 300


@dataclass(frozen=True)
class BaselineResult:
    sequence_top1: float
    n_test: int
    seconds: float
    name: str = f"extra trees ({TREES}) on {FRAMES} resampled frames of positions and velocities"


def sequence_vectors(dataset: Dataset, index: np.ndarray) -> np.ndarray:
    """float32[len(index), FRAMES * 4J]: one fixed-length vector per sequence."""
    rows = []
    for i in np.asarray(index, np.int64).tolist():
        kp = dataset.sequence(i)
        pick = np.linspace(0, len(kp) - 1, FRAMES).round().astype(np.int64)
        rows.append(kp[pick])
    if not rows:
        return np.zeros((0, 0), np.float32)
    features = keypoint_features_batch(np.stack(rows))
    n_joint_values = features.shape[-1] * 4 // 5  # positions and velocities; presence left out
    return features[..., :n_joint_values].reshape(len(rows), -1)


def extra_trees(dataset: Dataset, train: np.ndarray, test: np.ndarray, seed: int = 0, threads: int = 2) -> BaselineResult:
    """Fit on the `train` sequences, score sequence top-1 on the `test` sequences."""
    from sklearn.ensemble import ExtraTreesClassifier

    started = time.perf_counter()
    train_i, test_i = np.flatnonzero(train), np.flatnonzero(test)
    model = ExtraTreesClassifier(n_estimators=TREES, random_state=seed, n_jobs=threads, class_weight="balanced")
    model.fit(sequence_vectors(dataset, train_i), dataset.labels[train_i])
    predicted = model.predict(sequence_vectors(dataset, test_i)) if len(test_i) else np.zeros(0)
    top1 = float((predicted == dataset.labels[test_i]).mean()) if len(test_i) else 0.0
    return BaselineResult(top1, int(len(test_i)), time.perf_counter() - started)
