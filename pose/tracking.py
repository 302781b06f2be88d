"""Stable track ids for the people of one stream, frame after frame (norfair-shaped).

One `Tracker` per stream; call `update` once per frame, in frame order. Each track keeps the
person's last keypoints, a constant-velocity motion model and, when frames are given, a small
colour histogram of the torso; a new frame's people are matched to the tracks in one assignment
on a cost that adds the two cues:

- motion: the distance between the track's *predicted* keypoints (last seen + velocity x frames
  since) and the person's, normalised by body size (`pose_distance`), so one threshold fits a
  child far away and an adult close to the camera. It is also the gate: beyond `max_distance`
  (widened a little for each frame a track has been unseen) no match, whatever the colours say.
  For a track unseen for a while the nearer of its predicted and its last seen place counts: the
  person may have walked on behind something, or stopped, or turned back.
- appearance: the Hellinger distance (0 same, 1 disjoint) between colour histograms of the torso
  (`appearance_descriptors`: hue x saturation, plus brightness for greys). It decides what motion
  alone cannot: two people who meet, stop or turn back while overlapping. A track unseen for a
  while (short occlusion) is re-matched only where the colours agree as well.

Matching is greedy on the combined cost matrix (cheapest pair first): with a handful of people
per frame it equals the optimal assignment in practice and needs nothing beyond numpy (scipy is
not a runtime dependency). A track ends when its person is gone for `max_missing` frames, or
after `edge_missing` frames when it was last seen at the frame's border heading out; ended ids
are never reused, so a returning person gets a new id (and downstream a new classifier window).

Nothing here reads a clock: the same frames give the same ids on every run.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose.base import People, boxes_from_keypoints
from pose.coco import L_HIP, L_SHOULDER, N_JOINTS, R_HIP, R_SHOULDER

# Smallest person size used for normalising, as a fraction of the frame diagonal: a person
# seen as one or two joints has a box of almost nothing, which would make every distance huge.
_MIN_SCALE_FRACTION = 0.02
# Weight of the newest displacement in the velocity estimate (exponential smoothing).
_VELOCITY_GAIN = 0.5
# Weight of the newest histogram in a track's colour model: slow, so a frame where someone
# else's arm crosses the torso does not repaint the track.
_APPEARANCE_GAIN = 0.2
# The gate widens by this fraction of max_distance per unseen frame (the prediction drifts),
# up to _GATE_GROWTH_MAX times.
_GATE_GROWTH = 0.15
_GATE_GROWTH_MAX = 2.0
# A box within this fraction of the frame size from a border "touches" it.
_EDGE_FRACTION = 0.02
# A person's box overlapping another's by more than this (intersection over own area) is
# partly hidden: its torso colours are a mix, so they do not update the track's model.
_OCCLUDED_OVERLAP = 0.3

# Torso colour histogram: 8 hues x 3 saturations for coloured pixels, 4 brightness bins for
# greys (hue means nothing at low saturation: black, white and grey clothes).
_HUE_BINS, _SAT_BINS, _GREY_BINS = 8, 3, 4
APPEARANCE_BINS = _HUE_BINS * _SAT_BINS + _GREY_BINS
_GREY_BELOW = 48        # saturation (0-255) under which a pixel counts as grey
_SAMPLES_PER_AXIS = 16  # the torso is subsampled to at most 16 x 16 pixels: cost per person stays flat
_TORSO = (R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)


@dataclass
class _Track:
    id: int
    keypoints: np.ndarray        # float32[18, 3], last seen
    box: np.ndarray              # float32[4], around the visible keypoints last seen
    velocity: np.ndarray         # float32[2], pixels per frame
    appearance: np.ndarray | None = None  # float32[APPEARANCE_BINS], sums to 1; None: never seen in colour
    missing: int = 0             # frames since last seen

    def predicted(self) -> np.ndarray:
        kp = self.keypoints.copy()
        kp[:, :2] += self.velocity * (self.missing + 1)
        return kp


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _diagonals(boxes: np.ndarray) -> np.ndarray:
    return np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def pose_distance(a: np.ndarray, b: np.ndarray, min_scale: float = 1.0) -> np.ndarray:
    """float32[Pa, Pb] size-normalised distances between keypoints float32[Pa,18,3] and [Pb,18,3].

    The mean pixel distance over the joints visible in both, divided by the mean of the two box
    diagonals; when no joint is visible in both, the distance between box centres divided the same way.
    """
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


def _hidden(boxes: np.ndarray) -> np.ndarray:
    """bool[P]: whose box is covered by another's beyond _OCCLUDED_OVERLAP of its own area."""
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    overlap = iw * ih / np.maximum((x1 - x0) * (y1 - y0), 1.0)[:, None]
    np.fill_diagonal(overlap, 0)
    return (overlap > _OCCLUDED_OVERLAP).any(axis=1)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32[Pa, Pb] Hellinger distances (0 same colours, 1 none in common) of histograms [Pa, K], [Pb, K]."""
    ra = np.sqrt(np.asarray(a, np.float32))
    rb = np.sqrt(np.asarray(b, np.float32))
    return np.sqrt(np.clip(1.0 - ra @ rb.T, 0.0, 1.0)).astype(np.float32)


def _torso_box(kp: np.ndarray) -> tuple[float, float, float, float] | None:
    """Pixel box of the torso: shoulders to hips when seen, else the middle of the person's box."""
    torso = kp[list(_TORSO)]
    seen = torso[torso[:, 2] > 0, :2]
    visible = kp[kp[:, 2] > 0, :2]
    if len(visible) == 0:
        return None
    x0, y0 = visible.min(axis=0)
    x1, y1 = visible.max(axis=0)
    if len(seen) >= 3:
        tx0, ty0 = seen.min(axis=0)
        tx1, ty1 = seen.max(axis=0)
        # Shoulders and hips are the torso's corners: keep the inner part (no background at the
        # sides), and a torso seen edge-on still gets a strip as wide as a quarter of its height.
        half_w = max((tx1 - tx0) * 0.35, (ty1 - ty0) * 0.125)
        cx = (tx0 + tx1) / 2
        return cx - half_w, ty0 + 0.1 * (ty1 - ty0), cx + half_w, ty1 - 0.1 * (ty1 - ty0)
    # No torso joints to go by: the central half of the width, the second fifth to the half of the height.
    w, h = x1 - x0, y1 - y0
    return x0 + 0.25 * w, y0 + 0.2 * h, x1 - 0.25 * w, y0 + 0.5 * h


