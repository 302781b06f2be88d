"""Sliding-window classification per track: the code the classify stage and `engine evaluate` share.

Frames arrive per stream as per-person items (keypoints, skeleton images). Each (stream,
track) keeps a window of the last W frames *at the model's frame rate*: what it is fed is
resampled by nearest frame on the timestamps seq / source_fps (images cannot be blended and
missing joints cannot be interpolated, so nearest is the one rule that fits every input
kind; with equal rates it picks every frame). A track is classified every `stride` model
frames once it has the model's `min_window` frames: on a partial window (its first model frame
repeated at the front up to W, the contract's `padding`) until it has W, then on the last W.
The ready windows of one call run as one batch, and scores are smoothed per track by an
exponential moving average.

`sequence_windows` (evaluation) and `ClassifierRuntime.update` (live) both go through
`TrackWindow`, so evaluation measures exactly what runs live.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from engine.errors import ConfigError, ModelError
from engine.classify.features import keypoint_features_batch
from engine.classify.pairs import pair_features_batch
from engine.classify.contract import Contract, open_model
from pose.coco import N_JOINTS

UNKNOWN = "unknown"
PER_IMAGE_KINDS = frozenset({"skeleton_image", "skeleton_pyramid"})  # the W images of a window run as a batch
_TIME_EPS_S = 1e-6  # float slack when a model frame falls exactly on a source frame


# ---------------------------------------------------------------- per-frame items


def item_keys(contract: Contract) -> tuple[str, ...]:
    """Names of the per-frame items the model's windows are built from."""
    if contract.input_kind in ("keypoint_sequence", "pair"):
        return ("keypoints",)  # pair: both people's, [2, 18, 3] per frame
    if contract.input_kind == "skeleton_pyramid":
        return tuple(f"image_{s}" for s in contract.pyramid_sizes)
    return ("image",)


def item_spec(contract: Contract, key: str) -> tuple[np.dtype, tuple[int, ...]]:
    """dtype and per-person shape of one item `frame_items` makes (what a classify input must carry)."""
    if key == "keypoints":
        return np.dtype(np.float32), (N_JOINTS, 3)  # per person, a pair model's input too
    size = int(key.rsplit("_", 1)[1]) if key.startswith("image_") else contract.image_size
    return np.dtype(np.uint8), (size, size, 3)


def frame_items(contract: Contract, keypoints: np.ndarray) -> dict[str, np.ndarray]:
    """Per-person items for one frame: float32[P, 18, 3] keypoints -> arrays whose first axis is P.

    Always `keypoints`; image kinds add `image` uint8[P, S, S, 3], pyramids `image_<s>` per level.
    """
    kp = np.ascontiguousarray(np.asarray(keypoints, np.float32).reshape(-1, N_JOINTS, 3))
    items = {"keypoints": kp}
    kind = contract.input_kind
    if kind in ("skeleton_sequence", "skeleton_image"):
        from pose.skeleton import skeleton_images

        items["image"] = skeleton_images(kp, contract.image_size)
    elif kind == "skeleton_pyramid":
        from pose.skeleton import skeleton_pyramid

        sizes = contract.pyramid_sizes
        for size, level in zip(sizes, skeleton_pyramid(kp, sizes=sizes)):
            items[f"image_{size}"] = level
    return items


# ---------------------------------------------------------------- windowing


@dataclass(frozen=True)
class Window:
    """One window at the model's rate: `items` maps each item key to an array [W, ...].

    frames: the model frames the track really had (< W for a partial window, whose first
    W - frames rows repeat its first frame); seq_from is the first real one's source frame.
    """

    seq_from: int
    seq_to: int
    t_capture_ns: int
    items: dict[str, np.ndarray]
    frames: int


