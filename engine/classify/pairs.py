"""Two-person input for `pair` classifiers: both people's keypoints over a window, as one feature row per frame.

A pair window is float32[W, 2, 18, 3]: two tracks' COCO-18 keypoints (pixels, confidence) in
the engine's own layout, the same at training (SBU's Kinect skeletons mapped to COCO-18) and
live (BlazePose mapped to COCO-18). The features make it order-invariant and place-invariant:

- canonical order: per window, the person whose median hip centre lies further left in the
  image comes first, so (a, b) and (b, a) give the same row; mirroring the image swaps them;
- one frame for both: the pair is centred on the midpoint of the two people's median hip
  centres and scaled by the mean of their median torso lengths (neck to mid-hip), so distance
  between them, approach and retreat stay in the features and the camera's distance does not.

Per frame, F = 5 * 2 * J + K * K features (J = 14 body joints, K = 8 contact joints):

- POSITION [0:4J]: x, y of person 0's joints, then person 1's, in pair torso lengths
- VELOCITY [4J:8J]: the same minus the previous frame's (0 on the first frame or a missing joint)
- PRESENCE [8J:10J]: 1 where the joint was seen, 0 where not
- CONTACT [10J:10J+K*K]: distance from each of person 0's contact joints (nose, neck, wrists,
  hips, ankles) to each of person 1's, in pair torso lengths (0 where either is missing): what
  a punch, a kick, a hug or a handshake changes most.

2D only: live pose has no depth. Bump PAIR_FEATURE_VERSION on any change.
TensorFlow-free; shared by the trainer and the classify stage.
"""
from __future__ import annotations

import numpy as np

from engine.classify.features import BODY_JOINTS
from pose.coco import (
    L_ANKLE, L_HIP, L_WRIST, N_JOINTS, NECK, NOSE, R_ANKLE, R_HIP, R_WRIST,
)

PAIR_FEATURE_VERSION = 1
PAIR_SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
CONTACT_JOINTS: tuple[int, ...] = (NOSE, NECK, R_WRIST, L_WRIST, R_HIP, L_HIP, R_ANKLE, L_ANKLE)
_J = len(BODY_JOINTS)
_K = len(CONTACT_JOINTS)
POSITION = slice(0, 4 * _J)
VELOCITY = slice(4 * _J, 8 * _J)
PRESENCE = slice(8 * _J, 10 * _J)
CONTACT = slice(10 * _J, 10 * _J + _K * _K)
N_PAIR_FEATURES = 10 * _J + _K * _K

# Fallback scale when a person's neck or hips are never seen: nose-to-ankle extent is about
# 3 torso lengths in an adult (as engine.classify.features); below 1 px nothing is measurable.
_TORSO_PER_BOX_HEIGHT = 1.0 / 3.0
_MIN_SCALE_PX = 1.0


def pair_n_features(version: int | None = PAIR_FEATURE_VERSION) -> int:
    """Features per frame of pair feature `version`; ValueError for a version this engine lacks."""
    if (version or 1) not in PAIR_SUPPORTED_VERSIONS:
        raise ValueError(f"pair feature version {version} is not one this engine computes ({', '.join(map(str, PAIR_SUPPORTED_VERSIONS))})")
    return N_PAIR_FEATURES


def _check(windows: np.ndarray) -> np.ndarray:
    kp = np.asarray(windows, np.float32)
    if kp.ndim != 5 or kp.shape[2:] != (2, N_JOINTS, 3):
        raise ValueError(f"pair windows must be float32[B, W, 2, {N_JOINTS}, 3], got shape {kp.shape}")
    return kp


