"""pose.layouts: every named skeleton layout lands each joint in its COCO-18 slot.

The expected tables here are written out again from the datasets' own documentation, not
read from pose/layouts.py, so a wrong row in the module fails a test.
"""
from __future__ import annotations

import numpy as np
import pytest

from pose import coco
from pose.layouts import LAYOUTS, LayoutError, get_layout, to_coco18

_LIMBS = {  # COCO-18 name -> source joint index, per layout (from each format's documentation)
    "kinect_v1": {  # Kinect SDK v1 NUI_SKELETON_POSITION_* order
        "nose": 3, "neck": 2, "l_shoulder": 4, "l_elbow": 5, "l_wrist": 6, "r_shoulder": 8, "r_elbow": 9,
        "r_wrist": 10, "l_hip": 12, "l_knee": 13, "l_ankle": 14, "r_hip": 16, "r_knee": 17, "r_ankle": 18,
    },
    "openni": {  # SBU README: head, neck, torso, l sh, l el, l hand, r sh, r el, r hand, l hip, l knee, l foot, r ...
        "nose": 0, "neck": 1, "l_shoulder": 3, "l_elbow": 4, "l_wrist": 5, "r_shoulder": 6, "r_elbow": 7,
        "r_wrist": 8, "l_hip": 9, "l_knee": 10, "l_ankle": 11, "r_hip": 12, "r_knee": 13, "r_ankle": 14,
    },
    # Penn Action's README lists left before right, but its data holds the person's right first
    # (strum_guitar's strumming hand, front-view geometry; see pose/layouts.py).
    "penn_action": {
        "nose": 0, "r_shoulder": 1, "l_shoulder": 2, "r_elbow": 3, "l_elbow": 4, "r_wrist": 5, "l_wrist": 6,
        "r_hip": 7, "l_hip": 8, "r_knee": 9, "l_knee": 10, "r_ankle": 11, "l_ankle": 12,
    },
    "coco17": {
        "nose": 0, "l_eye": 1, "r_eye": 2, "l_ear": 3, "r_ear": 4, "l_shoulder": 5, "r_shoulder": 6,
        "l_elbow": 7, "r_elbow": 8, "l_wrist": 9, "r_wrist": 10, "l_hip": 11, "r_hip": 12, "l_knee": 13,
        "r_knee": 14, "l_ankle": 15, "r_ankle": 16,
    },
    "body25": {
        "nose": 0, "neck": 1, "r_shoulder": 2, "r_elbow": 3, "r_wrist": 4, "l_shoulder": 5, "l_elbow": 6,
        "l_wrist": 7, "r_hip": 9, "r_knee": 10, "r_ankle": 11, "l_hip": 12, "l_knee": 13, "l_ankle": 14,
        "r_eye": 15, "l_eye": 16, "r_ear": 17, "l_ear": 18,
    },
    "coco18": {name: i for i, name in enumerate(coco.JOINTS)},
}
_SIZES = {"kinect_v1": 20, "openni": 15, "penn_action": 13, "coco17": 17, "body25": 25, "coco18": 18}
_DERIVED_NECK = {"penn_action", "coco17"}


def _distinct(n_joints: int) -> np.ndarray:
    """Joint j at (10 j + 1, 500 - 7 j): every joint recognisable by its position."""
    j = np.arange(n_joints, dtype=np.float64)
    return np.stack([10 * j + 1, 500 - 7 * j], axis=-1)


def test_the_registry_holds_the_documented_layouts_with_their_joint_counts() -> None:
    assert {name: layout.n_joints for name, layout in LAYOUTS.items()} == _SIZES


@pytest.mark.parametrize("name", sorted(_LIMBS))
def test_every_joint_lands_in_its_coco18_slot_and_the_rest_are_missing(name: str) -> None:
    points = _distinct(_SIZES[name])
    out = to_coco18(points, name)
    assert out.shape == (18, 3) and out.dtype == np.float32
    expected = _LIMBS[name]
    for k, joint in enumerate(coco.JOINTS):
        if joint in expected:
            np.testing.assert_allclose(out[k, :2], points[expected[joint]], err_msg=f"{name}: {joint}")
            assert out[k, 2] == 1.0
        elif joint == "neck" and name in _DERIVED_NECK:
            continue
        else:
            assert out[k].tolist() == [0.0, 0.0, 0.0], f"{name}: {joint} should be missing"


@pytest.mark.parametrize("name", sorted(_DERIVED_NECK))
def test_a_layout_without_a_neck_gets_mid_shoulders_at_the_lower_confidence(name: str) -> None:
    points = _distinct(_SIZES[name])
    conf = np.ones(_SIZES[name])
    conf[_LIMBS[name]["l_shoulder"]] = 0.4
    out = to_coco18(points, name, confidence=conf)
    mid = (points[_LIMBS[name]["l_shoulder"]] + points[_LIMBS[name]["r_shoulder"]]) / 2
    np.testing.assert_allclose(out[coco.NECK, :2], mid)
    assert out[coco.NECK, 2] == pytest.approx(0.4)
    assert get_layout(name).derived() == ("neck",)


def test_sensor_layouts_have_no_eyes_or_ears() -> None:
    for name in ("kinect_v1", "openni", "penn_action"):
        assert get_layout(name).missing() == ("r_eye", "l_eye", "r_ear", "l_ear")
        out = to_coco18(_distinct(_SIZES[name]), name)
        assert not out[[coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR]].any()


def test_an_invisible_joint_is_missing_and_takes_its_derived_neck_with_it() -> None:
    points = _distinct(13)
    visible = np.ones(13, bool)
    visible[2] = False  # Penn's second shoulder: the person's left
    out = to_coco18(points, "penn_action", confidence=visible)
    assert out[coco.L_SHOULDER].tolist() == [0.0, 0.0, 0.0]
    assert out[coco.NECK].tolist() == [0.0, 0.0, 0.0]
    assert out[coco.R_SHOULDER, 2] == 1.0


def test_a_confidence_channel_is_used_and_nan_counts_as_missing() -> None:
    points = np.concatenate([_distinct(25), np.full((25, 1), 0.8)], axis=-1)
    points[4, 2] = 0.0  # r_wrist not seen
    points[7, 0] = np.nan  # l_wrist lost
    out = to_coco18(points, "body25")
    assert out[coco.NOSE, 2] == pytest.approx(0.8)
    assert out[coco.R_WRIST].tolist() == [0.0, 0.0, 0.0]
    assert out[coco.L_WRIST].tolist() == [0.0, 0.0, 0.0]
    assert np.isfinite(out).all()


def test_leading_dimensions_are_kept() -> None:
    points = np.broadcast_to(_distinct(20), (2, 5, 20, 2))
    out = to_coco18(points, "kinect_v1")
    assert out.shape == (2, 5, 18, 3)
    np.testing.assert_allclose(out[1, 4, coco.NECK, :2], points[0, 0, 2])


def test_an_unknown_layout_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(LayoutError) as info:
        to_coco18(_distinct(15), "kinect_v3")
    message = str(info.value)
    assert "\n" not in message and "'kinect_v3'" in message
    for name in LAYOUTS:
        assert name in message


def test_points_of_the_wrong_joint_count_are_refused_naming_the_layout() -> None:
    with pytest.raises(LayoutError, match="'openni' takes points of shape"):
        to_coco18(_distinct(20), "openni")
    with pytest.raises(LayoutError, match="confidence must have shape"):
        to_coco18(_distinct(15), "openni", confidence=np.ones(14))
