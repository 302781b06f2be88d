"""Live pair labels: which tracks of a stream form a pair, and a `pair` model run on each pair's window.

Which pairs (per frame, `match_pairs`): two tracked people whose hip centres are closer than
`start_distance` mean body heights start a pair when they face each other (each one's nose
clearly on the side of the other). A pair goes on while they stay within `keep_distance`
heights, whichever way they face, so that "departing" is followed to its end.
Each person is in at most one pair per frame: the pairs already going come first, then the
closest. Body height is the person's extent from the highest to the lowest seen joint (about
nose to ankle), or three torso lengths when legs are not seen.

Why these numbers: in SBU Kinect Interaction (the pair model's data) the two people's hip
centres are 0.1-1.6 body heights apart at their closest for every class but one outlier, and
2.9 at the farthest; 1.5 to start and 2.5 to keep label every interaction there without
pairing people across a room. Facing comes from the nose's offset from the neck along the
line between the two: BlazePose's nose is reliable. Two people who interact face each other, so a
camera beside them sees both in profile (as SBU's Kinect did); people seen from the front or the
back (offset near 0) or both facing one way start no pair. Measured on vtest.avi (pedestrians, no
interaction; BlazePose, 6 people, models/pair_sbu.onnx): 635 pair labels with the earlier rule
(any two close people not back to back), 179 with this one; every one of them wrong there, for
the model has no "none" class (models/pair_sbu.md).

`PairRuntime` keeps one window per pair (both tracks' keypoints, lower track id first; the
features put the person on the left first anyway) through `ClassifierRuntime`, so windows,
resampling, batching, smoothing and forgetting are the single-person model's.
"""
from __future__ import annotations

import math
import os
import itertools
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, LabelResult
from engine.errors import ConfigError, ModelError
from pose.coco import L_HIP, N_JOINTS, NECK, NOSE, R_HIP

_TORSOS_PER_HEIGHT = 3.0  # nose-to-ankle extent in torso lengths (anthropometric average)


@dataclass(frozen=True)
class PairingOptions:
    """When two tracks of one stream are a pair (distances in mean body heights of the two)."""

    start_distance: float = 1.5
    keep_distance: float = 2.5
    facing_min: float = 0.15  # nose offset from the neck, in torso lengths, that says which way a person faces

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_distance) and 0 < self.start_distance):
            raise ConfigError(f"pair option start_distance={self.start_distance!r} is out of range: use a value above 0")
        if not (math.isfinite(self.keep_distance) and self.keep_distance >= self.start_distance):
            raise ConfigError(f"pair option keep_distance={self.keep_distance!r} must be at least start_distance ({self.start_distance})")
        if not self.facing_min >= 0:
            raise ConfigError(f"pair option facing_min={self.facing_min!r} must be 0 or more")


@dataclass(frozen=True)
class PairLabelResult(LabelResult):
    """A pair model's label: `tracks` holds both track ids, lower first, and `track` is tracks[0].

    Published with `kind: "pair"` and `tracks` (engine.framework.schema.encode_label).
    """

    tracks: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Body:
    """One person's place in a frame: hip centre (pixels), body height (pixels), nose side (+1 right, -1 left, 0 unknown)."""

    centre: tuple[float, float]
    height: float
    facing: int


def body(keypoints: np.ndarray, facing_min: float = PairingOptions.facing_min) -> Body | None:
    """float32[18, 3] -> Body, or None when too little of the person is seen to place them."""
    kp = np.asarray(keypoints, np.float32).reshape(N_JOINTS, 3)
    seen = kp[:, 2] > 0
    if seen.sum() < 3:
        return None
    xy = kp[:, :2]
    hips = [j for j in (R_HIP, L_HIP) if seen[j]]
    centre = xy[hips].mean(axis=0) if hips else xy[seen].mean(axis=0)
    height = float(xy[seen, 1].max() - xy[seen, 1].min())
    torso = float(np.linalg.norm(xy[NECK] - centre)) if seen[NECK] and hips else 0.0
    height = max(height, torso * _TORSOS_PER_HEIGHT)
    if height <= 1.0:
        return None
    facing = 0
    if seen[NOSE] and seen[NECK] and torso > 0:
        offset = float(xy[NOSE, 0] - xy[NECK, 0]) / torso
        facing = 1 if offset > facing_min else -1 if offset < -facing_min else 0
    return Body((float(centre[0]), float(centre[1])), height, facing)


