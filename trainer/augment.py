"""Training-time augmentation of keypoint windows: new bodies and viewpoints from the same motion.

Twelve subjects are few; a model that learns one person's proportions or stance does not
carry over to the next. Each window gets its own random in-plane rotation, horizontal
stretch (body width, a turned body), per-joint offsets held over the window (limb lengths)
and a few extra missing joints. Only visible joints move; what is missing stays missing.

`mirror` and `warp` change a whole sequence's viewpoint (a mirrored image; a camera's roll, tilt
and distance); the synthetic dataset uses them to look like other pose sources.
"""
from __future__ import annotations

import warnings

import numpy as np

from pose.coco import (
    L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, N_JOINTS, NECK,
    R_ANKLE, R_EAR, R_ELBOW, R_EYE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
)


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
    with warnings.catch_warnings():  # a window without neck and hips has no torso: 50 px stands in
        warnings.simplefilter("ignore", RuntimeWarning)
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


def jitter_windows(windows: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Heavy-tailed per-frame joint noise, as a pose backend gives on small or blurred people.

    Measured on `vtest.avi` (pedestrians about 70 px tall, BlazePose): a joint's second
    difference over three frames has a median of 2.4 % of the body's height and a 90th
    percentile of 10 %, against 1 % and 2 % in the synthetic data. Each window draws its own
    level, from none to that much: a Gaussian part (sigma up to 3 % of the height) and a few
    joints thrown far (up to 15 % of the height) in single frames.
    """
    kp = np.array(windows, np.float32, copy=True)
    b = len(kp)
    if b == 0 or strength <= 0:
        return kp
    visible = kp[..., 2] > 0
    y = np.where(visible, kp[..., 1], np.nan)
    with warnings.catch_warnings():  # frames with nobody seen: no height; 100 px stands in
        warnings.simplefilter("ignore", RuntimeWarning)
        height = np.nan_to_num(np.nanmedian(np.nanmax(y, -1) - np.nanmin(y, -1), axis=1), nan=100.0)  # [B]
    level = rng.uniform(0.0, 1.0, b) * strength
    sigma = (0.03 * level * height)[:, None, None, None]
    noise = rng.normal(0.0, 1.0, kp[..., :2].shape).astype(np.float32) * sigma
    thrown = rng.random(visible.shape) < (0.03 * level)[:, None, None]
    noise += np.where(thrown[..., None], rng.normal(0.0, 0.08, kp[..., :2].shape) * height[:, None, None, None], 0.0).astype(np.float32)
    kp[..., :2] = np.where(visible[..., None], kp[..., :2] + noise, 0.0)
    return kp


# ---------------------------------------------------------------------------------------------
# Whole-sequence changes of viewpoint, used by the synthetic dataset's source variety
# (trainer/synthetic_data.py) and usable on any float32[..., 18, 3] keypoints.

# COCO-18 left/right pairs (OpenPose order): in a mirror image the person's right is drawn where
# a left would be, so a detector names it left.
_LR_PAIRS = (
    (R_SHOULDER, L_SHOULDER), (R_ELBOW, L_ELBOW), (R_WRIST, L_WRIST), (R_HIP, L_HIP),
    (R_KNEE, L_KNEE), (R_ANKLE, L_ANKLE), (R_EYE, L_EYE), (R_EAR, L_EAR),
)
MIRROR_ORDER: tuple[int, ...] = tuple(
    {**{r: l for r, l in _LR_PAIRS}, **{l: r for r, l in _LR_PAIRS}}.get(j, j) for j in range(N_JOINTS)
)


def mirror(keypoints: np.ndarray, width: float) -> np.ndarray:
    """The keypoints of the horizontally mirrored image `width` pixels wide: x -> width - x, and
    left and right joints swapped. Missing joints (confidence 0) stay all zero."""
    kp = np.array(keypoints, np.float32, copy=True)[..., MIRROR_ORDER, :]
    present = kp[..., 2] > 0
    kp[..., 0] = np.where(present | (kp[..., 0] != 0), width - kp[..., 0], 0.0)
    return kp


def mirror_windows(windows: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """float32[B, W, 18, 3] windows, each mirrored with probability `share` (x about 0: the keypoint
    features are centred per window, so where the mirror line lies does not matter)."""
    kp = np.asarray(windows, np.float32)
    flip = rng.random(len(kp)) < share
    if not flip.any():
        return kp
    kp = kp.copy()
    kp[flip] = mirror(kp[flip], 0.0)
    return kp


def warp(keypoints: np.ndarray, centre: tuple[float, float], target: tuple[float, float],
         angle_deg: float = 0.0, squash: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """Rotate by `angle_deg` about `centre`, shrink vertically by `squash`, scale, then move `centre`
    to `target` (pixels). What a camera's roll, tilt (foreshortening) and distance do, in 2D.
    Missing joints (confidence 0) stay all zero."""
    kp = np.array(keypoints, np.float32, copy=True)
    present = kp[..., 2] > 0
    a = np.radians(angle_deg)
    x, y = kp[..., 0] - centre[0], kp[..., 1] - centre[1]
    rx = np.cos(a) * x - np.sin(a) * y
    ry = (np.sin(a) * x + np.cos(a) * y) * squash
    kp[..., 0] = np.where(present, rx * scale + target[0], 0.0)
    kp[..., 1] = np.where(present, ry * scale + target[1], 0.0)
    return kp


def speed_windows(windows: np.ndarray, rng: np.random.Generator, change: float) -> np.ndarray:
    """float32[B, W, ...] windows, each replayed at its own speed in [1 - change, 1 + change].

    The last frame stays where it is (a live window ends now) and earlier frames are taken
    nearest in time at the new speed, clamped to the window: people do the same action
    faster or slower, and a 15 fps dataset is small.
    """
    kp = np.asarray(windows, np.float32)
    b, w = kp.shape[:2]
    if b == 0 or change <= 0 or w < 2:
        return kp
    speed = 1.0 + rng.uniform(-change, change, b)
    back = (w - 1 - np.arange(w))[None, :] * speed[:, None]  # frames before the last, at the new speed
    source = np.clip(np.rint(w - 1 - back), 0, w - 1).astype(np.int64)
    return np.take_along_axis(kp, source.reshape((b, w) + (1,) * (kp.ndim - 2)), axis=1)


def augment_pairs(windows: np.ndarray, rng: np.random.Generator, strength: float = 1.0, jitter: float = 0.0,
                  mirrored: float = 0.0, speed: float = 0.0) -> np.ndarray:
    """float32[B, W, 2, 18, 3] two-person windows -> augmented copies, one transform for both people.

    The two people are treated as one 36-joint body by `augment_windows` and `jitter_windows`
    (the same rotation and stretch about the pair's centre, so distances between them change
    together), `mirror_windows` swaps who is on the left (the pair features put the left one
    first, so the model sees both orders), and `speed_windows` changes the tempo.
    """
    kp = np.asarray(windows, np.float32)
    b, w = kp.shape[:2]
    flat = kp.reshape(b, w, 2 * N_JOINTS, 3)
    if strength > 0:
        flat = augment_windows(flat, rng, strength)
    if jitter > 0:
        flat = jitter_windows(flat, rng, jitter)
    kp = flat.reshape(b, w, 2, N_JOINTS, 3)
    if mirrored > 0:
        kp = mirror_windows(kp, rng, mirrored)
    if speed > 0:
        kp = speed_windows(kp, rng, speed)
    return kp
