"""Stable track ids for the people of one stream, frame after frame (norfair-shaped).

One `Tracker` per stream; call `update` once per frame, in frame order. Each live track keeps
the person's last keypoints and a velocity; a new frame's people are matched to the tracks'
predicted keypoints by a distance normalised by the person's size, so the same threshold works
for a child far away and an adult close to the camera.

Distance between a track and a detection: the mean pixel distance over the joints visible in
both, divided by the mean of their box diagonals; when no joint is visible in both, the
distance between box centres divided the same way. Matching is greedy on the cost matrix
(cheapest pair first): with a handful of people per frame and the velocity prediction it keeps
crossing people apart, and needs nothing beyond numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose.base import People, boxes_from_keypoints
from pose.coco import N_JOINTS

# Smallest person size used for normalising, as a fraction of the frame diagonal: a person
# seen as one or two joints has a box of almost nothing, which would make every distance huge.
_MIN_SCALE_FRACTION = 0.02
# Weight of the newest displacement in the velocity estimate (exponential smoothing).
_VELOCITY_GAIN = 0.5


@dataclass
class _Track:
    id: int
    keypoints: np.ndarray  # float32[18, 3], last seen
    velocity: np.ndarray   # float32[2], pixels per frame
    missing: int = 0       # frames since last seen

    def predicted(self) -> np.ndarray:
        kp = self.keypoints.copy()
        kp[:, :2] += self.velocity * (self.missing + 1)
        return kp


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _diagonals(boxes: np.ndarray) -> np.ndarray:
    return np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def pose_distance(a: np.ndarray, b: np.ndarray, min_scale: float = 1.0) -> np.ndarray:
    """float32[Pa, Pb] size-normalised distances between keypoints float32[Pa,18,3] and [Pb,18,3]."""
    a = np.asarray(a, np.float32).reshape(-1, N_JOINTS, 3)
    b = np.asarray(b, np.float32).reshape(-1, N_JOINTS, 3)
    both = (a[:, None, :, 2] > 0) & (b[None, :, :, 2] > 0)                       # [Pa, Pb, 18]
    gaps = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)        # [Pa, Pb, 18]
    shared = both.sum(axis=-1)
    joint_mean = np.where(both, gaps, 0).sum(axis=-1) / np.maximum(shared, 1)
    box_a, box_b = boxes_from_keypoints(a), boxes_from_keypoints(b)
    centre_gap = np.linalg.norm(_centres(box_a)[:, None] - _centres(box_b)[None], axis=-1)
    pixels = np.where(shared > 0, joint_mean, centre_gap)
    scale = np.maximum((_diagonals(box_a)[:, None] + _diagonals(box_b)[None]) / 2, min_scale)
    return (pixels / scale).astype(np.float32)


class Tracker:
    """Gives each person a stable int id across the frames of one stream.

    max_distance: largest size-normalised distance (see module doc) at which a person still
        continues a track; 0.5 means "moved less than half their size since last seen".
    max_missing: frames a track survives unseen before its id is retired (never reused).
    """

    def __init__(self, max_distance: float = 0.5, max_missing: int = 15) -> None:
        if max_distance <= 0:
            raise ValueError(f"max_distance must be positive, got {max_distance}")
        if max_missing < 0:
            raise ValueError(f"max_missing must be >= 0, got {max_missing}")
        self.max_distance = float(max_distance)
        self.max_missing = int(max_missing)
        self._tracks: list[_Track] = []
        self._next_id = 0

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks alive now (seen within the last max_missing frames)."""
        return [t.id for t in self._tracks]

    def update(self, people: People, frame_size: tuple[int, int] | None = None) -> People:
        """`people` of the next frame with `tracks` set; frame_size is (width, height) in pixels."""
        kp = people.keypoints
        min_scale = 1.0
        if frame_size is not None:
            min_scale = max(1.0, _MIN_SCALE_FRACTION * float(np.hypot(*frame_size[:2])))
        ids = np.full((len(kp),), -1, np.int32)
        matched_tracks: set[int] = set()
        if self._tracks and len(kp):
            predicted = np.stack([t.predicted() for t in self._tracks])
            cost = pose_distance(predicted, kp, min_scale)
            # Greedy: the cheapest remaining pair first, each track and person used once.
            order = np.argsort(cost, axis=None, kind="stable")
            for flat in order:
                ti, pi = divmod(int(flat), len(kp))
                if cost[ti, pi] > self.max_distance:
                    break
                if ti in matched_tracks or ids[pi] >= 0:
                    continue
                self._continue(self._tracks[ti], kp[pi])
                ids[pi] = self._tracks[ti].id
                matched_tracks.add(ti)
        survivors = []
        for i, track in enumerate(self._tracks):
            if i not in matched_tracks:
                track.missing += 1
            if track.missing <= self.max_missing:
                survivors.append(track)
        self._tracks = survivors
        for pi in np.flatnonzero(ids < 0):
            if not (kp[pi, :, 2] > 0).any():
                continue  # nobody to follow: no id
            self._tracks.append(_Track(self._next_id, kp[pi].copy(), np.zeros(2, np.float32)))
            ids[pi] = self._next_id
            self._next_id += 1
        return People(people.keypoints, people.boxes, ids)

    @staticmethod
    def _continue(track: _Track, kp: np.ndarray) -> None:
        gap = track.missing + 1
        old = _centres(boxes_from_keypoints(track.keypoints[None]))[0]
        new = _centres(boxes_from_keypoints(kp[None]))[0]
        step = (new - old) / gap
        track.velocity = ((1 - _VELOCITY_GAIN) * track.velocity + _VELOCITY_GAIN * step).astype(np.float32)
        track.keypoints = kp.copy()
        track.missing = 0