class TrackWindow:
    """One track's frames resampled to the model's fps, keeping the last W model frames.

    Model frame k sits at time k / model_fps after the track's first frame; it takes the source
    frame nearest in time (the earlier one on a tie), and is settled as soon as that frame has
    arrived: the source rate says where the next frame will fall, so no frame is waited for. A gap longer than `max_gap_s` or a step back in seq restarts the window.
    Windows are ready after min_window, min_window + stride, ... model frames while fewer than
    W (partial, padded with the first frame), then after W, W + stride, ... (full), so a
    contract with min_window == W makes full windows only.
    """

    def __init__(self, contract: Contract, source_fps: float, max_gap_s: float = 0.5) -> None:
        if not (math.isfinite(source_fps) and source_fps > 0):
            raise ValueError(f"source_fps must be a positive frame rate, got {source_fps}")
        self.window, self.stride, self.model_fps = contract.window, contract.stride, contract.fps
        self.min_window = contract.min_window  # padding: first_frame, the contract's one rule
        self.keys = item_keys(contract)
        self.source_fps = float(source_fps)
        self._half_frame_s = 0.5 / self.source_fps
        # Never restart for gaps of a few source frames, however low the source rate.
        self.max_gap_s = max(max_gap_s, 2.5 / self.source_fps)
        self._buffers: dict[str, np.ndarray] = {}
        self._seqs = np.zeros(self.window, np.int64)
        self._t_capture = np.zeros(self.window, np.int64)
        self.restarts = -1  # how many times the window started over (smoothing restarts with it)
        self.reset()

    def reset(self) -> None:
        self.restarts += 1
        self._seq0: int | None = None
        self._next = 0  # index of the next model frame to settle
        self._count = 0  # model frames written so far
        self._last: tuple[int, float, int, dict[str, np.ndarray]] | None = None

    def push(self, seq: int, t_capture_ns: int, row: Mapping[str, np.ndarray]) -> list[Window]:
        """Add one source frame (items of this person); returns the windows that became ready."""
        if self._last is not None:
            last_seq = self._last[0]
            if seq == last_seq:
                return []  # the same frame twice
            if seq < last_seq or (seq - last_seq) / self.source_fps > self.max_gap_s:
                self.reset()
        if self._seq0 is None:
            self._seq0 = seq
        t = (seq - self._seq0) / self.source_fps
        current = (seq, t, t_capture_ns, {key: np.array(row[key]) for key in self.keys})
        ready: list[Window] = []
        while True:
            tau = self._next / self.model_fps
            # Frame k is the nearest for every model time up to half a source frame after it, so
            # those are settled now: waiting for frame k+1 would add a source frame of latency.
            if tau > t + self._half_frame_s + _TIME_EPS_S:
                break
            last = self._last
            chosen = last if last is not None and tau - last[1] <= t - tau + _TIME_EPS_S else current
            self._append(chosen)
            self._next += 1
            if self._is_ready():
                ready.append(self._gather())
        self._last = current
        return ready

    def _append(self, frame: tuple[int, float, int, dict[str, np.ndarray]]) -> None:
        seq, _, t_capture_ns, items = frame
        if not self._buffers:
            self._buffers = {k: np.zeros((self.window,) + v.shape, v.dtype) for k, v in items.items()}
        pos = self._count % self.window
        for key, value in items.items():
            self._buffers[key][pos] = value
        self._seqs[pos] = seq
        self._t_capture[pos] = t_capture_ns
        self._count += 1

    def _is_ready(self) -> bool:
        count = self._count
        if count >= self.window:
            return (count - self.window) % self.stride == 0
        return count >= self.min_window and (count - self.min_window) % self.stride == 0

    def _gather(self) -> Window:
        if self._count >= self.window:
            order = (np.arange(self.window) + self._count) % self.window  # oldest first
        else:  # not wrapped yet: rows 0..count-1 in order; the first one fills the front
            order = np.maximum(np.arange(self.window) - (self.window - self._count), 0)
        return Window(
            seq_from=int(self._seqs[order[0]]),
            seq_to=int(self._seqs[order[-1]]),
            t_capture_ns=int(self._t_capture[order[-1]]),
            items={key: buf[order] for key, buf in self._buffers.items()},
            frames=min(self._count, self.window),
        )


