"""Model inputs for training, built by the runtime's own windowing (engine.classify.runtime).

Train and live must see the same windows: frame choice at the model's fps (nearest frame),
window length and alignment all come from `TrackWindow`, fed frame *indices* instead of
images so that a window is a row of indices into a table of per-frame items drawn once by
`frame_items` (skeleton images are drawn only for frames some window uses). Keypoint
windows become features with the runtime's `keypoint_features_batch`. Partial windows (a
track's first `min_window` to W - 1 model frames, padded with its first frame) are training
windows too, for short sequences and for the start of long ones: the runtime labels early.
TensorFlow-free.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.classify.runtime import PER_IMAGE_KINDS, TrackWindow, frame_items, item_keys
from engine.classify.features import FEATURE_VERSION, keypoint_features_batch
from engine.classify.pairs import PAIR_FEATURE_VERSION, pair_features_batch
from engine.classify.contract import PADDINGS, Contract, expected_input_shapes, model_frames
from pose.coco import N_JOINTS
from engine.errors import DatasetError
from trainer.dataset import Dataset

# A track's first label after half a second: every clip of 0.5 s or more gets one (at source
# rates of 5 fps and up), and a 3 s window still has a sixth of its frames real.
DEFAULT_MIN_WINDOW_S = 0.5


def training_contract(
    input_kind: str, labels: tuple[str, ...], window: int, stride: int, fps: float, image_size: int,
    min_window: int = 0,
) -> Contract:
    """The contract the exported model will carry, before there is a file.

    min_window: model frames before a track's first (partial) window; 0: DEFAULT_MIN_WINDOW_S.
    """
    if not 0 <= min_window <= window:
        raise ValueError(f"min_window must be 0 (half a second) or 1 to the window ({window}), got {min_window}")
    contract = Contract(
        path="<training>",
        labels=tuple(labels),
        input_kind=input_kind,
        image_size=int(image_size),
        window=int(window),
        stride=int(stride),
        min_window=int(min_window) or model_frames(DEFAULT_MIN_WINDOW_S, fps, window),
        padding=PADDINGS[0],
        fps=float(fps),
        trained_on="",
        metrics={},
        feature_version=FEATURE_VERSION if input_kind == "keypoint_sequence" else PAIR_FEATURE_VERSION if input_kind == "pair" else None,
        input_names=(),
        input_shapes=(),
        output_shape=(),
    )
    shapes = expected_input_shapes(contract)
    return dataclasses.replace(contract, input_shapes=tuple(shapes), output_shape=(None, len(labels)))


def window_index(contract: Contract, length: int, source_fps: float, stride: int | None = None) -> np.ndarray:
    """int64[N, W]: source frame indices of each window of a `length`-frame sequence.

    Exactly the windows the runtime makes (sequence_windows), partial ones (padded rows repeat
    the first index) included, optionally at another stride.
    """
    return window_rows(contract, length, source_fps, stride)[0]


def window_rows(
    contract: Contract, length: int, source_fps: float, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(window_index's int64[N, W], int32[N] model frames each window really has: < W when partial)."""
    if stride is not None and stride != contract.stride:
        contract = dataclasses.replace(contract, stride=int(stride))
    track = TrackWindow(contract, source_fps)
    keys = track.keys
    rows, frames = [], []
    for seq in range(length):
        for window in track.push(seq, 0, {key: np.int64(seq) for key in keys}):
            rows.append(window.items[keys[0]])
            frames.append(window.frames)
    return np.array(rows, np.int64).reshape(-1, contract.window), np.array(frames, np.int32)


@dataclass(frozen=True)
class WindowSet:
    """Windows of many sequences.

    frames: per-frame items table, key -> array[Nf, ...] (keypoint kinds: `features` is
        already float32[N, W, F] per window, `keypoints` float32[N, W, 18, 3] the windows it
        was computed from, and `frames` is empty).
    index: int64[N, W] rows of `frames` per window (empty for keypoint kinds).
    labels / sequence: int32[N], the window's class and its sequence's index in the dataset.
    window_frames: int32[N], the model frames each window really has (< W: a partial window).
    frame_labels: int32[Nf], the class of each frame (per-image models train on frames).
    frame_keypoints: float32[Nf, 18, 3], what each frame's images were drawn from (image kinds),
        so that training can draw augmented images.
    """

    contract: Contract
    features: np.ndarray | None
    keypoints: np.ndarray | None  # pair kind: float32[N, W, 2, 18, 3], both people
    frames: dict[str, np.ndarray]
    index: np.ndarray
    labels: np.ndarray
    sequence: np.ndarray
    frame_labels: np.ndarray
    window_frames: np.ndarray
    frame_keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_sequences(self) -> int:
        return len(np.unique(self.sequence))

    @property
    def partial(self) -> np.ndarray:
        """bool[N]: windows padded because their track had fewer than W model frames."""
        return self.window_frames < self.contract.window

    def inputs(self, rows: np.ndarray | slice) -> list[np.ndarray]:
        """Model inputs (float32, as the runtime feeds them) of the windows `rows`."""
        if self.features is not None:
            return [self.features[rows]]
        index = self.index[rows]
        return [self.frames[key][index].astype(np.float32) / np.float32(255.0) for key in item_keys(self.contract)]

    def frame_inputs(self, rows: np.ndarray | slice) -> list[np.ndarray]:
        """Per-image inputs of the frames `rows` (per-image kinds)."""
        return [self.frames[key][rows].astype(np.float32) / np.float32(255.0) for key in item_keys(self.contract)]


