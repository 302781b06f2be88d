"""The pair model's input (engine.classify.pairs): order-invariant, place- and size-invariant, shapes as the contract says."""
from __future__ import annotations

import numpy as np
import pytest

from engine.classify import pairs
from engine.classify.features import BODY_JOINTS
from pose import coco
from trainer.augment import augment_pairs, mirror, speed_windows


def person(x_hip: float, y_hip: float = 300.0, torso: float = 60.0, facing: int = 1) -> np.ndarray:
    """float32[18, 3]: an upright person standing at (x_hip, y_hip), nose turned to `facing` (+1 right)."""
    kp = np.zeros((coco.N_JOINTS, 3), np.float32)
    neck = (x_hip, y_hip - torso)
    places = {
        coco.NECK: neck, coco.NOSE: (x_hip + 0.3 * torso * facing, y_hip - 1.4 * torso),
        coco.R_SHOULDER: (x_hip - 0.3 * torso, neck[1]), coco.L_SHOULDER: (x_hip + 0.3 * torso, neck[1]),
        coco.R_ELBOW: (x_hip - 0.35 * torso, y_hip - 0.5 * torso), coco.L_ELBOW: (x_hip + 0.35 * torso, y_hip - 0.5 * torso),
        coco.R_WRIST: (x_hip - 0.35 * torso, y_hip), coco.L_WRIST: (x_hip + 0.35 * torso, y_hip),
        coco.R_HIP: (x_hip - 0.2 * torso, y_hip), coco.L_HIP: (x_hip + 0.2 * torso, y_hip),
        coco.R_KNEE: (x_hip - 0.2 * torso, y_hip + 0.8 * torso), coco.L_KNEE: (x_hip + 0.2 * torso, y_hip + 0.8 * torso),
        coco.R_ANKLE: (x_hip - 0.2 * torso, y_hip + 1.6 * torso), coco.L_ANKLE: (x_hip + 0.2 * torso, y_hip + 1.6 * torso),
    }
    for joint, (x, y) in places.items():
        kp[joint] = (x, y, 1.0)
    return kp


def punch_window(w: int = 12) -> np.ndarray:
    """float32[W, 2, 18, 3]: a person at x=200 reaching their left wrist towards a person at x=330."""
    a, b = person(200.0), person(330.0, facing=-1)
    frames = []
    for t in range(w):
        left = a.copy()
        left[coco.L_WRIST, 0] += 8.0 * t
        frames.append(np.stack([left, b]))
    return np.stack(frames).astype(np.float32)


def test_shape_and_layout_follow_the_module_constants() -> None:
    window = punch_window()
    feats = pairs.pair_features(window)
    assert feats.shape == (12, pairs.N_PAIR_FEATURES) and feats.dtype == np.float32
    assert pairs.N_PAIR_FEATURES == 10 * len(BODY_JOINTS) + len(pairs.CONTACT_JOINTS) ** 2
    assert pairs.pair_n_features(pairs.PAIR_FEATURE_VERSION) == pairs.N_PAIR_FEATURES
    assert np.all(feats[:, pairs.PRESENCE] == 1.0)
    batch = pairs.pair_features_batch(np.stack([window, window[:, ::-1]]))
    assert batch.shape == (2, 12, pairs.N_PAIR_FEATURES)
    with pytest.raises(ValueError, match=r"float32\[B, W, 2, 18, 3\]"):
        pairs.pair_features_batch(window)
    with pytest.raises(ValueError, match="pair feature version 9"):
        pairs.pair_n_features(9)


def test_the_order_the_two_tracks_come_in_does_not_matter() -> None:
    window = punch_window()
    np.testing.assert_array_equal(pairs.pair_features(window), pairs.pair_features(window[:, ::-1]))
    canonical = pairs.canonical_order(window[None, :, ::-1])[0]
    np.testing.assert_array_equal(canonical, window)  # the person on the left comes first


def test_place_and_size_in_the_image_do_not_matter_but_distance_between_them_does() -> None:
    window = punch_window()
    moved = window.copy()
    moved[..., :2] = moved[..., :2] * 1.7 + np.float32([55.0, -20.0])
    np.testing.assert_allclose(pairs.pair_features(moved), pairs.pair_features(window), atol=1e-5)
    apart = window.copy()
    apart[:, 1, :, 0] += 200.0  # the right person steps back: both centred, contact distances grow
    assert pairs.pair_features(apart)[:, pairs.CONTACT].mean() > pairs.pair_features(window)[:, pairs.CONTACT].mean() + 1.0


def test_velocity_and_contact_see_the_reaching_wrist() -> None:
    feats = pairs.pair_features(punch_window())
    j = list(BODY_JOINTS).index(coco.L_WRIST)
    torso = 60.0
    velocity_x = feats[:, pairs.VELOCITY][:, 2 * j]  # person 0's left wrist, x
    assert velocity_x[0] == 0.0
    np.testing.assert_allclose(velocity_x[1:], 8.0 / torso, rtol=1e-4)
    k = list(pairs.CONTACT_JOINTS).index(coco.L_WRIST)
    to_b_neck = feats[:, pairs.CONTACT].reshape(12, len(pairs.CONTACT_JOINTS), -1)[:, k, 1]
    assert np.all(np.diff(to_b_neck) < 0)  # closer to the partner's neck every frame


def test_a_missing_joint_gives_zeros_and_an_unseen_person_goes_second() -> None:
    window = punch_window()
    window[:, 0, coco.R_WRIST] = 0.0
    feats = pairs.pair_features(window)
    j = list(BODY_JOINTS).index(coco.R_WRIST)
    assert np.all(feats[:, pairs.PRESENCE][:, j] == 0.0) and np.all(feats[:, pairs.POSITION][:, 2 * j : 2 * j + 2] == 0.0)
    lone = punch_window()
    lone[:, 0] = 0.0  # the left person never seen: the seen one comes first, features stay finite
    canonical = pairs.canonical_order(lone[None])[0]
    assert canonical[:, 0].any() and not canonical[:, 1].any()
    assert np.isfinite(pairs.pair_features(lone)).all()
    assert np.isfinite(pairs.pair_features(np.zeros((5, 2, 18, 3), np.float32))).all()


def test_a_mirrored_pair_is_the_same_interaction_with_the_sides_swapped() -> None:
    window = punch_window()
    flipped = mirror(window, 640.0)
    canonical = pairs.canonical_order(flipped[None])[0]
    # after mirroring, the puncher (at 640 - 200) is on the right: second in the canonical order
    assert canonical[0, 1, coco.NECK, 0] == pytest.approx(440.0)


def test_pair_augmentation_moves_both_people_together_and_keeps_the_shape() -> None:
    rng = np.random.default_rng(0)
    windows = np.stack([punch_window()] * 4)
    out = augment_pairs(windows, rng, strength=1.0, jitter=0.5, mirrored=0.5, speed=0.3)
    assert out.shape == windows.shape and out.dtype == np.float32
    assert np.isfinite(pairs.pair_features_batch(out)).all()
    slow = speed_windows(windows, np.random.default_rng(1), 0.5)
    np.testing.assert_array_equal(slow[:, -1], windows[:, -1])  # the window still ends now
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(slow, windows)
