"""Keypoint features for `keypoint_sequence` classifiers: body-centred, body-scaled joints.

Per window (not per frame) the person is centred on the median mid-hip and scaled by the
median torso length, so that motion of the whole body inside the window (jumping, sitting
down) stays in the features while the person's place in the frame and distance to the camera
do not. Per frame and feature joint j (J of them), row layout of the F = 5 J features:

- POSITION [0:2J]: x, y of joint j at 2j, 2j+1, in torso lengths from the centre (y down)
- VELOCITY [2J:4J]: the same, minus the previous frame's (per model frame; 0 on the first frame)
- CONFIDENCE [4J:5J]: whether the joint was seen (version 2: 0 or 1) or its confidence (version 1)

A missing joint (confidence 0) gives 0 in all its features, and 0 velocity in the frame after.

Versions (a model records the one it was trained with in `feature_version`; none means 1):
- 1: all 18 COCO-18 joints, confidence as given (F = 90).
- 2: the 14 body joints only (nose, neck, shoulders, elbows, wrists, hips, knees, ankles), and
  presence 0/1 instead of the confidence value. Eyes and ears are left out because real pose
  sources disagree on them: a sensor skeleton (Kinect, OpenNI) has none, and a model that saw
  them in training read their absence as a bent head (1 in 97 real clips right; 55 % with
  made-up eyes). Confidence values differ in scale between sources (BlazePose 0.5-1, hand
  annotations 0/1, Kinect tracked/inferred), so only "seen or not" is kept (F = 70).
Bump FEATURE_VERSION on any change, and keep the older versions computable for shipped models.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose.coco import L_HIP, L_SHOULDER, N_JOINTS, NECK, R_HIP, R_SHOULDER

FEATURE_VERSION = 2
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
BODY_JOINTS: tuple[int, ...] = tuple(range(14))  # COCO-18 0-13: every joint but eyes and ears


@dataclass(frozen=True)
class FeatureLayout:
    """Where each kind of feature sits in a row of one feature version."""

    version: int
    joints: tuple[int, ...]  # COCO-18 indices of the feature joints, in row order
    binary_confidence: bool

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    @property
    def position(self) -> slice:
        return slice(0, 2 * self.n_joints)

    @property
    def velocity(self) -> slice:
        return slice(2 * self.n_joints, 4 * self.n_joints)

    @property
    def confidence(self) -> slice:
        return slice(4 * self.n_joints, 5 * self.n_joints)

    @property
    def n_features(self) -> int:
        return 5 * self.n_joints


_LAYOUTS = {
    1: FeatureLayout(1, tuple(range(N_JOINTS)), binary_confidence=False),
    2: FeatureLayout(2, BODY_JOINTS, binary_confidence=True),
}


def feature_layout(version: int | None = FEATURE_VERSION) -> FeatureLayout:
    """The layout of feature `version` (None: a model without the key, i.e. version 1)."""
    version = 1 if version is None else int(version)
    if version not in _LAYOUTS:
        raise ValueError(f"keypoint feature version {version} is not one this engine computes ({', '.join(map(str, SUPPORTED_VERSIONS))})")
    return _LAYOUTS[version]


_CURRENT = feature_layout(FEATURE_VERSION)
POSITION = _CURRENT.position
VELOCITY = _CURRENT.velocity
CONFIDENCE = _CURRENT.confidence
N_FEATURES = _CURRENT.n_features

# Fallback scales, as fractions of a torso (neck to mid-hip) for an adult: shoulder width is
# about 0.75 of it, the nose-to-ankle extent about 3 torso lengths (anthropometric averages).
_TORSO_PER_SHOULDER_WIDTH = 1.0 / 0.75
_TORSO_PER_BOX_HEIGHT = 1.0 / 3.0
_MIN_SCALE_PX = 1.0


def keypoint_features(window: np.ndarray, version: int | None = FEATURE_VERSION) -> np.ndarray:
    """float32[W, 18, 3] keypoints (pixels, confidence) -> float32[W, F] of feature `version`."""
    window = np.asarray(window, np.float32)
    if window.ndim != 3 or window.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"keypoint window must be float32[W, {N_JOINTS}, 3], got shape {window.shape}")
    return keypoint_features_batch(window[None], version)[0]


def keypoint_features_batch(windows: np.ndarray, version: int | None = FEATURE_VERSION) -> np.ndarray:
    """float32[B, W, 18, 3] keypoints -> float32[B, W, F]; each window normalised on its own."""
    layout = feature_layout(version)
    kp = np.asarray(windows, np.float32)
    if kp.ndim != 4 or kp.shape[2:] != (N_JOINTS, 3):
        raise ValueError(f"keypoint windows must be float32[B, W, {N_JOINTS}, 3], got shape {kp.shape}")
    b, w = kp.shape[:2]
    xy = kp[..., :2]
    conf = np.clip(kp[..., 2], 0.0, 1.0)
    if layout.n_joints < N_JOINTS:  # joints outside the layout count as missing everywhere, fallbacks too
        conf = conf * np.isin(np.arange(N_JOINTS), layout.joints).astype(np.float32)
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

    joints = list(layout.joints)
    xy, visible, conf = xy[:, :, joints], visible[:, :, joints], conf[:, :, joints]
    position = (xy - centre[:, None, None, :]) / scale[:, None, None, None]
    position *= visible[..., None]
    velocity = np.zeros_like(position)
    both = (visible[:, 1:] & visible[:, :-1])[..., None]
    velocity[:, 1:] = (position[:, 1:] - position[:, :-1]) * both

    j = layout.n_joints
    out = np.empty((b, w, layout.n_features), np.float32)
    out[..., layout.position] = position.reshape(b, w, 2 * j)
    out[..., layout.velocity] = velocity.reshape(b, w, 2 * j)
    out[..., layout.confidence] = visible if layout.binary_confidence else conf
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
