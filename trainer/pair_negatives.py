"""Negative pair windows: two people close together who are NOT interacting (the `none` class).

SBU's 8 classes have no "nothing going on": without negatives a pair model gives any two people
the stage pairs one of its interactions (on vtest.avi, pedestrians passing, 179 wrong pair labels).
Three sources, none of them SBU's test sets, so the 5-fold protocol on the 8 real classes stays
as it was:
- `synthetic`: the engine's own walkers, standers and people moving about (engine.sources.synthetic,
  activities standing / walking / other), two different subjects placed 0.5-1.5 body heights
  apart, mostly turned towards each other (the pairing stage only pairs people facing each other):
  people passing, walking up to or away from someone who does nothing, standing side by side;
- `penn`: two Penn Action people (real 2D motion, one person a video; `engine prepare penn-action`),
  placed the same way;
- `sbu_mixed`: person A of one SBU training sequence with person B of another sequence of a
  different class, both from the training sets only (`mask`), in their own SBU coordinates:
  people at SBU's distances whose motions do not answer each other. Approaching and departing
  are left out: one person walking up to or away from a partner who stands is exactly those classes.
Each negative pair gives at most `per_pair` windows, drawn from the runtime's own windows
(trainer/windows.py `window_rows`, partial ones included) at the sequence's own frame rate.
TensorFlow-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.classify.contract import Contract
from engine.classify.pairs import pair_features_batch
from engine.errors import DatasetError
from engine.sources import synthetic
from pose.coco import L_HIP, N_JOINTS, NECK, NOSE, R_HIP
from trainer.augment import mirror
from trainer.dataset import Dataset, load
from trainer.synthetic_data import FPS as SYNTHETIC_FPS
from trainer.synthetic_data import SIZE as SYNTHETIC_SIZE
from trainer.synthetic_data import degrade
from trainer.windows import WindowSet, pair_sequences, window_rows

NONE = "none"
_EXTRA = ("standing", "walking", "other")
_MOVERS = (0, 1)  # SBU approaching, departing: left out of sbu_mixed (see the module docstring)


@dataclass(frozen=True)
class NegativeOptions:
    """How many negative pairs of each source (0 leaves a source out), and how they are cut."""

    synthetic: int = 0
    penn: int = 0
    sbu_mixed: int = 0
    penn_path: str = "data/penn_action.npz"
    per_pair: int = 6  # windows kept per negative pair (long synthetic clips would swamp SBU's)
    facing: float = 0.8  # share of pairs turned towards each other
    seed: int = 0

    @classmethod
    def from_params(cls, params: dict) -> "NegativeOptions | None":
        """The `[params] negatives = {...}` table of a training config, or None without one."""
        table = params.get("negatives")
        if not table:
            return None
        if not isinstance(table, dict):
            raise DatasetError("training config [params] negatives must be a table: {synthetic = N, penn = N, sbu_mixed = N, ...}")
        unknown = set(table) - set(cls.__dataclass_fields__)
        if unknown:
            raise DatasetError(f"training config [params] negatives: unknown key(s) {sorted(unknown)}; "
                               f"use {', '.join(cls.__dataclass_fields__)}")
        return cls(**table)


def _hip_centre(kp: np.ndarray) -> np.ndarray:
    """float32[T, 2] mean of the visible hips (NaN where neither is seen)."""
    hips = kp[:, [R_HIP, L_HIP]]
    seen = hips[..., 2] > 0
    total = (hips[..., :2] * seen[..., None]).sum(axis=1)
    count = seen.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _height(kp: np.ndarray) -> float:
    """Median over frames of the visible joints' vertical extent (pixels), at least 1."""
    seen = kp[..., 2] > 0
    rows = seen.any(axis=1)
    ys = kp[rows, :, 1]
    spans = np.where(seen[rows], ys, -np.inf).max(axis=1) - np.where(seen[rows], ys, np.inf).min(axis=1)
    return max(float(np.median(spans)) if len(spans) else 1.0, 1.0)