def track_windows(contract: Contract, keypoints: np.ndarray, source_fps: float) -> Iterator[Window]:
    """Windows of one recorded sequence float32[T, 18, 3] captured at source_fps, as the live path makes them.

    A `pair` model takes the two people of a pair, float32[T, 2, 18, 3].
    seq is the frame index in the sequence (t_capture_ns 0); partial windows included.
    """
    if contract.input_kind == "pair":
        kp = np.asarray(keypoints, np.float32).reshape(-1, 2, N_JOINTS, 3)
        items = {"keypoints": kp}
    else:
        kp = np.asarray(keypoints, np.float32).reshape(-1, N_JOINTS, 3)
        items = frame_items(contract, kp)
    track = TrackWindow(contract, source_fps)
    for seq in range(len(kp)):
        yield from track.push(seq, 0, {key: items[key][seq] for key in track.keys})


def sequence_windows(
    contract: Contract, keypoints: np.ndarray, source_fps: float
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """`track_windows` as (seq_from, seq_to, model_input); model_input is what ClassifierRuntime.classify_windows takes."""
    for window in track_windows(contract, keypoints, source_fps):
        yield window.seq_from, window.seq_to, window.items


# ---------------------------------------------------------------- runtime


@dataclass(frozen=True)
class ClassifyOptions:
    """How the classify stage runs a model.

    ema: weight of the past in the per-track moving average of scores (0 disables smoothing).
    unknown_below: a smoothed top score below this publishes the label `unknown`; None: the
        model's own threshold (metadata `unknown_below`, chosen on validation data; else 0).
    max_batch: largest batch dimension fed to one inference call.
    forget_after_s: a track unseen this long (stream time) is dropped.
    max_gap_s: a track gap longer than this restarts its window (motion must be continuous).
    min_window_s: a track's first label after this many seconds of model frames (partial
        windows), instead of the model's metadata `min_window`; 0 keeps the model's. Above the
        model's window length: full windows only.
    """

    # Fields with a `flag` are options of `engine run` and the classify stage (engine.framework.options).
    threads: int = field(default=1, metadata={"flag": "--classify-threads", "help": "inference threads of the classifier"})
    ema: float = field(default=0.5, metadata={"flag": "--ema", "help": "score smoothing over time, 0-1 (0 disables)"})
    unknown_below: float | None = field(default=None, metadata={
        "flag": "--unknown-below", "help": "label 'unknown' under this score (default: the model's threshold, else 0)"})
    topk: int = 5
    max_batch: int = 256
    forget_after_s: float = 2.0
    max_gap_s: float = 0.5
    max_tracks_per_stream: int = 256
    min_window_s: float = field(default=0.0, metadata={
        "flag": "--min-window", "metavar": "SECONDS",
        "help": "a track's first label after this long, on a padded partial window (default: the model's min_window)"})

    def __post_init__(self) -> None:
        checks = {
            "threads": self.threads >= 1,
            "ema": 0.0 <= self.ema < 1.0,
            "unknown_below": self.unknown_below is None or 0.0 <= self.unknown_below <= 1.0,
            "topk": self.topk >= 1,
            "max_batch": self.max_batch >= 1,
            "forget_after_s": self.forget_after_s > 0,
            "max_gap_s": self.max_gap_s > 0,
            "max_tracks_per_stream": self.max_tracks_per_stream >= 1,
            "min_window_s": math.isfinite(self.min_window_s) and self.min_window_s >= 0,
        }
        ranges = {"ema": "in [0, 1)", "unknown_below": "in [0, 1]", "min_window_s": "of 0 (the model's) or more"}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"classify option {name}={getattr(self, name)!r} is out of range: use a value {ranges.get(name, 'above 0')}"
                )


@dataclass(frozen=True)
class LabelResult:
    """One classification of one track: the public label message fields but `t_publish_ns`."""

    stream: str
    track: int
    seq_from: int
    seq_to: int
    t_capture_ns: int
    label: str
    score: float
    topk: list[list[Any]]
    model: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _TrackState:
    window: TrackWindow
    last_seen_s: float
    scores: np.ndarray | None = None  # smoothed class scores
    restarts: int = 0  # the window's restart count these scores belong to


