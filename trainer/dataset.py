"""The dataset file: the one module that knows its keys (see docs/architecture.md, "Dataset file").

One `.npz`, loaded with allow_pickle=False:

    keypoints    float32[N, T, 18, 3]  COCO-18 (OpenPose order), x, y in pixels, confidence
                                       (0 = missing joint); zeros after each sequence's length
    lengths      int32[N]              frames of each sequence
    labels       int32[N]              index into label_names
    label_names  str[C]                class names
    subjects     int32[N]              performer id (MHAD: 1-12)
    fps          float32 scalar or float32[N]   capture rate of each sequence
    split        str[N], optional      "train" / "test" per sequence; without it the MHAD
                                       protocol applies: subjects 1-7 train, 8-12 test
    ids          str[N], optional      a name per sequence (e.g. "S01/A01/R01"), for reports
    pair         int32[N], optional    index of the partner sequence (the other person of a
                                       two-person interaction, e.g. SBU), -1 for none; symmetric:
                                       pair[pair[i]] == i, so a pair model can rebuild pairs
    fold         int32[N], optional    the dataset's cross-validation fold (1..K) of each
                                       sequence (e.g. SBU's 5 folds over sets); `split` is the
                                       one fold chosen as test, `fold` lets a user pick another

TensorFlow-free: `engine evaluate` reads datasets without the training extra.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import DatasetError
from engine.paths import write_atomically
from pose.coco import N_JOINTS

REQUIRED_KEYS: tuple[str, ...] = ("keypoints", "lengths", "labels", "label_names", "subjects", "fps")
OPTIONAL_KEYS: tuple[str, ...] = ("split", "ids", "pair", "fold")
SPLITS = ("train", "test")
# Berkeley MHAD's standard protocol: the first seven subjects train, the other five test.
PROTOCOL_TRAIN_SUBJECTS = frozenset(range(1, 8))


@dataclass(frozen=True)
class Dataset:
    """Labelled keypoint sequences; arrays as in the module docstring, fps always per sequence."""

    keypoints: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    subjects: np.ndarray
    fps: np.ndarray
    split: np.ndarray | None = None
    ids: np.ndarray | None = None
    pair: np.ndarray | None = None
    fold: np.ndarray | None = None
    path: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, i: int) -> np.ndarray:
        """float32[T_i, 18, 3]: sequence i without its padding."""
        return self.keypoints[i, : int(self.lengths[i])]

    def name(self, i: int) -> str:
        return str(self.ids[i]) if self.ids is not None else f"#{i}"

    def subset(self, index: np.ndarray) -> "Dataset":
        """The sequences picked by an index array or boolean mask, padding trimmed to the longest."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, np.int64)
        t = int(self.lengths[index].max()) if len(index) else 1
        return Dataset(
            keypoints=self.keypoints[index, :t],
            lengths=self.lengths[index],
            labels=self.labels[index],
            label_names=self.label_names,
            subjects=self.subjects[index],
            fps=self.fps[index],
            split=None if self.split is None else self.split[index],
            ids=None if self.ids is None else self.ids[index],
            pair=None if self.pair is None else _subset_pairs(self.pair, index),
            fold=None if self.fold is None else self.fold[index],
            path=self.path,
        )


def from_sequences(
    sequences: list[np.ndarray],
    labels: list[int] | np.ndarray,
    label_names: list[str] | tuple[str, ...],
    subjects: list[int] | np.ndarray,
    fps: float | list[float] | np.ndarray,
    split: list[str] | None = None,
    ids: list[str] | None = None,
    pair: list[int] | np.ndarray | None = None,
    fold: list[int] | np.ndarray | None = None,
) -> Dataset:
    """Pack variable-length float32[T_i, 18, 3] sequences into a Dataset (zero padded)."""
    n = len(sequences)
    t = max((len(s) for s in sequences), default=1)
    keypoints = np.zeros((n, t, N_JOINTS, 3), np.float32)
    for i, s in enumerate(sequences):
        keypoints[i, : len(s)] = s
    return Dataset(
        keypoints=keypoints,
        lengths=np.array([len(s) for s in sequences], np.int32),
        labels=np.asarray(labels, np.int32),
        label_names=tuple(str(x) for x in label_names),
        subjects=np.asarray(subjects, np.int32),
        fps=np.broadcast_to(np.asarray(fps, np.float32), (n,)).copy(),
        split=None if split is None else np.array(split, dtype=str),
        ids=None if ids is None else np.array(ids, dtype=str),
        pair=None if pair is None else np.asarray(pair, np.int32),
        fold=None if fold is None else np.asarray(fold, np.int32),
    )