def _nose_side(kp: np.ndarray) -> float:
    """+1 when the nose lies mostly right of the neck, -1 left, 0 unknown."""
    seen = (kp[:, NOSE, 2] > 0) & (kp[:, NECK, 2] > 0)
    if not seen.any():
        return 0.0
    return float(np.sign(np.median(kp[seen, NOSE, 0] - kp[seen, NECK, 0])))


def _mirror_about(kp: np.ndarray, x: float) -> np.ndarray:
    """Mirrored about the vertical line at x (left and right joints swapped, as augment.mirror does)."""
    return mirror(kp, 2.0 * x)


def place_pair(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, facing: float = 0.8) -> np.ndarray:
    """float32[T, 2, 18, 3]: two one-person sequences as a pair standing 0.5-1.5 body heights apart.

    b is scaled to a's body height (+-15 %) and moved beside a (median hip centres), a little up or
    down (depth); with probability `facing` both are turned (mirrored) to face each other.
    Unseen joints stay (0, 0, 0). The common length is the shorter one's.
    """
    t = min(len(a), len(b))
    a, b = a[:t].astype(np.float32).copy(), b[:t].astype(np.float32).copy()
    ca, cb = np.nanmedian(_hip_centre(a), axis=0), np.nanmedian(_hip_centre(b), axis=0)
    if not (np.isfinite(ca).all() and np.isfinite(cb).all()):
        raise DatasetError("negative pair: a person without visible hips cannot be placed")
    ha, hb = _height(a), _height(b)
    scale = ha / hb * rng.uniform(0.85, 1.15)
    side = 1.0 if rng.random() < 0.5 else -1.0  # b right (+1) or left of a
    target = ca + np.array([side * rng.uniform(0.5, 1.5) * ha, rng.uniform(-0.15, 0.15) * ha])
    seen_b = b[..., 2] > 0
    b[..., :2] = np.where(seen_b[..., None], (b[..., :2] - cb) * scale + target, 0.0)
    if rng.random() < facing:
        # a looks towards b (side), b towards a (-side): mirror whoever looks the other way.
        if _nose_side(a) == -side:
            a = _mirror_about(a, float(ca[0]))
        if _nose_side(b) == side:
            b = _mirror_about(b, float(target[0]))
    return np.stack([a, b], axis=1)


def _windows_of(pair: np.ndarray, fps: float, contract: Contract, rng: np.random.Generator,
                per_pair: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32[n <= per_pair, W, 2, 18, 3], int32[n] real model frames): some of the runtime's windows of one pair."""
    index, real = window_rows(contract, len(pair), fps)
    if not len(index):
        return np.zeros((0, contract.window, 2, N_JOINTS, 3), np.float32), np.zeros((0,), np.int32)
    keep = np.sort(rng.choice(len(index), size=min(per_pair, len(index)), replace=False))
    return pair[index[keep]], real[keep]


def synthetic_people(n: int, seed: int) -> list[np.ndarray]:
    """n one-person sequences (standing, walking, other), as a pose backend would see them, 30 fps."""
    rng = np.random.default_rng([seed, 0x9E6])
    people = []
    for k in range(n):
        subject = synthetic.make_subject(int(rng.integers(1, 13)), seed=seed)
        activity = synthetic.activity_index(_EXTRA[int(rng.choice(3, p=[0.3, 0.5, 0.2]))])
        truth = synthetic.motion(activity, subject, 100 + k, fps=SYNTHETIC_FPS, size=SYNTHETIC_SIZE, seed=seed)
        people.append(degrade(truth, np.random.default_rng([seed, k, 0xD47A])))
    return people


def _placeable(kp: np.ndarray) -> bool:
    return bool(np.isfinite(_hip_centre(kp)).all(axis=1).any())


