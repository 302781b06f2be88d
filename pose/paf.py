"""Multi-person grouping with part affinity fields (Cao et al., "Realtime Multi-Person 2D Pose
Estimation using Part Affinity Fields", CVPR 2017), in plain numpy and OpenCV.

Input: per-joint confidence maps float32[18, H, W] and one 2-D vector field per joint pair
float32[19, 2, H, W] (pose.coco.PAF_PAIRS order; x then y), all in one pixel grid.
Output: keypoints float32[P, 18, 3] in that grid, COCO-18 order, confidence = the joint's peak
value (0 = missing).

Steps: peaks per map (a pixel equal to the 3x3 dilation of its map, above a threshold, the
weaker of two peaks closer than `peak_radius` dropped); for every pair, every candidate segment
is scored by sampling the field along it (mean projection on the segment's direction, with a
penalty for segments longer than half the map); greedy matching per pair (best score first, each
peak used once); people assembled by following the pairs, merging two partial people a segment
joins when they share no joint; people with fewer than `min_parts` joints dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose.coco import LIMBS, N_JOINTS, PAF_PAIRS

# Defaults follow the values the OpenPose authors' demos use for the COCO model.
PEAK_THRESHOLD = 0.1
SAMPLES = 10                 # points sampled along each candidate segment
MIN_PROJECTION = 0.05        # a sample "agrees" when the field projects above this
MIN_AGREEING = 0.8           # fraction of samples that must agree
MIN_PARTS = 3                # fewer joints than this is not a person worth reporting

_N_DRAWN = len(LIMBS)        # pairs beyond these (shoulder-ear) only join, never start people


@dataclass(frozen=True)
class Peaks:
    """All joint candidates of one frame: xy float32[N, 2], score float32[N], part int32[N]."""

    xy: np.ndarray
    score: np.ndarray
    part: np.ndarray

    def of(self, part: int) -> np.ndarray:
        """Candidate indices (into xy/score) of one joint type."""
        return np.flatnonzero(self.part == part)


def find_peaks(heatmaps: np.ndarray, threshold: float = PEAK_THRESHOLD, peak_radius: float = 3.0) -> Peaks:
    """Local maxima of each map in float32[J, H, W] above `threshold`."""
    xs, ys, scores, parts = [], [], [], []
    kernel = np.ones((3, 3), np.uint8)
    for j, heat in enumerate(np.asarray(heatmaps, np.float32)):
        local_max = (heat >= cv2.dilate(heat, kernel)) & (heat > threshold)
        y, x = np.nonzero(local_max)
        s = heat[y, x]
        if len(s) > 1:
            order = np.argsort(-s, kind="stable")
            x, y, s = x[order], y[order], s[order]
            # Drop a peak close to a stronger one (plateaus, ringing after upsampling).
            d2 = (x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2
            near_stronger = np.tril(d2 <= peak_radius ** 2, k=-1).any(axis=1)
            keep = ~near_stronger
            x, y, s = x[keep], y[keep], s[keep]
        xs.append(x)
        ys.append(y)
        scores.append(s)
        parts.append(np.full(len(s), j, np.int32))
    xy = np.stack([np.concatenate(xs), np.concatenate(ys)], axis=1).astype(np.float32)
    return Peaks(xy, np.concatenate(scores).astype(np.float32), np.concatenate(parts))


def score_segments(paf: np.ndarray, a_xy: np.ndarray, b_xy: np.ndarray, samples: int = SAMPLES) -> np.ndarray:
    """float32[Na, Nb] affinity of every segment a->b under one pair's field float32[2, H, W].

    -inf where the segment fails the agreement test or has no length.
    """
    h, w = paf.shape[1:]
    delta = b_xy[None, :, :] - a_xy[:, None, :]                             # [Na, Nb, 2]
    length = np.linalg.norm(delta, axis=-1)
    unit = delta / np.maximum(length, 1e-6)[..., None]
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)
    points = a_xy[:, None, None, :] + t[None, None, :, None] * delta[:, :, None, :]   # [Na, Nb, S, 2]
    px = np.clip(np.rint(points[..., 0]).astype(np.intp), 0, w - 1)
    py = np.clip(np.rint(points[..., 1]).astype(np.intp), 0, h - 1)
    projection = paf[0][py, px] * unit[..., None, 0] + paf[1][py, px] * unit[..., None, 1]   # [Na, Nb, S]
    mean = projection.mean(axis=-1) + np.minimum(0.0, 0.5 * h / np.maximum(length, 1e-6) - 1.0)
    agree = (projection > MIN_PROJECTION).mean(axis=-1) >= MIN_AGREEING
    ok = agree & (mean > 0) & (length > 0)
    return np.where(ok, mean, -np.inf).astype(np.float32)


def connect(pafs: np.ndarray, peaks: Peaks, pairs: tuple[tuple[int, int], ...] = PAF_PAIRS) -> list[np.ndarray]:
    """Per pair, the chosen segments as float32[M, 3]: candidate index a, candidate index b, score."""
    chosen = []
    for k, (pa, pb) in enumerate(pairs):
        ia, ib = peaks.of(pa), peaks.of(pb)
        if len(ia) == 0 or len(ib) == 0:
            chosen.append(np.zeros((0, 3), np.float32))
            continue
        scores = score_segments(pafs[k], peaks.xy[ia], peaks.xy[ib])
        order = np.argsort(-scores, axis=None, kind="stable")
        used_a, used_b, rows = set(), set(), []
        for flat in order:
            i, j = divmod(int(flat), len(ib))
            if not np.isfinite(scores[i, j]):
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            rows.append((ia[i], ib[j], scores[i, j]))
            if len(used_a) == len(ia) or len(used_b) == len(ib):
                break
        chosen.append(np.array(rows, np.float32).reshape(-1, 3))
    return chosen


def assemble(
    peaks: Peaks,
    segments: list[np.ndarray],
    pairs: tuple[tuple[int, int], ...] = PAF_PAIRS,
    min_parts: int = MIN_PARTS,
) -> np.ndarray:
    """People float32[P, 18, 3] from chosen segments, strongest (sum of scores) first."""
    people: list[np.ndarray] = []      # int64[18] candidate index per joint, -1 = none
    scores: list[float] = []
    for k, ((pa, pb), rows) in enumerate(zip(pairs, segments)):
        for a, b, s in rows:
            a, b = int(a), int(b)
            owners = [i for i, p in enumerate(people) if p[pa] == a or p[pb] == b]
            if len(owners) == 1:
                p = people[owners[0]]
                if p[pa] in (-1, a) and p[pb] in (-1, b) and (p[pa] == -1 or p[pb] == -1):
                    p[pa], p[pb] = a, b
                    scores[owners[0]] += float(s)
            elif len(owners) == 2:
                i, j = owners
                first, second = people[i], people[j]
                if not ((first >= 0) & (second >= 0)).any():
                    # One person split in two pieces by a missed segment: this one joins them.
                    people[i] = np.maximum(first, second)
                    scores[i] += scores[j] + float(s)
                    del people[j], scores[j]
            elif k < _N_DRAWN:
                p = np.full(N_JOINTS, -1, np.int64)
                p[pa], p[pb] = a, b
                people.append(p)
                scores.append(float(s))
    out = []
    for p, s in zip(people, scores):
        found = p >= 0
        if found.sum() < min_parts:
            continue
        kp = np.zeros((N_JOINTS, 3), np.float32)
        kp[found, :2] = peaks.xy[p[found]]
        kp[found, 2] = np.clip(peaks.score[p[found]], 0.0, 1.0)
        out.append((s + float(kp[:, 2].sum()), kp))
    out.sort(key=lambda item: -item[0])
    return np.stack([kp for _, kp in out]) if out else np.zeros((0, N_JOINTS, 3), np.float32)


def group_people(
    heatmaps: np.ndarray,
    pafs: np.ndarray,
    threshold: float = PEAK_THRESHOLD,
    min_parts: int = MIN_PARTS,
) -> np.ndarray:
    """keypoints float32[P, 18, 3] from heatmaps float32[18, H, W] and pafs float32[19, 2, H, W]."""
    heatmaps = np.asarray(heatmaps, np.float32)
    pafs = np.asarray(pafs, np.float32)
    if heatmaps.shape[0] != N_JOINTS or pafs.shape[:2] != (len(PAF_PAIRS), 2) or pafs.shape[2:] != heatmaps.shape[1:]:
        raise ValueError(f"expected heatmaps [18, H, W] and pafs [19, 2, H, W], got {heatmaps.shape} and {pafs.shape}")
    peaks = find_peaks(heatmaps, threshold)
    return assemble(peaks, connect(pafs, peaks), min_parts=min_parts)