class ClassifierRuntime:
    """A classifier model plus per-(stream, track) windows and smoothing; one `update` per frame."""

    def __init__(self, model_path: str | os.PathLike[str], options: ClassifyOptions = ClassifyOptions()) -> None:
        self.options = options
        self.contract, self.session = open_model(model_path, threads=options.threads)
        if options.min_window_s > 0:  # the contract this runtime runs: sequence_windows(runtime.contract) agrees
            self.contract = self.contract.with_min_window_s(options.min_window_s)
        self.keys = item_keys(self.contract)
        self.unknown_below = self.contract.unknown_below if options.unknown_below is None else options.unknown_below
        self._input_names = [i.name for i in self.session.get_inputs()]
        self._output_name = self.session.get_outputs()[0].name
        self._labels = np.array(self.contract.labels, dtype=object)
        self._streams: dict[str, dict[int, _TrackState]] = {}

    @property
    def model_name(self) -> str:
        return self.contract.name

    def update(
        self,
        stream: str,
        seq: int,
        source_fps: float,
        tracks: np.ndarray,
        items: Mapping[str, np.ndarray],
        t_capture_ns: int,
    ) -> list[LabelResult]:
        """Feed one frame of a stream: tracks int32[P] and per-person items (first axis P).

        People with track -1 (no id yet) are skipped. If the items lack the model's images but
        carry keypoints, the images are drawn here. Raises ValueError on inconsistent arrays.
        """
        if not (math.isfinite(source_fps) and source_fps > 0):
            raise ValueError(f"source_fps must be a positive frame rate, got {source_fps}")
        tracks = np.asarray(tracks).reshape(-1)
        items = self._complete(items, len(tracks))
        t_s = seq / source_fps
        states = self._streams.setdefault(stream, {})
        ready: list[tuple[int, _TrackState, Window]] = []
        for i, track in enumerate(tracks.tolist()):
            if track < 0:
                continue
            state = states.get(track)
            if state is None or state.window.source_fps != source_fps:
                state = states[track] = _TrackState(TrackWindow(self.contract, source_fps, self.options.max_gap_s), t_s)
            for window in state.window.push(seq, t_capture_ns, {key: items[key][i] for key in self.keys}):
                ready.append((track, state, window))
            if state.restarts != state.window.restarts:  # a gap: old scores describe other motion
                state.scores, state.restarts = None, state.window.restarts
            state.last_seen_s = t_s
        self._forget(states, t_s)
        if not ready:
            return []
        stacked = {key: np.stack([w.items[key] for _, _, w in ready]) for key in self.keys}
        probs = self._classify_stacked(stacked)
        return [self._result(stream, track, state, window, p) for (track, state, window), p in zip(ready, probs)]

    def end_stream(self, stream: str) -> None:
        """Forget every track of a stream (end of stream, or the source restarted)."""
        self._streams.pop(stream, None)

    def track_count(self) -> int:
        return sum(len(states) for states in self._streams.values())

    def window_ids(self, stream: str) -> set[int]:
        """Track ids of a stream that have a window now (forgotten ones are gone)."""
        return set(self._streams.get(stream, {}))

    def classify_windows(self, windows: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """Class probabilities float32[N, C] of N windows (model inputs from sequence_windows), unsmoothed."""
        if not windows:
            return np.zeros((0, self.contract.n_classes), np.float32)
        return self._classify_stacked({key: np.stack([w[key] for w in windows]) for key in self.keys})

    # ------------------------------------------------------------ internals

    def _complete(self, items: Mapping[str, np.ndarray], n: int) -> Mapping[str, np.ndarray]:
        missing = [key for key in self.keys if key not in items]
        if missing:
            if "keypoints" not in items:
                raise ValueError(f"frame items lack {', '.join(missing)} (and keypoints to draw them from)")
            items = {**items, **frame_items(self.contract, items["keypoints"])}
        for key in self.keys:
            if len(items[key]) != n:
                raise ValueError(f"frame item {key!r} has {len(items[key])} rows for {n} tracks")
        return items

    def _forget(self, states: dict[int, _TrackState], now_s: float) -> None:
        stale = [t for t, s in states.items() if now_s - s.last_seen_s > self.options.forget_after_s or s.last_seen_s > now_s]
        for track in stale:
            del states[track]
        excess = len(states) - self.options.max_tracks_per_stream
        if excess > 0:
            for track in sorted(states, key=lambda t: states[t].last_seen_s)[:excess]:
                del states[track]

    def _result(self, stream: str, track: int, state: _TrackState, window: Window, probs: np.ndarray) -> LabelResult:
        ema = self.options.ema
        state.scores = probs if state.scores is None or ema == 0 else ema * state.scores + (1.0 - ema) * probs
        scores = state.scores
        order = np.argsort(-scores, kind="stable")[: self.options.topk]
        best = int(order[0])
        score = float(scores[best])
        label = self.contract.labels[best]
        if score < self.unknown_below or label in self.contract.unknown_labels:
            label = UNKNOWN
        return LabelResult(
            stream=stream,
            track=int(track),
            seq_from=window.seq_from,
            seq_to=window.seq_to,
            t_capture_ns=window.t_capture_ns,
            label=label,
            score=score,
            topk=[[self.contract.labels[int(j)], float(scores[j])] for j in order],
            model=self.contract.name,
        )

    def _classify_stacked(self, stacked: Mapping[str, np.ndarray]) -> np.ndarray:
        """Items stacked per window ([N, W, ...] each) -> float32[N, C]."""
        probs = self._run(model_inputs(self.contract, stacked))
        if self.contract.input_kind in PER_IMAGE_KINDS:
            return probs.reshape(-1, self.contract.window, probs.shape[-1]).mean(axis=1)
        return probs

    def _run(self, feeds: list[np.ndarray]) -> np.ndarray:
        rows = len(feeds[0])
        fixed = self.contract.fixed_batch
        step = fixed or self.options.max_batch
        parts = []
        for start in range(0, rows, step):
            chunk = [f[start : start + step] for f in feeds]
            n = len(chunk[0])
            if fixed and n < fixed:  # a graph with a fixed batch size gets padded chunks
                chunk = [np.concatenate([c, np.zeros((fixed - n,) + c.shape[1:], c.dtype)]) for c in chunk]
            out = self.session.run([self._output_name], dict(zip(self._input_names, chunk)))[0]
            parts.append(np.asarray(out, np.float32).reshape(len(chunk[0]), -1)[:n])
        probs = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if probs.shape[1] != self.contract.n_classes:
            raise ModelError(
                f"{self.contract.path}: model output has {probs.shape[1]} scores per row for "
                f"{self.contract.n_classes} labels; re-export the model"
            )
        return _as_probabilities(probs)


def model_inputs(contract: Contract, stacked: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The session inputs, in order, for N windows of items stacked as [N, W, ...].

    Keypoints become features [N, W, F]; images become float32 in [0, 1]. Per-image kinds
    give N * W rows (each window's images in order), whose scores the runtime averages.
    """
    if contract.input_kind == "keypoint_sequence":
        return [keypoint_features_batch(stacked["keypoints"], contract.feature_version)]
    if contract.input_kind == "pair":
        return [pair_features_batch(stacked["keypoints"], contract.feature_version)]
    if contract.input_kind == "skeleton_sequence":
        return [_unit_float(stacked["image"])]
    return [_unit_float(stacked[key].reshape((-1,) + stacked[key].shape[2:])) for key in item_keys(contract)]


def _unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1], as the models were trained."""
    return np.multiply(images, np.float32(1.0 / 255.0), dtype=np.float32)


def _as_probabilities(rows: np.ndarray) -> np.ndarray:
    """Rows that are not already probabilities (sum 1, none negative) go through a softmax."""
    ok = (np.abs(rows.sum(axis=1) - 1.0) < 1e-3) & (rows >= 0).all(axis=1)
    if ok.all():
        return rows
    shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
    return np.where(ok[:, None], rows, shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