def save(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write the dataset atomically (a temporary file renamed into place); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "keypoints": dataset.keypoints.astype(np.float32),
        "lengths": dataset.lengths.astype(np.int32),
        "labels": dataset.labels.astype(np.int32),
        "label_names": np.array(dataset.label_names, dtype=str),
        "subjects": dataset.subjects.astype(np.int32),
        "fps": dataset.fps.astype(np.float32),
    }
    if dataset.split is not None:
        arrays["split"] = np.asarray(dataset.split, dtype=str)
    if dataset.ids is not None:
        arrays["ids"] = np.asarray(dataset.ids, dtype=str)
    for key in ("pair", "fold"):
        value = getattr(dataset, key)
        if value is not None:
            arrays[key] = np.asarray(value, np.int32)
    write_atomically(target, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")
    return target


def load(path: str | os.PathLike[str]) -> Dataset:
    """Read and validate a dataset file; raises DatasetError naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file not found: {p}; write one with `engine prepare` (see trainer/dataset.py for the format)")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DatasetError(f"{p}: holds Python objects (pickle); store label_names, split and ids as plain string arrays") from None
        raise DatasetError(f"{p}: not a readable .npz dataset file ({exc})") from None
    except Exception as exc:  # zipfile/OSError variants for corrupt files
        raise DatasetError(f"{p}: not a readable .npz dataset file ({type(exc).__name__}: {exc})") from None
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise DatasetError(
                f"{p}: dataset key {key!r} is missing; a dataset file needs {', '.join(REQUIRED_KEYS)} (see trainer/dataset.py)"
            )
    n = len(np.atleast_1d(arrays["lengths"]))
    fps = np.asarray(arrays["fps"], np.float32)
    try:
        fps = np.broadcast_to(fps, (n,)).copy()
    except ValueError:
        raise DatasetError(f"{p}: dataset key 'fps' must be one frame rate or one per sequence ({n}), got shape {fps.shape}") from None
    try:
        return Dataset(
            keypoints=np.asarray(arrays["keypoints"], np.float32),
            lengths=_ints(arrays["lengths"], "lengths", p),
            labels=_ints(arrays["labels"], "labels", p),
            label_names=tuple(str(x) for x in np.atleast_1d(arrays["label_names"])),
            subjects=_ints(arrays["subjects"], "subjects", p),
            fps=fps,
            split=np.asarray(arrays["split"], dtype=str) if "split" in arrays else None,
            ids=np.asarray(arrays["ids"], dtype=str) if "ids" in arrays else None,
            pair=_ints(arrays["pair"], "pair", p) if "pair" in arrays else None,
            fold=_ints(arrays["fold"], "fold", p) if "fold" in arrays else None,
            path=str(p),
        )
    except DatasetError as exc:
        if str(exc).startswith(str(p)):
            raise
        raise DatasetError(f"{p}: {exc}") from None


def _ints(values: np.ndarray, key: str, path: Path) -> np.ndarray:
    values = np.atleast_1d(values)
    if values.dtype.kind not in "iu":
        raise DatasetError(f"{path}: dataset key {key!r} must hold integers, got dtype {values.dtype}")
    return values.astype(np.int32)


def _validate(d: Dataset) -> None:
    kp = d.keypoints
    if kp.ndim != 4 or kp.shape[2:] != (N_JOINTS, 3):
        raise DatasetError(f"dataset key 'keypoints' must be float32[N, T, {N_JOINTS}, 3] (COCO-18), got shape {kp.shape}")
    n, t = kp.shape[:2]
    for key in ("lengths", "labels", "subjects", "fps"):
        value = getattr(d, key)
        if value.shape != (n,):
            raise DatasetError(f"dataset key {key!r} must have one value per sequence ({n}), got shape {value.shape}")
    if n and (d.lengths.min() < 1 or d.lengths.max() > t):
        raise DatasetError(f"dataset key 'lengths' must be within 1..{t} (the keypoints' T), got {d.lengths.min()}..{d.lengths.max()}")
    if not d.label_names:
        raise DatasetError("dataset key 'label_names' is empty; give one name per class")
    if n and (d.labels.min() < 0 or d.labels.max() >= len(d.label_names)):
        raise DatasetError(f"dataset key 'labels' must index label_names (0..{len(d.label_names) - 1}), got {d.labels.min()}..{d.labels.max()}")
    if n and not (np.isfinite(d.fps).all() and (d.fps > 0).all()):
        raise DatasetError("dataset key 'fps' must be positive frame rates")
    if not np.isfinite(kp).all():
        raise DatasetError("dataset key 'keypoints' holds NaN or infinite values; use confidence 0 for a missing joint")
    for key in ("split", "ids", "pair", "fold"):
        value = getattr(d, key)
        if value is not None and value.shape != (n,):
            raise DatasetError(f"dataset key {key!r} must have one value per sequence ({n}), got shape {value.shape}")
    if d.split is not None:
        bad = sorted(set(d.split.tolist()) - set(SPLITS))
        if bad:
            raise DatasetError(f"dataset key 'split' must hold 'train' or 'test', got {', '.join(map(repr, bad[:3]))}")
    if d.pair is not None and n:
        _validate_pairs(d.pair)
    if d.fold is not None and n and d.fold.min() < 1:
        raise DatasetError(f"dataset key 'fold' must hold fold numbers from 1, got {d.fold.min()}")


def _validate_pairs(pair: np.ndarray) -> None:
    """`pair` indexes sequences (-1 = none), never itself, and is symmetric."""
    n = len(pair)
    if pair.min() < -1 or pair.max() >= n:
        raise DatasetError(f"dataset key 'pair' must index sequences (0..{n - 1}) or be -1, got {pair.min()}..{pair.max()}")
    paired = np.flatnonzero(pair >= 0)
    if (pair[paired] == paired).any():
        raise DatasetError(f"dataset key 'pair': sequence {int(paired[pair[paired] == paired][0])} is paired with itself")
    broken = paired[pair[pair[paired]] != paired]
    if len(broken):
        i = int(broken[0])
        raise DatasetError(f"dataset key 'pair' must be symmetric: pair[{i}] = {int(pair[i])} but pair[{int(pair[i])}] = {int(pair[pair[i]])}")


def _subset_pairs(pair: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`pair` re-indexed into a subset: -1 where the partner was left out (or repeated)."""
    first = np.full(len(pair), -1, np.int64)
    for new, old in reversed(list(enumerate(index.tolist()))):
        first[old] = new  # the first occurrence wins: a repeated sequence keeps its pair once
    out = np.full(len(index), -1, np.int32)
    for new, old in enumerate(index.tolist()):
        partner = int(pair[old])
        if first[old] == new and partner >= 0 and first[partner] >= 0:
            out[new] = first[partner]
    return out


def split_protocol(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, test mask): the file's `split` if it has one, else MHAD subjects 1-7 / 8-12."""
    if dataset.split is not None:
        train = dataset.split == "train"
    else:
        train = np.isin(dataset.subjects, sorted(PROTOCOL_TRAIN_SUBJECTS))
    return train, ~train


def resample(sequence: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """A sequence [T, ...] at target_fps: for each model frame the nearest source frame in time.

    The same rule as the runtime's windows (engine.classify.runtime.TrackWindow): nearest
    frame, the earlier one on a tie, never a blend (missing joints cannot be interpolated).
    """
    if source_fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {source_fps} and {target_fps}")
    n = len(sequence)
    if n == 0:
        return sequence[:0]
    duration = (n - 1) / source_fps
    m = int(np.floor(duration * target_fps + 1e-6)) + 1
    t = np.arange(m) / target_fps
    index = np.clip(np.ceil(t * source_fps - 0.5 - 1e-6).astype(np.int64), 0, n - 1)
    return sequence[index]
