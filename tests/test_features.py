"""Keypoint features: invariant to where the person stands and how far, zero where nothing is seen."""
from __future__ import annotations

import numpy as np
import pytest

from engine.classify.features import (
    BODY_JOINTS,
    CONFIDENCE,
    N_FEATURES,
    POSITION,
    VELOCITY,
    feature_layout,
    keypoint_features,
    keypoint_features_batch,
)
from pose.coco import L_EAR, L_EYE, L_HIP, L_WRIST, N_JOINTS, NECK, R_EAR, R_EYE, R_HIP, R_WRIST

# A standing person, about 1.75 m seen at ~100 px per 0.5 m torso (x right, y down, pixels).
STANDING = np.array(
    [
        [0, -150], [0, -120],  # nose, neck
        [-35, -118], [-45, -60], [-50, -5],  # right arm
        [35, -118], [45, -60], [50, -5],  # left arm
        [-18, -20], [-20, 70], [-22, 160],  # right leg
        [18, -20], [20, 70], [22, 160],  # left leg
        [-6, -156], [6, -156], [-14, -152], [14, -152],  # eyes, ears
    ],
    np.float32,
)


def person(frames: int = 12, wave: float = 40.0, seed: int = 0) -> np.ndarray:
    """float32[W, 18, 3]: the standing person at (320, 260) waving the right wrist, with jitter."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((frames, N_JOINTS, 3), np.float32)
    kp[..., :2] = STANDING + (320, 260)
    kp[:, R_WRIST, 1] -= wave * (1 + np.sin(np.linspace(0, 2 * np.pi, frames)))
    kp[..., :2] += rng.normal(0, 1.5, kp[..., :2].shape)
    kp[..., 2] = rng.uniform(0.5, 1.0, (frames, N_JOINTS))
    return kp


def moved(kp: np.ndarray, scale: float, shift: tuple[float, float]) -> np.ndarray:
    out = kp.copy()
    out[..., :2] = kp[..., :2] * scale + shift
    return out


def joint_xy(features: np.ndarray, part: slice, joint: int) -> np.ndarray:
    return features[..., part][..., 2 * joint : 2 * joint + 2]


def test_shape_and_dtype():
    f = keypoint_features(person())
    assert f.shape == (12, N_FEATURES) and f.dtype == np.float32
    assert N_FEATURES == CONFIDENCE.stop


@pytest.mark.parametrize("scale, shift", [(1.0, (200.0, -90.0)), (0.4, (10.0, 30.0)), (2.5, (-400.0, 120.0))])
def test_translation_and_scale_do_not_change_features(scale, shift):
    kp = person()
    base = keypoint_features(kp)
    other = keypoint_features(moved(kp, scale, shift))
    np.testing.assert_allclose(other, base, atol=1e-4)
    assert np.abs(base[:, POSITION]).max() > 0.5  # the features are not trivially zero


def test_invariance_holds_on_the_fallback_centre_and_scale():
    kp = person()
    kp[:, [R_HIP, L_HIP, NECK], 2] = 0  # no hips, no neck: centroid and shoulder width
    base = keypoint_features(kp)
    np.testing.assert_allclose(keypoint_features(moved(kp, 0.5, (90.0, 40.0))), base, atol=1e-4)
    kp[:, [2, 5], 2] = 0  # no shoulders either: box height
    base = keypoint_features(kp)
    np.testing.assert_allclose(keypoint_features(moved(kp, 3.0, (-50.0, 7.0))), base, atol=1e-4)


def test_positions_are_in_torso_lengths_around_the_mid_hip():
    kp = person(wave=0.0)
    kp[..., :2] = STANDING + (320, 260)  # no jitter
    f = keypoint_features(kp)
    mid_hip = (joint_xy(f, POSITION, R_HIP) + joint_xy(f, POSITION, L_HIP)) / 2
    np.testing.assert_allclose(mid_hip, 0.0, atol=1e-5)
    torso = np.linalg.norm(joint_xy(f, POSITION, NECK) - mid_hip, axis=-1)
    np.testing.assert_allclose(torso, 1.0, atol=1e-5)


def test_whole_body_motion_inside_the_window_is_kept():
    kp = person(wave=0.0)
    kp[..., 1] -= np.linspace(0, 60, len(kp))[:, None]  # a jump: everyone rises together
    f = keypoint_features(kp)
    neck_y = joint_xy(f, POSITION, NECK)[:, 1]
    assert neck_y[-1] < neck_y[0] - 0.4
    assert (joint_xy(f, VELOCITY, NECK)[1:, 1] < 0).all()


def test_still_person_has_zero_velocity():
    kp = np.repeat(person(frames=1), 10, axis=0)
    f = keypoint_features(kp)
    assert np.abs(f[:, VELOCITY]).max() == 0.0
    assert np.abs(f[:, POSITION]).max() > 0


def test_velocity_is_the_frame_difference_of_positions():
    f = keypoint_features(person())
    np.testing.assert_array_equal(f[0, VELOCITY], 0.0)
    np.testing.assert_allclose(f[1:, VELOCITY], f[1:, POSITION] - f[:-1, POSITION], atol=1e-6)
    assert np.abs(joint_xy(f, VELOCITY, R_WRIST)).max() > 0.05


def test_missing_joints_give_zero_features():
    kp = person()
    kp[:, L_WRIST, 2] = 0
    kp[5, R_WRIST, 2] = 0
    kp[:, L_WRIST, :2] = 12345.0  # whatever a backend leaves in missing joints must not leak
    f = keypoint_features(kp)
    for part in (POSITION, VELOCITY):
        assert not joint_xy(f, part, L_WRIST).any()
    assert not joint_xy(f, POSITION, R_WRIST)[5].any() and joint_xy(f, POSITION, R_WRIST)[6].any()
    assert not joint_xy(f, VELOCITY, R_WRIST)[5:7].any()  # missing, then back: no velocity yet
    assert not f[:, CONFIDENCE][:, L_WRIST].any()
    assert joint_xy(f, VELOCITY, R_WRIST)[7].any()


@pytest.mark.filterwarnings("error")
def test_nobody_visible_gives_zeros_without_warnings():
    f = keypoint_features(np.zeros((8, N_JOINTS, 3), np.float32))
    assert f.shape == (8, N_FEATURES) and not f.any()


def test_single_visible_joint_is_finite():
    kp = np.zeros((4, N_JOINTS, 3), np.float32)
    kp[:, NECK] = (100, 50, 0.9)
    f = keypoint_features(kp)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[:, CONFIDENCE][:, NECK], 1.0)  # version 2: seen or not
    np.testing.assert_allclose(keypoint_features(kp, version=1)[:, feature_layout(1).confidence][:, NECK], 0.9)


def test_face_joints_do_not_matter_in_version_2():
    """A sensor skeleton (no eyes or ears) and a camera skeleton give the same features."""
    kp = person()
    no_face = kp.copy()
    no_face[:, [R_EYE, L_EYE, R_EAR, L_EAR]] = 0
    np.testing.assert_array_equal(keypoint_features(kp), keypoint_features(no_face))
    assert N_FEATURES == 5 * len(BODY_JOINTS) == 70
    v1 = keypoint_features(kp, version=1)
    assert v1.shape[1] == 90 and not np.array_equal(v1, keypoint_features(no_face, version=1))


def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="version 7"):
        keypoint_features(person(), version=7)


def test_batch_equals_one_by_one():
    windows = np.stack([person(seed=s) for s in range(5)])
    windows[2, :, [R_HIP, L_HIP], 2] = 0
    batch = keypoint_features_batch(windows)
    for i, window in enumerate(windows):
        np.testing.assert_allclose(batch[i], keypoint_features(window), atol=1e-6)


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="18, 3"):
        keypoint_features(np.zeros((8, 17, 3), np.float32))