def negative_windows(dataset: Dataset, mask: np.ndarray, contract: Contract, options: NegativeOptions,
                     none_label: int) -> WindowSet:
    """Negative pair windows (label `none_label`) for training on the sequences `mask` picks.

    Only `sbu_mixed` reads `dataset`, and only the sequences `mask` picks (the training sets):
    nothing of a test set is ever used. `sequence` ids are len(dataset) + k (no real sequence's).
    """
    rng = np.random.default_rng([options.seed, 0x4E6])
    rows: list[np.ndarray] = []
    if options.synthetic:
        people = [p for p in synthetic_people(2 * options.synthetic + 8, options.seed) if _placeable(p)]
        for k in range(options.synthetic):
            i, j = rng.choice(len(people), size=2, replace=False)
            rows.append(_windows_of(place_pair(people[i], people[j], rng, options.facing), SYNTHETIC_FPS, contract, rng,
                                    options.per_pair))
    if options.penn:
        path = Path(options.penn_path)
        if not path.is_file():
            raise DatasetError(f"{path}: Penn Action negatives need it; run `engine prepare penn-action --root PENN_ACTION_DIR --out data/penn_action.npz` first "
                               "(or set [params] negatives.penn = 0)")
        penn = load(path)
        for k in range(options.penn):
            for _ in range(20):
                i, j = (int(x) for x in rng.choice(len(penn.labels), size=2, replace=False))
                a, b = penn.sequence(i), penn.sequence(j)
                if float(penn.fps[i]) == float(penn.fps[j]) and _placeable(a) and _placeable(b):
                    rows.append(_windows_of(place_pair(a, b, rng, options.facing), float(penn.fps[i]), contract, rng,
                                            options.per_pair))
                    break
    if options.sbu_mixed:
        pairs = [(i, j) for i, j in pair_sequences(dataset, np.flatnonzero(mask)) if int(dataset.labels[i]) not in _MOVERS]
        if len(pairs) < 2:
            raise DatasetError(f"{dataset.path or 'dataset'}: sbu_mixed negatives need two training pairs of other classes "
                               "than approaching and departing")
        for k in range(options.sbu_mixed):
            for _ in range(20):
                x, y = (pairs[int(n)] for n in rng.choice(len(pairs), size=2, replace=False))
                if dataset.labels[x[0]] != dataset.labels[y[0]] and dataset.fps[x[0]] == dataset.fps[y[0]]:
                    a, b = dataset.sequence(x[0]), dataset.sequence(y[1])
                    t = min(len(a), len(b))
                    rows.append(_windows_of(np.stack([a[:t], b[:t]], axis=1).astype(np.float32), float(dataset.fps[x[0]]),
                                            contract, rng, options.per_pair))
                    break
    keypoints = np.concatenate([r[0] for r in rows]) if rows else np.zeros((0, contract.window, 2, N_JOINTS, 3), np.float32)
    n = len(keypoints)
    counts = [len(r[0]) for r in rows]
    sequence = np.repeat(np.arange(len(rows), dtype=np.int32) + len(dataset.labels), counts).astype(np.int32)
    return WindowSet(
        contract=contract, features=pair_features_batch(keypoints, contract.feature_version), keypoints=keypoints,
        frames={}, index=np.zeros((n, 0), np.int64), labels=np.full(n, none_label, np.int32), sequence=sequence,
        frame_labels=np.zeros((0,), np.int32), window_frames=np.concatenate([r[1] for r in rows]) if rows else np.zeros((0,), np.int32),
    )


def concat(first: WindowSet, second: WindowSet) -> WindowSet:
    """Two pair WindowSets of one contract as one (training windows plus negatives)."""
    return WindowSet(
        contract=first.contract,
        features=np.concatenate([first.features, second.features]),
        keypoints=np.concatenate([first.keypoints, second.keypoints]),
        frames={}, index=np.zeros((len(first) + len(second), 0), np.int64),
        labels=np.concatenate([first.labels, second.labels]),
        sequence=np.concatenate([first.sequence, second.sequence]),
        frame_labels=np.zeros((0,), np.int32),
        window_frames=np.concatenate([first.window_frames, second.window_frames]),
    )