def pair_sequences(dataset: Dataset, picked: np.ndarray) -> list[tuple[int, int]]:
    """(i, partner) of each two-person sequence among `picked`, once per pair (i < partner).

    A pair whose first sequence is picked counts (both people of a pair share a set, so a
    split never separates them); sequences without a partner are left out.
    """
    if dataset.pair is None:
        raise DatasetError(f"{dataset.path or 'dataset'}: a pair model needs a dataset with a 'pair' key (two-person "
                           "sequences, e.g. `engine prepare sbu`)")
    pairs = []
    for i in np.asarray(picked, np.int64).tolist():
        j = int(dataset.pair[i])
        if j >= 0 and j != i:
            pairs.append((min(i, j), max(i, j)))
    return sorted(set(pairs))


def pair_keypoints(dataset: Dataset, i: int, j: int) -> np.ndarray:
    """float32[T, 2, 18, 3]: sequences i and j side by side (the shorter one's missing frames unseen)."""
    a, b = dataset.sequence(i), dataset.sequence(j)
    out = np.zeros((max(len(a), len(b)), 2, N_JOINTS, 3), np.float32)
    out[: len(a), 0], out[: len(b), 1] = a, b
    return out


def build_windows(
    dataset: Dataset, mask: np.ndarray, contract: Contract, stride: int | None = None
) -> WindowSet:
    """The windows of the sequences `mask` picks, built as the runtime builds them.

    A `pair` contract makes one window row per pair of sequences (`sequence` = the pair's first).
    """
    picked = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask, np.int64)
    if contract.input_kind == "pair":
        return _pair_windows(dataset, picked, contract, stride)
    keys = item_keys(contract)
    frame_kp, keypoint_rows, feature_rows, tables, indices, labels, sequences, frame_labels = [], [], [], [], [], [], [], []
    window_frames = []
    offset = 0
    for i in picked.tolist():
        kp = dataset.sequence(i)
        index, real = window_rows(contract, len(kp), float(dataset.fps[i]), stride)
        if not len(index):
            continue  # shorter than min_window: the runtime would never classify it either
        label = int(dataset.labels[i])
        labels.append(np.full(len(index), label, np.int32))
        sequences.append(np.full(len(index), i, np.int32))
        window_frames.append(real)
        if contract.input_kind == "keypoint_sequence":
            keypoint_rows.append(kp[index])
            feature_rows.append(keypoint_features_batch(kp[index]))
            continue
        used, local = np.unique(index, return_inverse=True)
        items = frame_items(contract, kp[used])
        tables.append({key: items[key] for key in keys})
        frame_kp.append(kp[used])
        indices.append(local.reshape(index.shape) + offset)
        frame_labels.append(np.full(len(used), label, np.int32))
        offset += len(used)
    empty_i = np.zeros((0,), np.int32)
    if contract.input_kind == "keypoint_sequence":
        features = np.concatenate(feature_rows) if feature_rows else np.zeros((0, contract.window, 0), np.float32)
        keypoints = np.concatenate(keypoint_rows) if keypoint_rows else np.zeros((0, contract.window, N_JOINTS, 3), np.float32)
        frames: dict[str, np.ndarray] = {}
        index_all = np.zeros((len(features), 0), np.int64)
    else:
        features = keypoints = None
        frames = {key: np.concatenate([t[key] for t in tables]) for key in keys} if tables else {}
        index_all = np.concatenate(indices) if indices else np.zeros((0, contract.window), np.int64)
    return WindowSet(
        contract=contract,
        features=features,
        keypoints=keypoints,
        frames=frames,
        index=index_all,
        labels=np.concatenate(labels) if labels else empty_i,
        sequence=np.concatenate(sequences) if sequences else empty_i,
        frame_labels=np.concatenate(frame_labels) if frame_labels else empty_i,
        window_frames=np.concatenate(window_frames) if window_frames else empty_i,
        frame_keypoints=np.concatenate(frame_kp) if frame_kp else None,
    )


def _pair_windows(dataset: Dataset, picked: np.ndarray, contract: Contract, stride: int | None) -> WindowSet:
    keypoint_rows, labels, sequences, window_frames = [], [], [], []
    for i, j in pair_sequences(dataset, picked):
        kp = pair_keypoints(dataset, i, j)
        index, real = window_rows(contract, len(kp), float(dataset.fps[i]), stride)
        if not len(index):
            continue
        keypoint_rows.append(kp[index])
        labels.append(np.full(len(index), int(dataset.labels[i]), np.int32))
        sequences.append(np.full(len(index), i, np.int32))
        window_frames.append(real)
    keypoints = np.concatenate(keypoint_rows) if keypoint_rows else np.zeros((0, contract.window, 2, N_JOINTS, 3), np.float32)
    features = pair_features_batch(keypoints, contract.feature_version)
    empty_i = np.zeros((0,), np.int32)
    return WindowSet(
        contract=contract, features=features, keypoints=keypoints, frames={},
        index=np.zeros((len(features), 0), np.int64),
        labels=np.concatenate(labels) if labels else empty_i,
        sequence=np.concatenate(sequences) if sequences else empty_i,
        frame_labels=empty_i,
        window_frames=np.concatenate(window_frames) if window_frames else empty_i,
    )


def sequence_scores(probs: np.ndarray, sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sequence ids, float32[S, C] mean window probabilities per sequence): one vote each.

    Every window counts once, partial ones too: a sequence shorter than the model's window
    has only partial windows, and a long one is labelled from its first min_window frames on.
    """
    ids, inverse = np.unique(sequence, return_inverse=True)
    sums = np.zeros((len(ids), probs.shape[1]), np.float64)
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(ids))[:, None]
    return ids, (sums / counts).astype(np.float32)
