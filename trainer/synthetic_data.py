"""An MHAD-shaped synthetic dataset from engine.sources.synthetic: S01-S12 x A01-A11 x R01-R05.

The motion model gives ground truth; a pose backend does not, so keypoints get what a real
detector adds: pixel noise, confidences below 1, joints that vanish for a frame or a run of
frames (face joints most often). Deterministic from the seed.
"""
from __future__ import annotations

import numpy as np

from engine.sources import synthetic
from engine.sources.mhad import FPS, N_REPETITIONS, N_SUBJECTS
from pose.coco import L_EAR, L_EYE, N_JOINTS, NOSE, R_EAR, R_EYE
from trainer.dataset import Dataset, from_sequences

SIZE = (640, 480)

_FACE = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)


def degrade(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a pose backend might report for ground-truth keypoints float32[T, 18, 3]."""
    kp = keypoints.copy()
    t = len(kp)
    visible = kp[..., 2] > 0
    ys = kp[..., 1][visible]
    height_px = float(ys.max() - ys.min()) if ys.size else 100.0
    sigma = height_px * rng.uniform(0.004, 0.012)
    kp[..., :2] += rng.normal(0.0, sigma, size=(t, N_JOINTS, 2)).astype(np.float32)
    conf = rng.uniform(0.45, 1.0, size=(t, N_JOINTS)).astype(np.float32)
    drop_p = np.full(N_JOINTS, rng.uniform(0.005, 0.03))
    drop_p[list(_FACE)] *= 3
    dropped = rng.random((t, N_JOINTS)) < drop_p
    for _ in range(int(rng.integers(0, 4))):  # a joint lost for a run of frames (occlusion, blur)
        joint = int(rng.integers(N_JOINTS))
        start = int(rng.integers(t))
        dropped[start : start + int(rng.integers(3, 16)), joint] = True
    missing = dropped | ~visible
    kp[..., 2] = np.where(missing, 0.0, conf)
    kp[missing, :2] = 0.0
    return kp


def build(seed: int = 0, subjects: range | list[int] = range(1, N_SUBJECTS + 1),
          actions: range | list[int] = range(len(synthetic.ACTIONS)),
          repetitions: range | list[int] = range(1, N_REPETITIONS + 1)) -> Dataset:
    """The synthetic dataset (1-based subject and repetition ids, 0-based actions as labels)."""
    sequences, labels, subject_ids, ids = [], [], [], []
    for s in subjects:
        subject = synthetic.make_subject(s, seed=seed)
        for a in actions:
            for r in repetitions:
                truth = synthetic.motion(a, subject, r, fps=FPS, size=SIZE, seed=seed)
                rng = np.random.default_rng([seed, s, a, r, 0xD47A])
                sequences.append(degrade(truth, rng))
                labels.append(a)
                subject_ids.append(s)
                ids.append(f"S{s:02d}/A{a + 1:02d}/R{r:02d}")
    return from_sequences(sequences, labels, synthetic.ACTIONS, subject_ids, FPS, ids=ids)
