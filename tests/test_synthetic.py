"""The synthetic motion model: deterministic, in frame, and each action moves the body as it should."""
from __future__ import annotations

import numpy as np
import pytest

from engine.sources import synthetic
from pose import coco


def _kp(action: int, subject_id: int = 2, repetition: int = 1, **kw) -> np.ndarray:
    return synthetic.motion(action, synthetic.make_subject(subject_id), repetition, **kw)


def _mid_hip_y(kp: np.ndarray) -> np.ndarray:
    return (kp[:, coco.R_HIP, 1] + kp[:, coco.L_HIP, 1]) / 2


def test_eleven_actions_in_mhad_order() -> None:
    assert len(synthetic.ACTIONS) == 11
    assert synthetic.ACTIONS[0] == "jumping in place"
    assert synthetic.ACTIONS[8] == "sit down then stand up"
    assert synthetic.ACTIONS[10] == "stand up"


def test_same_arguments_same_output_and_different_repetitions_differ() -> None:
    assert synthetic.make_subject(4, seed=3) == synthetic.make_subject(4, seed=3)
    assert synthetic.make_subject(4) != synthetic.make_subject(5)
    a = _kp(3, repetition=2)
    b = _kp(3, repetition=2)
    np.testing.assert_array_equal(a, b)
    c = _kp(3, repetition=3)
    assert a.shape != c.shape or not np.allclose(a, c)
    d = synthetic.motion(3, synthetic.make_subject(2), 2, seed=1)
    assert d.shape != a.shape or not np.allclose(a, d)


@pytest.mark.parametrize("action", range(11))
def test_shapes_lengths_and_keypoints_in_frame(action: int) -> None:
    for subject_id in (1, 7, 12):
        kp = _kp(action, subject_id)
        assert kp.dtype == np.float32 and kp.ndim == 3 and kp.shape[1:] == (18, 3)
        assert 2.5 * 30 <= len(kp) <= 9 * 30, len(kp)
        visible = kp[..., 2] > 0
        assert visible.mean() > 0.97
        x, y = kp[..., 0][visible], kp[..., 1][visible]
        assert (x >= 0).all() and (x < 640).all() and (y >= 0).all() and (y < 480).all()
        assert set(np.unique(kp[..., 2])) <= {0.0, 1.0}


def test_fps_and_size_scale_time_and_space() -> None:
    full = _kp(6)
    half = _kp(6, fps=15.0)
    assert abs(len(half) - len(full) / 2) <= 1
    small = _kp(6, size=(320, 240))
    np.testing.assert_allclose(small[..., :2], full[..., :2] / 2, atol=1e-3)


def test_jumping_moves_the_hips_up_and_down_and_lands_where_it_started() -> None:
    y = _mid_hip_y(_kp(0))
    assert y.max() - y.min() > 25  # pixels, crouch to flight
    # several separate flights: the hips rise above standing height more than once
    standing = np.median(y[:5])
    above = y < standing - 8
    assert np.count_nonzero(np.diff(above.astype(int)) == 1) >= 3
    assert abs(y[-1] - y[0]) < 6


def test_sit_down_ends_lower_stand_up_ends_higher_and_sit_stand_returns() -> None:
    for subject_id in (1, 9):
        sit = _mid_hip_y(_kp(9, subject_id))
        stand = _mid_hip_y(_kp(10, subject_id))
        both = _mid_hip_y(_kp(8, subject_id))
        assert sit[-1] - sit[0] > 30  # image y grows downwards
        assert stand[0] - stand[-1] > 30
        assert abs(both[-1] - both[0]) < 8 and both.max() - both[0] > 30


def test_waving_right_hand_raises_only_the_right_wrist_above_the_head() -> None:
    kp = _kp(5)
    head_y = kp[:, coco.NOSE, 1]
    assert (kp[:, coco.R_WRIST, 1] < head_y).mean() > 0.4
    assert (kp[:, coco.L_WRIST, 1] < head_y).mean() == 0
    assert (kp[:, coco.L_WRIST, 1] > kp[:, coco.L_ELBOW, 1]).all()  # left arm hangs
    both = _kp(4)
    up = (both[:, coco.R_WRIST, 1] < both[:, coco.NOSE, 1]) & (both[:, coco.L_WRIST, 1] < both[:, coco.NOSE, 1])
    assert up.mean() > 0.4
    # the waving forearm swings side to side: the wrist's x oscillates while raised
    raised = kp[:, coco.R_WRIST, 1] < head_y
    assert np.ptp(kp[raised, coco.R_WRIST, 0]) > 30


def test_clapping_brings_the_wrists_together_repeatedly_and_punching_does_not_raise_hands() -> None:
    kp = _kp(6)
    gap = np.abs(kp[:, coco.R_WRIST, 0] - kp[:, coco.L_WRIST, 0])
    shoulders = np.abs(kp[:, coco.R_SHOULDER, 0] - kp[:, coco.L_SHOULDER, 0])
    close = gap < 0.35 * shoulders
    assert np.count_nonzero(np.diff(close.astype(int)) == 1) >= 4
    punch = _kp(3)
    assert (punch[:, coco.R_WRIST, 1] > punch[:, coco.NOSE, 1] - 5).all()


def test_bending_brings_the_head_down_towards_the_hips() -> None:
    kp = _kp(2)
    height = kp[:, coco.NECK, 1] - kp[:, coco.NOSE, 1]
    nose_to_hip = _mid_hip_y(kp) - kp[:, coco.NOSE, 1]
    assert nose_to_hip.min() < 0.5 * nose_to_hip[0]
    assert height[0] > 0


def test_no_single_joint_separates_the_arm_actions() -> None:
    """Per-frame right wrist height ranges of clapping and punching overlap: telling them apart needs more."""
    clap, punch = _kp(6), _kp(3)
    rc, rp = clap[:, coco.R_WRIST, 1], punch[:, coco.R_WRIST, 1]
    assert max(rc.min(), rp.min()) < min(rc.max(), rp.max())


def test_draw_person_paints_a_figure_in_the_subjects_clothes() -> None:
    subject = synthetic.make_subject(3)
    bg = synthetic.background((640, 480), seed=1)
    assert bg.shape == (480, 640, 3) and bg.dtype == np.uint8
    np.testing.assert_array_equal(bg, synthetic.background((640, 480), seed=1))
    kp = _kp(4, 3)
    frame = bg.copy()
    synthetic.draw_person(frame, kp[len(kp) // 2], subject)
    changed = np.any(frame != bg, axis=2)
    box = coco_box(kp[len(kp) // 2])
    assert changed.sum() > 3000
    ys, xs = np.nonzero(changed)
    assert xs.min() >= box[0] - 40 and xs.max() <= box[2] + 40
    shirt = np.all(frame == np.array(subject.shirt_bgr, np.uint8), axis=2).sum()
    assert shirt > 500


def coco_box(kp: np.ndarray) -> tuple[float, float, float, float]:
    return float(kp[:, 0].min()), float(kp[:, 1].min()), float(kp[:, 0].max()), float(kp[:, 1].max())
