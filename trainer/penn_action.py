"""Penn Action to a dataset file: hand-annotated 2D joints of 2,326 web clips, 15 classes.

Zhang, Zhu, Derpanis, "From Actemes to Action", ICCV 2013. One MATLAB file per clip,
`<root>/labels/NNNN.mat` (or `<root>/NNNN.mat`), with fields `x`, `y` float[T, 13] (pixels),
`visibility` [T, 13] (0/1), `action` (class name), `train` (1 = official train split,
-1 = test), `nframes`, `dimensions` [H, W, T], plus `bbox` and `pose` (camera view), unused.

Choices, so a model trained on the file can be compared with published numbers:
- joints go through `pose.layouts` ("penn_action"): head -> nose, neck = mid-shoulders,
  no eyes or ears; the first joint of each left/right pair is the person's right (the
  dataset's README says left; see pose.layouts.PENN_ACTION_JOINTS for the evidence); `visibility` is the confidence, so an invisible joint is a missing joint
  (its annotated guess is dropped, and a neck with an invisible shoulder is missing too);
- `split` is the official `train` field: the protocol is the dataset's, not subjects';
- there are no subject ids; each clip is its own subject (the clip number, 1..2326) so that
  nothing groups unrelated clips; ids are the file stems ("0001");
- the clips are ordinary web video, mostly about 30 fps; the files do not say, so fps = 30;
- label_names are the 15 classes in sorted order (the dataset README's order), fixed, so a
  file written from part of the dataset numbers classes the same way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import DatasetError, SourceError
from pose.layouts import to_coco18
from trainer.dataset import Dataset, from_sequences, save

FPS = 30.0
N_JOINTS = 13
CLASSES: tuple[str, ...] = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing",
    "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar",
    "tennis_forehand", "tennis_serve",
)
SPLIT = {1: "train", -1: "test"}


def label_files(root: str | Path) -> list[Path]:
    """The clip files under `root` (its labels/ folder, or root itself), in clip order."""
    top = Path(root).expanduser()
    if not top.is_dir():
        raise SourceError(f"Penn Action root {root} does not exist: point --root at the dataset folder that holds labels/0001.mat ...")
    folder = top / "labels" if (top / "labels").is_dir() else top
    files = sorted(p for p in folder.glob("*.mat") if p.stem.isdigit())
    if not files:
        raise SourceError(f"Penn Action root {root} has no labels/NNNN.mat files: point --root at the dataset folder that holds labels/")
    return sorted(files, key=lambda p: int(p.stem))


def read_clip(path: Path) -> tuple[np.ndarray, str, str]:
    """One clip: (float32[T, 18, 3] COCO-18 keypoints, class name, "train"/"test")."""
    from scipy.io import loadmat  # the training extra; only importers need it

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for truncated or foreign files
        raise DatasetError(f"{path}: not a readable Penn Action .mat file ({type(exc).__name__}: {exc})") from None
    for key in ("x", "y", "visibility", "action", "train"):
        if key not in mat:
            raise DatasetError(f"{path}: Penn Action field {key!r} is missing")
    x, y = np.asarray(mat["x"], np.float64), np.asarray(mat["y"], np.float64)
    visibility = np.asarray(mat["visibility"], np.float64)
    if x.ndim != 2 or x.shape[1] != N_JOINTS or y.shape != x.shape or visibility.shape != x.shape or not len(x):
        raise DatasetError(
            f"{path}: x, y and visibility must be [T, {N_JOINTS}] with T >= 1, got {x.shape}, {y.shape}, {visibility.shape}"
        )
    action = str(np.asarray(mat["action"]).ravel()[0]).strip()
    if action not in CLASSES:
        raise DatasetError(f"{path}: unknown Penn Action class {action!r}; known: {', '.join(CLASSES)}")
    train = int(np.asarray(mat["train"]).ravel()[0])
    if train not in SPLIT:
        raise DatasetError(f"{path}: field 'train' must be 1 (train) or -1 (test), got {train}")
    keypoints = to_coco18(np.stack([x, y], axis=-1), "penn_action", confidence=visibility > 0)
    return keypoints, action, SPLIT[train]


def read_penn_action(root: str | Path) -> Dataset:
    """Every clip under `root` as a Dataset (see the module docstring for the choices made)."""
    sequences, labels, subjects, split, ids = [], [], [], [], []
    for path in label_files(root):
        keypoints, action, part = read_clip(path)
        sequences.append(keypoints)
        labels.append(CLASSES.index(action))
        subjects.append(int(path.stem))
        split.append(part)
        ids.append(path.stem)
    return from_sequences(sequences, labels, CLASSES, subjects, FPS, split=split, ids=ids)


def prepare_penn_action(root: str | Path, out: str | Path) -> tuple[Path, Dataset]:
    """Read Penn Action under `root` and write the dataset file `out`; returns both."""
    dataset = read_penn_action(root)
    return save(dataset, out), dataset
