"""Skeleton images: COCO-18 limbs in OpenPose colours on black, cropped square around a person.

The classifiers of the research were trained on such images (64x64, and 64/32/16/8 for the
autoencoder pyramid), so every model input drawn here goes through these functions.

How an image is made (the same for every size):
- the crop is the square around the person's visible joints' box (centre of the box, side =
  the box's longer side times 1 + 2 * MARGIN), so the aspect is kept and the person is centred;
- each of the 17 drawn limbs (pose.coco.LIMBS) is a straight line in its OpenPose colour
  (pose.coco.LIMB_COLORS_BGR), thickness `limb_thickness(size)`, no antialiasing (LINE_8), so
  that a pixel is either black or exactly one limb colour at every size;
- a limb with an end of confidence 0 (or a non-finite coordinate) is skipped; a person with no
  visible joint gives a black image.

Speed: all P people are drawn into one tall canvas of P tiles with one cv2.polylines call per
limb colour (17 calls whatever P is), tiles separated by a black guard band so a thick line
near an edge never bleeds into the next person. The pyramid draws at the largest size once and
shrinks with INTER_AREA (tiles align because every size divides the largest); this was measured
faster than drawing every level (benchmarks/skeleton_speed.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pose.coco import LIMB_COLORS_BGR, LIMBS, N_JOINTS

# Empty border around the joints' box on each side, as a fraction of the box's longer side:
# keeps hands and feet (and the line thickness) off the image edge.
MARGIN = 0.1
# Side of the crop when the visible joints have no extent (one joint, or all on one point).
_MIN_SIDE_PX = 1.0
# Sub-pixel bits for cv2 drawing: small images (8x8) need fractional line ends to stay faithful.
_SHIFT = 4

_LIMB_A = np.array([a for a, _ in LIMBS], np.intp)
_LIMB_B = np.array([b for _, b in LIMBS], np.intp)


def limb_thickness(size: int) -> int:
    """Line thickness in pixels for an image of side `size`: 3 at 64, scaled, at least 1."""
    return max(1, int(round(size * 3 / 64)))


def _as_people(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints, np.float32)
    if kp.ndim < 2 or kp.shape[-2:] != (N_JOINTS, 3):
        raise ValueError(f"keypoints must be float32[P, {N_JOINTS}, 3], got shape {kp.shape}")
    return kp.reshape(-1, N_JOINTS, 3)


def _normalised(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joints mapped to [0, 1] inside each person's square crop, and their visibility.

    kp float32[P, 18, 3] -> (float32[P, 18, 2], bool[P, 18]).
    """
    xy = kp[..., :2]
    visible = (kp[..., 2] > 0) & np.isfinite(xy).all(axis=-1)
    inf = np.float32(np.inf)
    lo = np.where(visible[..., None], xy, inf).min(axis=1)    # [P, 2]
    hi = np.where(visible[..., None], xy, -inf).max(axis=1)
    anyone = visible.any(axis=1)
    lo[~anyone] = 0.0
    hi[~anyone] = 0.0
    centre = (lo + hi) / 2
    side = np.maximum((hi - lo).max(axis=1), _MIN_SIDE_PX) * (1 + 2 * MARGIN)   # [P]
    origin = centre - side[:, None] / 2
    norm = (np.where(visible[..., None], xy, 0.0) - origin[:, None, :]) / side[:, None, None]
    return norm.astype(np.float32), visible


def _draw_tiles(norm: np.ndarray, visible: np.ndarray, size: int) -> np.ndarray:
    """uint8[P, size, size, 3] from normalised joints (see _normalised)."""
    p = len(norm)
    if p == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    thickness = limb_thickness(size)
    guard = thickness  # black band between tiles, wider than half a line
    tile = size + 2 * guard
    canvas = np.zeros((p * tile, tile, 3), np.uint8)
    # Pixel centres: 0 maps to the first pixel's centre and 1 to the last one's.
    px = norm * np.float32(size - 1) + np.float32(guard)
    px[..., 1] += (np.arange(p, dtype=np.float32) * tile)[:, None]
    fixed = np.rint(px * (1 << _SHIFT)).astype(np.int32)                    # [P, 18, 2]
    ends = np.stack([fixed[:, _LIMB_A], fixed[:, _LIMB_B]], axis=2)          # [P, 17, 2, 2]
    drawn = visible[:, _LIMB_A] & visible[:, _LIMB_B]                        # [P, 17]
    for limb, colour in enumerate(LIMB_COLORS_BGR):
        segments = ends[drawn[:, limb], limb]
        if len(segments):
            cv2.polylines(canvas, segments, False, colour, thickness, cv2.LINE_8, _SHIFT)
    tiles = canvas.reshape(p, tile, tile, 3)
    return np.ascontiguousarray(tiles[:, guard:guard + size, guard:guard + size])


def skeleton_images(keypoints: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8[P, size, size, 3] BGR skeleton images of keypoints float32[P, 18, 3] (pixels)."""
    if size < 1:
        raise ValueError(f"skeleton image size must be at least 1, got {size}")
    norm, visible = _normalised(_as_people(keypoints))
    return _draw_tiles(norm, visible, int(size))


def skeleton_image(keypoints: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8[size, size, 3] BGR skeleton image of one person's keypoints float32[18, 3]."""
    kp = np.asarray(keypoints, np.float32)
    if kp.shape != (N_JOINTS, 3):
        raise ValueError(f"keypoints must be float32[{N_JOINTS}, 3], got shape {kp.shape}")
    return skeleton_images(kp[None], size)[0]


def skeleton_pyramid(keypoints: np.ndarray, sizes: Sequence[int] = (64, 32, 16, 8)) -> list[np.ndarray]:
    """One uint8[P, s, s, 3] array per size s, in the order given.

    Drawn once at the largest size and shrunk with INTER_AREA when every size divides it
    (the usual 64/32/16/8), so small levels are faithful averages rather than 1-px scribbles;
    other sizes are drawn directly.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"pyramid sizes must be positive, got {sizes}")
    norm, visible = _normalised(_as_people(keypoints))
    big = max(sizes)
    top = _draw_tiles(norm, visible, big)
    p = len(top)
    tall = top.reshape(p * big, big, 3)
    levels = []
    for s in sizes:
        if s == big:
            levels.append(top)
        elif big % s == 0 and p > 0:
            # Exact integer factor: INTER_AREA averages whole blocks, so tiles never mix.
            small = cv2.resize(tall, (s, p * s), interpolation=cv2.INTER_AREA)
            levels.append(small.reshape(p, s, s, 3))
        else:
            levels.append(_draw_tiles(norm, visible, s))
    return levels
