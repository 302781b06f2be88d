"""SBU Kinect Interaction to a dataset file: two people interacting, 282 sequences, 8 classes.

Yun et al., CVPR workshops 2012. Layout: `<root>/<set>/<class>/<sequence>/skeleton_pos.txt`,
21 sets named after the subject pair (`s01s02` ...), class folders `01`-`08`. Each file is CSV,
91 columns a row: frame number, person A 15 x (x, y, z), person B 15 x (x, y, z), OpenNI
joint order, coordinates normalised (x about -0.1..1.1, y 0.2..1.4).

Choices:
- each person is its own sequence with the interaction's label (a one-person model sees one
  tracked person); `pair` holds the index of the partner's sequence (A <-> B, symmetric), from
  which the pair model (`input_kind` pair, trainer/windows.py `pair_sequences`) rebuilds each
  file's two people as one window; ids are "<set>/<class>/<seq>/A" and ".../B";
- x, y already behave like image coordinates (y grows downwards), so they become pixels of a
  640x480 image: X = 640 x, Y = 480 y; z (depth) is dropped. Not mirrored, and the sides are the
  person's own: with x right, y down, z away from the camera, the person on the image's left
  (facing right, towards the partner) has the left shoulder and hip further away in 258 of 282
  sequences, the one on the right nearer in 257 of 282, and in shaking_hands the right hand
  moves most for 50 of the 78 people. Joints map to COCO-18 through
  `pose.layouts` ("openni"): head -> nose, hand -> wrist, foot -> ankle, no eyes or ears;
  a joint stored as (0, 0, 0) (untracked) gets confidence 0, every other joint 1;
- 15 fps (the dataset's rate);
- `subjects` is the set's index, 1..21 in sorted name order (a set is one pair of people);
  `fold` is the standard 5-fold protocol over those indices, and `split` marks the chosen
  fold's sets "test" and the rest "train": run the five folds as five files.
- label_names follow the class folders 01..08.
Set names are matched against the 21 published ones, never renumbered from what is on disk,
so a partial copy keeps each set's index and fold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import DatasetError, SourceError
from pose.layouts import to_coco18
from trainer.dataset import Dataset, from_sequences, save

FPS = 15.0
IMAGE_SIZE = (640, 480)
N_JOINTS = 15
N_COLUMNS = 1 + 2 * N_JOINTS * 3
CLASSES: tuple[str, ...] = (
    "approaching", "departing", "kicking", "punching", "pushing", "hugging", "shaking_hands", "exchanging",
)
SETS: tuple[str, ...] = (
    "s01s02", "s01s03", "s01s07", "s02s01", "s02s03", "s02s06", "s02s07", "s03s02", "s03s04", "s03s05",
    "s03s06", "s04s02", "s04s03", "s04s06", "s05s02", "s05s03", "s06s02", "s06s03", "s06s04", "s07s01", "s07s03",
)
# The dataset's 5-fold cross-validation: set indices (1-based, sorted order) of each fold.
FOLDS: dict[int, tuple[int, ...]] = {
    1: (1, 9, 15, 19), 2: (5, 7, 10, 16), 3: (2, 3, 20, 21), 4: (4, 6, 8, 11), 5: (12, 13, 14, 17, 18),
}
FOLD_OF_SET: dict[int, int] = {s: fold for fold, sets in FOLDS.items() for s in sets}


def sequence_files(root: str | Path) -> list[tuple[int, int, Path]]:
    """(set index 1..21, class index 0..7, skeleton_pos.txt) of every sequence, in order."""
    top = Path(root).expanduser()
    if not top.is_dir():
        raise SourceError(f"SBU root {root} does not exist: point --root at the dataset folder that holds the set folders s01s02 ...")
    found = []
    for set_dir in sorted(p for p in top.iterdir() if p.is_dir()):
        if set_dir.name not in SETS:
            continue
        for class_dir in sorted(p for p in set_dir.iterdir() if p.is_dir()):
            if not (class_dir.name.isdigit() and 1 <= int(class_dir.name) <= len(CLASSES)):
                raise DatasetError(f"{class_dir}: SBU class folders are 01..{len(CLASSES):02d}")
            for seq_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
                path = seq_dir / "skeleton_pos.txt"
                if path.is_file():
                    found.append((SETS.index(set_dir.name) + 1, int(class_dir.name) - 1, path))
    if not found:
        raise SourceError(
            f"SBU root {root} has no <set>/<class>/<sequence>/skeleton_pos.txt files (sets s01s02 ...): "
            "point --root at the dataset folder that holds the set folders"
        )
    return found


def read_sequence(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file: the two people's float32[T, 18, 3] COCO-18 keypoints (A, B), in pixels."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: not an SBU skeleton CSV ({exc})") from None
    if rows.shape[1] != N_COLUMNS or not len(rows):
        raise DatasetError(f"{path}: SBU skeleton rows need {N_COLUMNS} columns (frame, 2 people x 15 joints x (x, y, z)), got {rows.shape[1]}")
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    people = rows[:, 1:].reshape(len(rows), 2, N_JOINTS, 3)
    tracked = np.any(people != 0, axis=-1)
    xy = people[..., :2] * np.asarray(IMAGE_SIZE, np.float64)
    keypoints = to_coco18(xy, "openni", confidence=tracked)
    return keypoints[:, 0], keypoints[:, 1]


def read_sbu(root: str | Path, fold: int = 1) -> Dataset:
    """Every sequence under `root`, two per file (A, B), `split` = test for fold `fold`."""
    if fold not in FOLDS:
        raise DatasetError(f"SBU fold must be one of {', '.join(map(str, FOLDS))}, got {fold}")
    sequences, labels, subjects, folds, pair, ids = [], [], [], [], [], []
    for set_index, label, path in sequence_files(root):
        a, b = read_sequence(path)
        name = "/".join(path.parent.parts[-3:])
        first = len(sequences)
        for person, keypoints in (("A", a), ("B", b)):
            sequences.append(keypoints)
            labels.append(label)
            subjects.append(set_index)
            folds.append(FOLD_OF_SET[set_index])
            ids.append(f"{name}/{person}")
        pair += [first + 1, first]
    split = ["test" if f == fold else "train" for f in folds]
    return from_sequences(sequences, labels, CLASSES, subjects, FPS, split=split, ids=ids, pair=pair, fold=folds)


def prepare_sbu(root: str | Path, out: str | Path, fold: int = 1) -> tuple[Path, Dataset]:
    """Read SBU under `root` with fold `fold` as the test split and write `out`; returns both."""
    dataset = read_sbu(root, fold)
    return save(dataset, out), dataset