def appearance_descriptors(frame_bgr: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """float32[P, APPEARANCE_BINS] torso colour histograms (rows sum to 1; all zeros where nothing is seen).

    frame_bgr: uint8[H, W, 3]; keypoints: float32[P, 18, 3] in the frame's pixels. The torso is
    read at most 16 x 16 samples (strided slicing, no copy of the frame), so the cost per person
    is a few tens of microseconds whatever the resolution.
    """
    kp = np.asarray(keypoints, np.float32).reshape(-1, N_JOINTS, 3)
    out = np.zeros((len(kp), APPEARANCE_BINS), np.float32)
    h, w = frame_bgr.shape[:2]
    for i in range(len(kp)):
        box = _torso_box(kp[i])
        if box is None:
            continue
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        sx = max(1, (x1 - x0) // _SAMPLES_PER_AXIS)
        sy = max(1, (y1 - y0) // _SAMPLES_PER_AXIS)
        crop = np.ascontiguousarray(frame_bgr[y0:y1:sy, x0:x1:sx])
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)  # H 0-179, S, V 0-255
        grey = hsv[:, 1] < _GREY_BELOW
        coloured_bin = (hsv[:, 0] * _HUE_BINS // 180) * _SAT_BINS + (hsv[:, 1] - _GREY_BELOW) * _SAT_BINS // (256 - _GREY_BELOW)
        grey_bin = _HUE_BINS * _SAT_BINS + hsv[:, 2] * _GREY_BINS // 256
        counts = np.bincount(np.where(grey, grey_bin, coloured_bin), minlength=APPEARANCE_BINS)
        out[i] = counts / counts.sum()
    return out


class Tracker:
    """Gives each person a stable int id across the frames of one stream.

    max_distance: largest size-normalised distance (see `pose_distance`) at which a person still
        continues a track; 0.5 means "moved less than half their size away from where the track's
        motion said they would be".
    max_missing: frames a track survives unseen before its id is retired (never reused).
    appearance_weight: how much the colour distance (0-1) adds to the motion cost (in units of
        max_distance) when frames are given; 0 tracks by motion alone.
    max_appearance: a track unseen for a frame or more is re-matched only to a person whose
        colours are closer than this (motion after an occlusion is a guess, colours are not).
    edge_missing: frames after which a track last seen at the frame's border, moving out, ends.
    first_id: the first id given (a stream that starts over continues its ids: none is reused).
    """

    def __init__(self, max_distance: float = 0.5, max_missing: int = 15, *, appearance_weight: float = 1.0,
                 max_appearance: float = 0.5, edge_missing: int = 3, first_id: int = 0) -> None:
        if max_distance <= 0:
            raise ValueError(f"max_distance must be positive, got {max_distance}")
        if max_missing < 0:
            raise ValueError(f"max_missing must be >= 0, got {max_missing}")
        if appearance_weight < 0:
            raise ValueError(f"appearance_weight must be >= 0, got {appearance_weight}")
        if not 0 < max_appearance <= 1:
            raise ValueError(f"max_appearance must be in (0, 1], got {max_appearance}")
        if edge_missing < 0:
            raise ValueError(f"edge_missing must be >= 0, got {edge_missing}")
        self.max_distance = float(max_distance)
        self.max_missing = int(max_missing)
        self.appearance_weight = float(appearance_weight)
        self.max_appearance = float(max_appearance)
        self.edge_missing = int(edge_missing)
        self._tracks: list[_Track] = []
        self._next_id = int(first_id)
        self.ended_ids: list[int] = []  # ids whose tracks ended in the last update

    @property
    def next_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks alive now (seen, or unseen for fewer frames than they survive)."""
        return [t.id for t in self._tracks]

    def update(self, people: People, frame_size: tuple[int, int] | None = None, frame: np.ndarray | None = None,
               *, appearance: np.ndarray | None = None) -> People:
        """`people` of the next frame with `tracks` set; frame_size is (width, height) in pixels.

        frame: the BGR uint8[H, W, 3] image the people were found in, for their colours; or
        appearance: their histograms float32[P, APPEARANCE_BINS] computed already (e.g. by
        `appearance_descriptors` where the frame was). Without either, motion alone.
        """
        kp = people.keypoints
        if frame_size is None and frame is not None:
            frame_size = (frame.shape[1], frame.shape[0])
        min_scale = 1.0
        if frame_size is not None:
            min_scale = max(1.0, _MIN_SCALE_FRACTION * float(np.hypot(*frame_size[:2])))
        if appearance is None and frame is not None and len(kp):
            appearance = appearance_descriptors(frame, kp)
        if appearance is not None:
            appearance = np.asarray(appearance, np.float32).reshape(len(kp), APPEARANCE_BINS)
        ids = np.full((len(kp),), -1, np.int32)
        boxes = boxes_from_keypoints(kp)
        matched_tracks: set[int] = set()
        if self._tracks and len(kp):
            hidden = _hidden(boxes)
            for ti, pi in self._assign(kp, appearance, min_scale):
                self._continue(self._tracks[ti], kp[pi], boxes[pi], None if appearance is None else appearance[pi],
                               bool(hidden[pi]))
                ids[pi] = self._tracks[ti].id
                matched_tracks.add(ti)
        self.ended_ids = []
        survivors = []
        for i, track in enumerate(self._tracks):
            if i not in matched_tracks:
                track.missing += 1
            if track.missing > self.max_missing or (track.missing > self.edge_missing
                                                    and frame_size is not None and self._leaving(track, frame_size)):
                self.ended_ids.append(track.id)
            else:
                survivors.append(track)
        self._tracks = survivors
        for pi in np.flatnonzero(ids < 0):
            if not (kp[pi, :, 2] > 0).any():
                continue  # nobody to follow: no id
            colours = None if appearance is None or appearance[pi].sum() <= 0 else appearance[pi].copy()
            self._tracks.append(_Track(self._next_id, kp[pi].copy(), boxes[pi].copy(), np.zeros(2, np.float32), colours))
            ids[pi] = self._next_id
            self._next_id += 1
        return People(people.keypoints, people.boxes, ids)

    def _assign(self, kp: np.ndarray, appearance: np.ndarray | None, min_scale: float) -> list[tuple[int, int]]:
        """(track index, person index) pairs: greedy, cheapest combined cost first, within the gates."""
        tracks = self._tracks
        motion = pose_distance(np.stack([t.predicted() for t in tracks]), kp, min_scale)   # [T, P]
        missing = np.array([t.missing for t in tracks], np.float32)
        if missing.any():
            # Unseen, a person may have gone on or stopped (or turned back behind something):
            # for those tracks the nearer of the predicted and the last seen place counts.
            still = pose_distance(np.stack([t.keypoints for t in tracks]), kp, min_scale)
            motion = np.where(missing[:, None] > 0, np.minimum(motion, still), motion)
        gate = self.max_distance * np.minimum(1.0 + _GATE_GROWTH * missing, _GATE_GROWTH_MAX)
        allowed = motion <= gate[:, None]
        cost = motion / self.max_distance
        if appearance is not None and self.appearance_weight > 0:
            known = np.array([t.appearance is not None for t in tracks])
            seen = appearance.sum(axis=1) > 0
            if known.any() and seen.any():
                models = np.stack([t.appearance if t.appearance is not None else np.zeros(APPEARANCE_BINS, np.float32)
                                   for t in tracks])
                colour = appearance_distance(models, appearance)
                both = known[:, None] & seen[None, :]
                # Where either side has no colours, a neutral value: as doubtful as the re-match limit.
                cost = cost + self.appearance_weight * np.where(both, colour, self.max_appearance)
                # After an occlusion the prediction is a guess: the colours must agree too.
                allowed &= ~(both & (missing[:, None] > 0) & (colour > self.max_appearance))
        cost = np.where(allowed, cost, np.inf)
        pairs: list[tuple[int, int]] = []
        used_tracks, used_people = set(), set()
        for flat in np.argsort(cost, axis=None, kind="stable"):
            ti, pi = divmod(int(flat), len(kp))
            if not np.isfinite(cost[ti, pi]):
                break
            if ti in used_tracks or pi in used_people:
                continue
            pairs.append((ti, pi))
            used_tracks.add(ti)
            used_people.add(pi)
        return pairs

    @staticmethod
    def _leaving(track: _Track, frame_size: tuple[int, int]) -> bool:
        """Last seen touching a border and moving across it, or predicted outside the frame."""
        w, h = float(frame_size[0]), float(frame_size[1])
        box, (vx, vy) = track.box, track.velocity
        cx, cy = _centres(box[None])[0] + track.velocity * (track.missing + 1)
        if not (0 <= cx <= w and 0 <= cy <= h):
            return True
        margin_x, margin_y = _EDGE_FRACTION * w, _EDGE_FRACTION * h
        return bool((box[0] <= margin_x and vx < 0) or (box[2] >= w - margin_x and vx > 0)
                    or (box[1] <= margin_y and vy < 0) or (box[3] >= h - margin_y and vy > 0))

    @staticmethod
    def _continue(track: _Track, kp: np.ndarray, box: np.ndarray, colours: np.ndarray | None, hidden: bool) -> None:
        gap = track.missing + 1
        step = (_centres(box[None])[0] - _centres(track.box[None])[0]) / gap
        track.velocity = ((1 - _VELOCITY_GAIN) * track.velocity + _VELOCITY_GAIN * step).astype(np.float32)
        track.keypoints, track.box = kp.copy(), box.copy()
        track.missing = 0
        if colours is not None and colours.sum() > 0:
            if track.appearance is None:
                track.appearance = colours.copy()
            elif not hidden:
                track.appearance = ((1 - _APPEARANCE_GAIN) * track.appearance + _APPEARANCE_GAIN * colours).astype(np.float32)
