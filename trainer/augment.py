"""Training-time augmentation of keypoint windows: new bodies and viewpoints from the same motion.

Twelve subjects are few; a model that learns one person's proportions or stance does not
carry over to the next. Each window gets its own random in-plane rotation, horizontal
stretch (body width, a turned body), per-joint offsets held over the window (limb lengths)
and a few extra missing joints. Only visible joints move; what is missing stays missing.
"""
from __future__ import annotations

import numpy as np

from pose.coco import L_HIP, NECK, R_HIP


def augment_windows(windows: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """float32[B, W, 18, 3] keypoint windows -> augmented copies (pixels, confidence)."""
    kp = np.array(windows, np.float32, copy=True)
    b = len(kp)
    if b == 0:
        return kp
    visible = kp[..., 2] > 0
    xy = kp[..., :2]
    weights = visible[..., None].astype(np.float32)
    centre = (xy * weights).sum(axis=(1, 2)) / np.maximum(weights.sum(axis=(1, 2)), 1)  # [B, 2]
    hips = (xy[:, :, R_HIP] + xy[:, :, L_HIP]) / 2
    torso = np.linalg.norm(xy[:, :, NECK] - hips, axis=-1)
    ok = visible[:, :, NECK] & visible[:, :, R_HIP] & visible[:, :, L_HIP]
    torso = np.where(ok, torso, np.nan)
    with np.errstate(all="ignore"):
        scale = np.nan_to_num(np.nanmedian(torso, axis=1), nan=50.0)  # [B] pixels
    angle = np.radians(rng.uniform(-10, 10, b) * strength)
    stretch = 1.0 + rng.uniform(-0.2, 0.2, b) * strength
    cos, sin = np.cos(angle), np.sin(angle)
    rel = xy - centre[:, None, None, :]
    x = rel[..., 0] * stretch[:, None, None]
    y = rel[..., 1]
    rx = cos[:, None, None] * x - sin[:, None, None] * y
    ry = sin[:, None, None] * x + cos[:, None, None] * y
    offsets = rng.normal(0.0, 0.04 * strength, size=(b, 1, xy.shape[2], 2)) * scale[:, None, None, None]
    moved = np.stack([rx, ry], axis=-1) + centre[:, None, None, :] + offsets
    kp[..., :2] = np.where(visible[..., None], moved, 0.0)
    dropped = rng.random(visible.shape) < 0.02 * strength
    kp[dropped] = 0.0
    return kp