def match_pairs(
    keypoints: np.ndarray, tracks: np.ndarray, going: set[tuple[int, int]], options: PairingOptions = PairingOptions()
) -> list[tuple[int, int]]:
    """Pairs of row indices (i, j), tracks[i] < tracks[j], among the people of one frame.

    keypoints float32[P, 18, 3], tracks int[P] (-1: no id yet, never paired); `going` holds
    the track-id pairs (low, high) formed before, kept while within keep_distance.
    """
    tracks = np.asarray(tracks).reshape(-1)
    bodies = [body(k, options.facing_min) if t >= 0 else None for k, t in zip(keypoints, tracks.tolist())]
    candidates: list[tuple[bool, float, int, int]] = []
    for first in range(len(bodies)):
        for second in range(first + 1, len(bodies)):
            a, b = bodies[first], bodies[second]
            if a is None or b is None or tracks[first] == tracks[second]:
                continue
            i, j = (first, second) if tracks[first] < tracks[second] else (second, first)
            distance = math.dist(a.centre, b.centre) / ((a.height + b.height) / 2)
            key = (int(tracks[i]), int(tracks[j]))
            if key in going and distance <= options.keep_distance:
                candidates.append((False, distance, i, j))
            elif distance <= options.start_distance and _facing_each_other(a, b):
                candidates.append((True, distance, i, j))
    used: set[int] = set()
    pairs = []
    for _, _, i, j in sorted(candidates):
        if i not in used and j not in used:
            used.update((i, j))
            pairs.append((i, j))
    return pairs


def _facing_each_other(a: Body, b: Body) -> bool:
    """Each one's nose clearly on the side of the other: the one on the left faces right, and the other left."""
    left, right = (a, b) if a.centre[0] <= b.centre[0] else (b, a)
    return left.facing > 0 and right.facing < 0


class PairRuntime:
    """A `pair` model over the pairs of each stream; one `update` per frame, labels with both track ids."""

    def __init__(
        self, model_path: str | os.PathLike[str], options: ClassifyOptions = ClassifyOptions(),
        pairing: PairingOptions = PairingOptions(),
    ) -> None:
        self.classifier = ClassifierRuntime(model_path, options)
        if self.classifier.contract.input_kind != "pair":
            raise ModelError(
                f"{model_path}: --pair-model needs a model with input_kind 'pair', this one is "
                f"{self.classifier.contract.input_kind!r}; pass it as --model instead (or a pair model such as models/pair_sbu.onnx)"
            )
        self.pairing = pairing
        self.contract = self.classifier.contract
        self._ids: dict[str, dict[tuple[int, int], int]] = {}  # per stream: track pair -> window id
        self._next_id = itertools.count()  # window ids are never reused, so a forgotten pair's scores never leak
        self._going: dict[str, set[tuple[int, int]]] = {}

    @property
    def model_name(self) -> str:
        return self.classifier.model_name

    def update(
        self, stream: str, seq: int, source_fps: float, tracks: np.ndarray, keypoints: np.ndarray, t_capture_ns: int
    ) -> list[PairLabelResult]:
        """One frame: tracks int32[P], keypoints float32[P, 18, 3] -> pair labels that became ready."""
        kp = np.asarray(keypoints, np.float32).reshape(-1, N_JOINTS, 3)
        tracks = np.asarray(tracks).reshape(-1)
        if len(tracks) != len(kp):
            raise ValueError(f"{len(tracks)} track ids for {len(kp)} people")
        pairs = match_pairs(kp, tracks, self._going.get(stream, set()), self.pairing)
        keys = [(int(tracks[i]), int(tracks[j])) for i, j in pairs]
        self._going[stream] = set(keys)
        ids = self._ids.setdefault(stream, {})
        for key in keys:
            if key not in ids:
                ids[key] = next(self._next_id) % (2**31 - 1)
        window_ids = np.array([ids[key] for key in keys], np.int32)
        stacked = np.stack([kp[[i, j]] for i, j in pairs]) if pairs else np.zeros((0, 2, N_JOINTS, 3), np.float32)
        results = self.classifier.update(stream, seq, source_fps, window_ids, {"keypoints": stacked}, t_capture_ns)
        by_id = {v: k for k, v in ids.items()}
        # A top class among the model's `unknown_labels` (pair_sbu: `none`, two people near each other who do
        # nothing together) publishes no pair label at all: "not interacting" is the absence of a pair label,
        # not a label of its own. A low score (--pair-unknown-below) still gives `unknown`.
        quiet = set(self.contract.unknown_labels)
        labels = [PairLabelResult(**{**asdict(r), "track": by_id[r.track][0]}, tracks=list(by_id[r.track]))
                  for r in results if not (r.topk and r.topk[0][0] in quiet)]
        # Pairs whose window the classifier forgot (unseen for forget_after_s) are forgotten here too.
        alive = self.classifier.window_ids(stream)
        self._ids[stream] = {k: v for k, v in ids.items() if v in alive}
        return labels

    def pair_count(self) -> int:
        """Pairs with a window now, over all streams."""
        return self.classifier.track_count()

    def end_stream(self, stream: str) -> None:
        """Forget every pair of a stream (end of stream, or the source restarted)."""
        self.classifier.end_stream(stream)
        self._ids.pop(stream, None)
        self._going.pop(stream, None)
