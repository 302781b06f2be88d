"""Keypoint features for `keypoint_sequence` classifiers: body-centred, body-scaled joints.

Per window (not per frame) the person is centred on the median mid-hip and scaled by the
median torso length, so that motion of the whole body inside the window (jumping, sitting
down) stays in the features while the person's place in the frame and distance to the camera
do not. Per frame and joint j, row layout of the F = 90 features:

- POSITION [0:36]: x, y of joint j at 2j, 2j+1, in torso lengths from the centre (y down)
- VELOCITY [36:72]: the same, minus the previous frame's (per model frame; 0 on the first frame)
- CONFIDENCE [72:90]: the joint's confidence, 0-1

A missing joint (confidence 0) gives 0 in all its features, and 0 velocity in the frame after.
Bump FEATURE_VERSION on any change: models record the version they were trained with.
"""
from __future__ import annotations

import numpy as np

from pose.coco import L_HIP, L_SHOULDER, N_JOINTS, NECK, R_HIP, R_SHOULDER

FEATURE_VERSION = 1
POSITION = slice(0, 2 * N_JOINTS)
VELOCITY = slice(2 * N_JOINTS, 4 * N_JOINTS)
CONFIDENCE = slice(4 * N_JOINTS, 5 * N_JOINTS)
N_FEATURES = 5 * N_JOINTS

# Fallback scales, as fractions of a torso (neck to mid-hip) for an adult: shoulder width is
# about 0.75 of it, the nose-to-ankle extent about 3 torso lengths (anthropometric averages).
_TORSO_PER_SHOULDER_WIDTH = 1.0 / 0.75
_TORSO_PER_BOX_HEIGHT = 1.0 / 3.0
_MIN_SCALE_PX = 1.0


def keypoint_features(window: np.ndarray) -> np.ndarray:
    """float32[W, 18, 3] keypoints (pixels, confidence) -> float32[W, N_FEATURES]."""
    window = np.asarray(window, np.float32)
    if window.ndim != 3 or window.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"keypoint window must be float32[W, {N_JOINTS}, 3], got shape {window.shape}")
    return keypoint_features_batch(window[None])[0]


def keypoint_features_batch(windows: np.ndarray) -> np.ndarray:
    """float32[B, W, 18, 3] keypoints -> float32[B, W, N_FEATURES]; each window normalised on its own."""
    kp = np.asarray(windows, np.float32)
    if kp.ndim != 4 or kp.shape[2:] != (N_JOINTS, 3):
        raise ValueError(f"keypoint windows must be float32[B, W, {N_JOINTS}, 3], got shape {kp.shape}")
    b, w = kp.shape[:2]
    xy = kp[..., :2]
    conf = np.clip(kp[..., 2], 0.0, 1.0)
    visible = conf > 0
    nan = np.float32(np.nan)

    hips = visible[..., [R_HIP, L_HIP]]  # [B, W, 2]
    n_hips = hips.sum(-1)
    hip_centre = (xy[..., [R_HIP, L_HIP], :] * hips[..., None]).sum(-2) / np.maximum(n_hips, 1)[..., None]
    hip_centre = np.where((n_hips > 0)[..., None], hip_centre, nan)
    neck = np.where(visible[..., NECK, None], xy[..., NECK, :], nan)
    torso = np.linalg.norm(neck - hip_centre, axis=-1)  # NaN where either end is missing
    # One sort for the usual case (hips and neck seen); fallbacks only for windows that need them.
    medians = _nanmedian_frames(np.concatenate([hip_centre, torso[..., None]], axis=-1))
    centre, scale = medians[:, :2], _positive(medians[:, 2])
    if np.isnan(centre).any():
        n_visible = visible.sum(-1)
        centroid = (xy * visible[..., None]).sum(-2) / np.maximum(n_visible, 1)[..., None]
        centroid = np.where((n_visible > 0)[..., None], centroid, nan)
        centre = _first_available(centre, _nanmedian_frames(neck), _nanmedian_frames(centroid))
        centre = np.nan_to_num(centre)  # nobody visible in the whole window: features are all 0 anyway
    if np.isnan(scale).any():
        shoulders = np.where(
            visible[..., R_SHOULDER] & visible[..., L_SHOULDER],
            np.linalg.norm(xy[..., R_SHOULDER, :] - xy[..., L_SHOULDER, :], axis=-1),
            nan,
        )
        y = np.where(visible, xy[..., 1], nan)
        with np.errstate(invalid="ignore"):
            box_height = np.where(visible.sum(-1) >= 2, np.fmax.reduce(y, -1) - np.fmin.reduce(y, -1), nan)
        scale = _first_available(
            scale,
            _positive(_nanmedian_frames(shoulders) * np.float32(_TORSO_PER_SHOULDER_WIDTH)),
            _positive(_nanmedian_frames(box_height) * np.float32(_TORSO_PER_BOX_HEIGHT)),
        )
        scale = np.nan_to_num(scale, nan=_MIN_SCALE_PX)
    scale = np.maximum(scale, _MIN_SCALE_PX)

    position = (xy - centre[:, None, None, :]) / scale[:, None, None, None]
    position *= visible[..., None]
    velocity = np.zeros_like(position)
    both = (visible[:, 1:] & visible[:, :-1])[..., None]
    velocity[:, 1:] = (position[:, 1:] - position[:, :-1]) * both

    out = np.empty((b, w, N_FEATURES), np.float32)
    out[..., POSITION] = position.reshape(b, w, 2 * N_JOINTS)
    out[..., VELOCITY] = velocity.reshape(b, w, 2 * N_JOINTS)
    out[..., CONFIDENCE] = conf
    return out


def _nanmedian_frames(values: np.ndarray) -> np.ndarray:
    """Median over axis 1 (frames) ignoring NaN; NaN where a window has no value.

    Sorting puts NaN last, so the median of the n valid values sits at (n-1)//2 and n//2;
    this avoids np.nanmedian's slow path and its all-NaN warnings.
    """
    ordered = np.sort(values, axis=1)
    n = (~np.isnan(values)).sum(axis=1, keepdims=True)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0), axis=1)
    hi = np.take_along_axis(ordered, np.maximum(n // 2, 0).clip(max=values.shape[1] - 1), axis=1)
    median = ((lo + hi) * np.float32(0.5))[:, 0]
    return np.where(n[:, 0] > 0, median, np.float32(np.nan))


def _positive(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0, values, np.float32(np.nan))


def _first_available(*candidates: np.ndarray) -> np.ndarray:
    """Per window, the first candidate that is not NaN (candidates share one shape)."""
    result = candidates[-1]
    for candidate in reversed(candidates[:-1]):
        available = ~np.isnan(candidate)
        if candidate.ndim > 1:
            available = available.all(axis=-1, keepdims=True)
        result = np.where(available, candidate, result)
    return result