def person_centres(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32[B, W, 2, 18, 3] -> (centre float32[B, 2, 2] pixels, torso float32[B, 2] pixels, NaN if unseen).

    Centre: the median over the window of the mid-hip (else of the centroid of seen joints);
    torso: the median neck-to-mid-hip length (else a third of the median box height).
    """
    kp = _check(windows)
    body = np.isin(np.arange(N_JOINTS), BODY_JOINTS)
    visible = (kp[..., 2] > 0) & body
    xy = kp[..., :2]
    hips = visible[..., R_HIP] & visible[..., L_HIP]
    mid_hip = np.where(hips[..., None], (xy[..., R_HIP, :] + xy[..., L_HIP, :]) / 2, np.nan)
    n = visible.sum(-1)
    centroid = np.where((n > 0)[..., None], (xy * visible[..., None]).sum(-2) / np.maximum(n, 1)[..., None], np.nan)
    torso = np.where(hips & visible[..., NECK], np.linalg.norm(xy[..., NECK, :] - mid_hip, axis=-1), np.nan)
    y = np.where(visible, xy[..., 1], np.nan)
    with np.errstate(invalid="ignore"):
        box = np.where(n >= 2, np.fmax.reduce(y, -1) - np.fmin.reduce(y, -1), np.nan) * _TORSO_PER_BOX_HEIGHT
    centre = _first(_nanmedian(mid_hip, 1), _nanmedian(centroid, 1))
    scale = _first(_nanmedian(torso, 1), _nanmedian(box, 1))
    scale = np.where(scale >= _MIN_SCALE_PX, scale, np.nan)
    return centre.astype(np.float32), scale.astype(np.float32)


def canonical_order(windows: np.ndarray) -> np.ndarray:
    """The windows with, in each, the person further left in the image (median mid-hip x) first.

    A person never seen in the window goes second; a tie keeps the given order.
    """
    kp = _check(windows)
    centre, _ = person_centres(kp)
    x0 = np.nan_to_num(centre[:, 0, 0], nan=np.inf)
    x1 = np.nan_to_num(centre[:, 1, 0], nan=np.inf)
    swap = x1 < x0
    if not swap.any():
        return kp
    out = kp.copy()
    out[swap] = kp[swap][:, :, ::-1]
    return out


def pair_features(window: np.ndarray, version: int | None = PAIR_FEATURE_VERSION) -> np.ndarray:
    """float32[W, 2, 18, 3] -> float32[W, F] (see the module docstring)."""
    return pair_features_batch(np.asarray(window, np.float32)[None], version)[0]


def pair_features_batch(windows: np.ndarray, version: int | None = PAIR_FEATURE_VERSION) -> np.ndarray:
    """float32[B, W, 2, 18, 3] -> float32[B, W, F]; each window canonicalised and normalised on its own."""
    pair_n_features(version)
    kp = canonical_order(windows)
    b, w = kp.shape[:2]
    centre, scale = person_centres(kp)
    pair_centre = _mean_known(centre).astype(np.float32)  # [B, 2]; nobody seen: 0 (features are all 0 then)
    pair_scale = np.fmax(np.nan_to_num(_mean_known(scale), nan=_MIN_SCALE_PX), _MIN_SCALE_PX).astype(np.float32)
    joints = list(BODY_JOINTS)
    sub = kp[:, :, :, joints]  # [B, W, 2, J, 3]
    visible = sub[..., 2] > 0
    position = (sub[..., :2] - pair_centre[:, None, None, None, :].astype(np.float32)) / pair_scale[:, None, None, None, None]
    position = position * visible[..., None]
    velocity = np.zeros_like(position)
    both = (visible[:, 1:] & visible[:, :-1])[..., None]
    velocity[:, 1:] = (position[:, 1:] - position[:, :-1]) * both
    contact_idx = [joints.index(j) for j in CONTACT_JOINTS]
    a, b_ = position[:, :, 0, contact_idx], position[:, :, 1, contact_idx]  # [B, W, K, 2]
    seen = visible[:, :, 0, contact_idx][..., :, None] & visible[:, :, 1, contact_idx][..., None, :]
    contact = np.linalg.norm(a[..., :, None, :] - b_[..., None, :, :], axis=-1) * seen  # [B, W, K, K]
    out = np.empty((b, w, N_PAIR_FEATURES), np.float32)
    out[..., POSITION] = position.reshape(b, w, -1)
    out[..., VELOCITY] = velocity.reshape(b, w, -1)
    out[..., PRESENCE] = visible.reshape(b, w, -1)
    out[..., CONTACT] = contact.reshape(b, w, -1)
    return out


def _mean_known(values: np.ndarray) -> np.ndarray:
    """Mean over axis 1 (the two people) of the values that are not NaN; 0 centre / NaN scale if none."""
    known = ~np.isnan(values)
    n = known.sum(axis=1)
    total = np.where(known, values, 0.0).sum(axis=1)
    mean = total / np.maximum(n, 1)
    return np.where(n > 0, mean, 0.0 if values.ndim == 3 else np.nan)


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmedian without its all-NaN warning (NaN stays NaN)."""
    ordered = np.sort(values, axis=axis)
    n = (~np.isnan(values)).sum(axis=axis, keepdims=True)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0), axis=axis)
    hi = np.take_along_axis(ordered, np.minimum(n // 2, values.shape[axis] - 1), axis=axis)
    median = np.squeeze((lo + hi) * 0.5, axis=axis)
    return np.where(np.squeeze(n, axis=axis) > 0, median, np.nan)


def _first(primary: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """primary where it is known (all of its last axis for vectors), else fallback."""
    known = ~np.isnan(primary)
    if primary.ndim >= 3:
        known = known.all(-1, keepdims=True)
    return np.where(known, primary, fallback)
