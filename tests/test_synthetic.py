"""The synthetic motion model: deterministic, in frame, and each activity moves the body as it should;
the synthetic dataset's variety looks like other pose sources."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from engine.sources import synthetic
from pose import coco
from trainer import augment, synthetic_data


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


# ---------------------------------------------------------------- MHAD outputs pinned

# sha256 of the MHAD actions' keypoints rounded to 1e-3 px (subjects 1, 8, 12; repetitions 1, 3, 5)
# and of the plain synthetic dataset: the shipped models and their cards were made from these.
_MHAD_DIGEST = "df068ed699e7b126dd7543ba371c4a27bb5f5065a1c2b38fdf0b0c6cd04e1043"
_PLAIN_DATASET_DIGEST = "f0740032c89a06559b6a6520cc09873f7c319735f0d27b386208bdab144d0da2"


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for array in arrays:
        h.update(np.round(np.asarray(array, np.float64), 3).tobytes() if array.dtype.kind == "f" else array.tobytes())
    return h.hexdigest()


def test_mhad_actions_are_bit_for_bit_what_the_shipped_models_saw() -> None:
    kps = [synthetic.motion(a, synthetic.make_subject(s), r) for a in range(11) for s, r in ((1, 1), (8, 3), (12, 5))]
    assert _digest(*kps) == _MHAD_DIGEST
    plain = synthetic_data.build(seed=0, subjects=[2, 9], repetitions=[1], extra_activities=False, variants=0)
    assert plain.label_names == synthetic.ACTIONS and len(plain) == 22
    assert _digest(plain.keypoints, plain.lengths) == _PLAIN_DATASET_DIGEST


# ---------------------------------------------------------------- activities beyond MHAD

def _torso_px(kp: np.ndarray) -> float:
    mid_hip = (kp[:, coco.R_HIP, :2] + kp[:, coco.L_HIP, :2]) / 2
    return float(np.median(np.linalg.norm(kp[:, coco.NECK, :2] - mid_hip, axis=1)))


def _mid_hip(kp: np.ndarray) -> np.ndarray:
    return (kp[:, coco.R_HIP, :2] + kp[:, coco.L_HIP, :2]) / 2


def test_activities_extend_the_mhad_actions_in_one_place() -> None:
    assert synthetic.ACTIVITIES[:11] == synthetic.ACTIONS
    assert synthetic.ACTIVITIES[11:] == synthetic.EXTRA_ACTIVITIES == ("standing", "walking", "other")
    assert (synthetic.STANDING, synthetic.WALKING, synthetic.OTHER) == (11, 12, 13)
    assert synthetic.activity_index("walking") == 12 and synthetic.activity_index("A05") == 4
    assert synthetic.activity_index("Waving two hands") == 4 and synthetic.activity_index(13) == 13
    for bad in ("A12", "running", 14, -1):
        with pytest.raises(ValueError):
            synthetic.activity_index(bad)
    with pytest.raises(ValueError, match="out of range"):
        _kp(14)


@pytest.mark.parametrize("activity", [11, 12, 13])
def test_new_activities_are_deterministic_framed_and_mhad_long(activity: int) -> None:
    a, b = _kp(activity, 4, 2), _kp(activity, 4, 2)
    np.testing.assert_array_equal(a, b)
    for other in (_kp(activity, 4, 3), _kp(activity, 5, 2), synthetic.motion(activity, synthetic.make_subject(4), 2, seed=1)):
        assert other.shape != a.shape or not np.allclose(other, a)
    for subject_id in (1, 7, 12):
        for repetition in (1, 4):
            kp = _kp(activity, subject_id, repetition)
            assert kp.dtype == np.float32 and kp.shape[1:] == (18, 3)
            assert 2.5 * 30 <= len(kp) <= 9 * 30, len(kp)
            assert set(np.unique(kp[..., 2])) <= {0.0, 1.0}
            body = kp[:, 1:14]  # neck to ankles: in view most of the time (walkers may leave at an edge)
            assert (body[..., 2] > 0).mean() > (0.75 if activity == synthetic.WALKING else 0.97)
            seen = kp[..., 2] > 0
            assert (kp[..., 0][seen] >= 0).all() and (kp[..., 0][seen] < 640).all()
            assert (kp[..., 1][seen] >= 0).all() and (kp[..., 1][seen] < 480).all()


def _ankle_swing(kp: np.ndarray) -> tuple[int, float]:
    """Zero crossings and range of the right-minus-left ankle offset along its main direction."""
    d = kp[:, coco.R_ANKLE, :2] - kp[:, coco.L_ANKLE, :2]
    d = d - d.mean(axis=0)
    axis = np.linalg.svd(d, full_matrices=False)[2][0]
    p = d @ axis
    return int(np.count_nonzero(np.diff(np.sign(p)) != 0)), float(np.ptp(p))


def test_walking_moves_the_hips_and_alternates_the_ankles_and_standing_stays_put() -> None:
    for subject_id in (1, 5, 9, 12):
        for repetition in (1, 2, 3):
            walk = _kp(synthetic.WALKING, subject_id, repetition)
            torso = _torso_px(walk)
            hips = _mid_hip(walk)
            across = np.linalg.norm(hips - hips[0], axis=1).max() / torso
            nearer = abs(np.log(_torso_px(walk[-10:]) / _torso_px(walk[:10])))  # towards or away from the camera
            assert across > 0.6 or nearer > 0.1, (subject_id, repetition, across, nearer)  # goes somewhere
            crossings, swing = _ankle_swing(walk)
            # left foot, right foot, left foot... (seen from the front and far, only the lifted heel shows)
            assert crossings >= 3 and swing > 0.2 * torso, (subject_id, repetition, crossings, swing / torso)
            stand = _kp(synthetic.STANDING, subject_id, repetition)
            assert np.ptp(_mid_hip(stand), axis=0).max() < 0.2 * _torso_px(stand)


def test_walking_is_seen_from_many_sides_and_distances() -> None:
    heights, directions = [], []
    for subject_id in range(1, 13):
        for repetition in (1, 2):
            kp = _kp(synthetic.WALKING, subject_id, repetition)
            heights.append(_torso_px(kp))
            hips = _mid_hip(kp)
            directions.append(abs(hips[-1, 0] - hips[0, 0]) > 2 * _torso_px(kp))
    assert min(heights) < 20 and max(heights) > 45  # torso pixels: small far pedestrians (MHAD: ~85) and near ones
    assert 0.2 < np.mean(directions) < 1.0  # across the view, and towards or away from the camera


def _descriptor(kp: np.ndarray, fps: float = 30.0) -> dict[str, float]:
    """Simple measures that set `other` apart from every MHAD action (see synthetic._OTHER_SPEED_DEG_S)."""
    torso = _torso_px(kp)
    hips = _mid_hip(kp)
    wrists = kp[:, [coco.R_WRIST, coco.L_WRIST], :2]
    speed = np.linalg.norm(np.diff(wrists, axis=0), axis=-1).max(axis=1) * fps / torso
    gap = np.abs(kp[:, coco.R_WRIST, 0] - kp[:, coco.L_WRIST, 0])
    shoulders = np.abs(kp[:, coco.R_SHOULDER, 0] - kp[:, coco.L_SHOULDER, 0])
    together = gap < 0.35 * shoulders
    return {
        "hip_range": float(np.ptp(hips[:, 1]) / torso),  # jumps and sitting move the hips up and down
        "upright": float(((hips[:, 1] - kp[:, coco.NECK, 1]) / torso).min()),  # bending lowers the neck
        "wrist_speed": float(np.percentile(speed, 98)),  # torso lengths per second: punches, throws, waves
        "hands_meet": float(np.count_nonzero(np.diff(together.astype(int)) == 1)),  # clapping's rhythm
    }


def _is_other_like(d: dict[str, float]) -> bool:
    return d["hip_range"] < 0.15 and d["upright"] > 0.8 and d["wrist_speed"] < 3.5 and d["hands_meet"] <= 3


def test_other_is_none_of_the_mhad_actions() -> None:
    """`other` stays grounded, upright, slow and without clapping's rhythm; every MHAD action breaks one."""
    cases = [(s, r) for s in (1, 4, 8, 12) for r in (1, 3, 5)]
    for s, r in cases:
        d = _descriptor(_kp(synthetic.OTHER, s, r))
        assert _is_other_like(d), (s, r, d)
    for action in range(11):
        for s, r in cases:
            d = _descriptor(_kp(action, s, r))
            assert not _is_other_like(d), (synthetic.ACTIONS[action], s, r, d)


def test_other_moves_more_than_standing_and_walkers_facing_away_hide_their_face() -> None:
    moved = [np.abs(np.diff(_kp(a, s, 2)[:, 2:8, :2], axis=0)).sum(axis=(1, 2)).mean() / _torso_px(_kp(a, s, 2))
             for a in (synthetic.STANDING, synthetic.OTHER) for s in (1, 2, 3, 4, 5, 6)]
    assert np.mean(moved[6:]) > 1.5 * np.mean(moved[:6])
    hidden = 0
    for s in range(1, 13):
        for r in range(1, 6):
            kp = _kp(synthetic.WALKING, s, r)
            away = kp[:, coco.NOSE, 2] == 0
            hidden += int(away.mean() > 0.9)
            if away.mean() > 0.9:  # walking away: no nose, no eyes, but an ear or both remain
                assert (kp[:, [coco.R_EYE, coco.L_EYE], 2] == 0).all() and (kp[:, [coco.R_EAR, coco.L_EAR], 2] > 0).any(axis=1).mean() > 0.5
    assert hidden >= 2


# ---------------------------------------------------------------- scripted scenes

def test_scripted_scene_has_the_segments_it_asks_for() -> None:
    subject = synthetic.make_subject(9)
    script = [("standing", 3), ("A05", 1), ("standing", 3), ("walking", 2), ("other", 1.5), (6, 1)]
    kp, labels = synthetic.scripted_motion(script, subject)
    runs = [(int(labels[i]), int(n)) for i, n in zip(*_runs(labels))]
    assert runs == [(11, 90), (4, 30), (11, 90), (12, 60), (13, 45), (6, 30)]
    assert kp.shape == (len(labels), 18, 3) and kp.dtype == np.float32
    k2, l2 = synthetic.scripted_motion(script, subject)
    np.testing.assert_array_equal(kp, k2)
    np.testing.assert_array_equal(labels, l2)
    # the 1 s wave is a wave: both hands above the head most of that second, never before it
    wave = labels == 4
    up = (kp[:, coco.R_WRIST, 1] < kp[:, coco.NOSE, 1]) & (kp[:, coco.L_WRIST, 1] < kp[:, coco.NOSE, 1])
    assert up[wave].mean() > 0.5 and not up[:90].any()
    # smooth: no visible joint jumps between frames more than a fast limb does (about a torso / 3)
    seen = (kp[1:, :, 2] > 0) & (kp[:-1, :, 2] > 0)
    jump = np.where(seen, np.linalg.norm(np.diff(kp[..., :2], axis=0), axis=-1), 0.0)
    assert jump.max() < 0.6 * _torso_px(kp[:90])
    # walking goes somewhere and stays (mostly) in view
    hips = _mid_hip(kp[labels == 12])
    assert np.ptp(hips[:, 0]) > _torso_px(kp[:90])
    assert (kp[labels == 12][:, 1:14, 2] > 0).mean() > 0.9
    at15, labels15 = synthetic.scripted_motion(script, subject, fps=15.0)
    assert len(at15) == len(labels15) == 45 + 15 + 45 + 30 + 22 + 15


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    return starts, np.diff(np.r_[starts, len(labels)])


def test_scripted_scene_refuses_what_it_cannot_play() -> None:
    subject = synthetic.make_subject(1)
    with pytest.raises(ValueError, match="at least one"):
        synthetic.scripted_motion([], subject)
    with pytest.raises(ValueError, match="shorter than one frame"):
        synthetic.scripted_motion([("standing", 0.01)], subject)
    with pytest.raises(ValueError, match="unknown"):
        synthetic.scripted_motion([("running", 2)], subject)


def test_synthetic_source_names_new_activities_and_scripts() -> None:
    from engine.errors import SourceError
    from engine.sources import parse_source

    assert parse_source("synthetic:").params["actions"] == list(range(11))  # the shipped model's classes
    assert parse_source("synthetic:walking").params["actions"] == [12]
    assert parse_source("synthetic:all?subjects=3").params["actions"] == list(range(14))
    assert parse_source("synthetic:A05").params["script"] == []
    spec = parse_source("synthetic:?script=standing:3,A05:1,waving+right+hand:0.5,other:2")
    assert spec.params["script"] == [(11, 3.0), (4, 1.0), (5, 0.5), (13, 2.0)]
    for text, message in (("synthetic:A12", "A01-A11 or one of standing, walking, other, all"),
                          ("synthetic:running", "A01-A11"),
                          ("synthetic:?script=standing", "must look like walking:2.5"),
                          ("synthetic:?script=jogging:2", "must look like"),
                          ("synthetic:?script=standing:0", "use 0.1-600"),
                          ("synthetic:A01?script=standing:2", "a script names its own activities")):
        with pytest.raises(SourceError, match=message):
            parse_source(text)


# ---------------------------------------------------------------- dataset variety (trainer)

_NEUTRAL = synthetic_data.Look(fps=30.0, clip_s=None, face="full", head_up=0.0, hip_spread=1.0, neck_up=None,
                               roll_deg=0.0, squash=1.0, scale=1.0, mirror=False, crop_bottom=0.0,
                               turn_deg=0.0)


def _vary(activity: int = 5, **changes) -> np.ndarray:
    look = dataclasses.replace(_NEUTRAL, **changes)
    return synthetic_data.vary(activity, synthetic.make_subject(3), 1, look, np.random.default_rng(0))


def test_a_neutral_look_is_the_ground_truth() -> None:
    np.testing.assert_array_equal(_vary(), synthetic.motion(5, synthetic.make_subject(3), 1))


def test_mirrored_sequences_swap_sides_and_flip_x() -> None:
    plain, mirrored = _vary(), _vary(mirror=True)
    for right, left in ((coco.R_WRIST, coco.L_WRIST), (coco.R_HIP, coco.L_HIP), (coco.R_EAR, coco.L_EAR)):
        np.testing.assert_allclose(mirrored[:, right, 0], 640 - plain[:, left, 0], atol=1e-3)
        np.testing.assert_allclose(mirrored[:, left, 1], plain[:, right, 1])
    np.testing.assert_allclose(mirrored[:, coco.NECK, 0], 640 - plain[:, coco.NECK, 0], atol=1e-3)
    # waving the right hand, mirrored, is a left hand waving: the raised wrist is now the left one
    assert (mirrored[:, coco.L_WRIST, 1] < mirrored[:, coco.NOSE, 1]).mean() > 0.4
    assert not (mirrored[:, coco.R_WRIST, 1] < mirrored[:, coco.NOSE, 1]).any()
    assert augment.mirror(augment.mirror(plain, 640), 640) == pytest.approx(plain, abs=1e-3)


def test_sensor_skeletons_lose_the_face_and_move_hips_and_neck() -> None:
    plain = _vary()
    for face in ("none", "head"):
        kp = _vary(face=face)
        assert (kp[:, [coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR]] == 0).all()
        degraded = synthetic_data.degrade(kp, np.random.default_rng(1))
        assert (degraded[:, [coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR], 2] == 0).all()
    head = _vary(face="head")
    ears = (plain[:, coco.R_EAR, :2] + plain[:, coco.L_EAR, :2]) / 2
    np.testing.assert_allclose(head[:, coco.NOSE, :2], ears, atol=1e-3)  # the head centre
    raised = _vary(face="head", head_up=0.4)
    assert (raised[:, coco.NOSE, 1] < head[:, coco.NOSE, 1] - 5).all()  # a Kinect head joint, higher
    width = lambda k: np.abs(k[:, coco.R_HIP, 0] - k[:, coco.L_HIP, 0])  # noqa: E731
    for spread in (0.8, 1.8):
        np.testing.assert_allclose(width(_vary(hip_spread=spread)), spread * width(plain), rtol=1e-3)
    shoulders = (plain[:, coco.R_SHOULDER, :2] + plain[:, coco.L_SHOULDER, :2]) / 2
    assert (plain[:, coco.NECK, 1] < shoulders[:, 1]).all()  # the model's neck sits above the shoulders
    np.testing.assert_allclose(_vary(neck_up=0.0)[:, coco.NECK, :2], shoulders, atol=1e-3)
    assert (_vary(neck_up=0.1)[:, coco.NECK, 1] < shoulders[:, 1] - 5).all()
    assert (_vary(neck_up=-0.1)[:, coco.NECK, 1] > shoulders[:, 1] + 5).all()


def test_people_turned_away_look_narrower_and_lose_the_far_eye() -> None:
    for activity, turn in ((6, 45.0), (6, -45.0), (0, 45.0)):  # MHAD people face the camera within 18 degrees
        plain, turned = _vary(activity), _vary(activity, turn_deg=turn)
        shoulders = lambda k: np.median(np.abs(k[:, coco.R_SHOULDER, 0] - k[:, coco.L_SHOULDER, 0]))  # noqa: E731
        assert 0.45 < shoulders(turned) / shoulders(plain) < 0.9  # cos(45 -+ 18)
        assert len(turned) == len(plain)
        assert (turned[:, [coco.R_EYE, coco.L_EYE], 2] > 0).all()  # both eyes still seen at 45
        profile = _vary(activity, turn_deg=80.0)
        assert (profile[:, [coco.R_EYE, coco.L_EYE], 2] == 0).any(axis=1).mean() > 0.9  # the far eye is behind the head
    np.testing.assert_array_equal(synthetic.motion(6, synthetic.make_subject(3), 1, turn_deg=0.0), _vary(6))


def test_a_frame_edge_can_cut_the_feet_off() -> None:
    cut = _vary(crop_bottom=0.3)
    assert (cut[:, [coco.R_ANKLE, coco.L_ANKLE], 2] == 0).all()
    assert (cut[:, [coco.NECK, coco.R_SHOULDER, coco.NOSE], 2] > 0).all()
    assert (cut[..., 2] == 0).all(axis=-1).sum() == 0  # every frame keeps its upper body


def test_camera_roll_tilt_and_distance_change_the_2d_skeleton() -> None:
    plain = _vary()
    far = _vary(scale=0.3)
    height = lambda k: np.ptp(k[..., 1][k[..., 2] > 0])  # noqa: E731
    assert height(far) == pytest.approx(0.3 * height(plain), rel=0.02)
    squashed = _vary(squash=0.7)
    assert height(squashed) == pytest.approx(0.7 * height(plain), rel=0.05)
    rolled = _vary(roll_deg=8.0)

    def lean(kp: np.ndarray) -> np.ndarray:
        spine = kp[:, coco.NECK, :2] - _mid_hip(kp)
        return np.degrees(np.arctan2(spine[:, 0], -spine[:, 1]))

    np.testing.assert_allclose(lean(rolled) - lean(plain), 8.0, atol=0.5)  # the whole body turns by the roll
    for kp in (far, squashed, rolled):
        seen = kp[..., 2] > 0
        assert (kp[..., 0][seen] >= 0).all() and (kp[..., 0][seen] < 640).all() and (kp[..., 1][seen] < 480).all()


def test_frame_rates_and_clips_give_the_right_lengths() -> None:
    whole = _vary()
    assert abs(len(_vary(fps=15.0)) - len(whole) / 2) <= 1
    assert abs(len(_vary(fps=20.0)) - len(whole) * 2 / 3) <= 1
    assert len(_vary(fps=20.0, clip_s=2.0)) == 40 and len(_vary(fps=25.0, clip_s=1.2)) == 30
    # a short clip of an action holds the action, not the wait before it
    clip = _vary(activity=4, clip_s=1.0)
    assert ((clip[:, coco.R_WRIST, 1] < clip[:, coco.NOSE, 1]).mean()) > 0.5


def test_looks_are_drawn_with_the_intended_shares() -> None:
    rng = np.random.default_rng(5)
    looks = [synthetic_data.draw_look(rng) for _ in range(2000)]
    share = lambda f: np.mean([f(look) for look in looks])  # noqa: E731
    assert 0.4 < share(lambda x: x.face != "full") < 0.6
    assert 0.2 < share(lambda x: x.face == "head") < 0.4
    assert 0.4 < share(lambda x: x.mirror) < 0.6
    assert 0.4 < share(lambda x: x.clip_s is not None) < 0.6
    assert {x.fps for x in looks} == set(synthetic_data.FRAME_RATES)
    assert share(lambda x: x.scale < 0.5) > 0.1
    assert 0.5 < share(lambda x: x.hip_spread != 1.0) < 0.7 and 0.1 < share(lambda x: x.crop_bottom > 0) < 0.3
    assert 0.2 < share(lambda x: x.neck_up == 0.0) < 0.4 and 0.4 < share(lambda x: x.turn_deg != 0) < 0.6


def test_dataset_has_new_activities_variants_fps_and_mhad_subjects() -> None:
    d = synthetic_data.build(seed=1, subjects=[2, 9], repetitions=[1, 2])
    assert d.label_names == synthetic.ACTIVITIES
    assert len(d) == 2 * 14 * 2 * (1 + synthetic_data.VARIANTS)
    assert np.bincount(d.labels).tolist() == [2 * 2 * 3] * 14  # every class as many as the MHAD ones
    assert set(d.subjects.tolist()) == {2, 9}
    plain = np.array(["/v" not in i for i in d.ids])
    assert d.ids[0] == "S02/A01/R01" and d.ids[1] == "S02/A01/R01/v1" and "S02/walking/R01" in d.ids
    assert (d.fps[plain] == 30).all() and set(d.fps[~plain].tolist()) <= set(synthetic_data.FRAME_RATES)
    assert len(set(d.fps[~plain].tolist())) >= 3
    seconds = d.lengths / d.fps
    assert ((seconds[~plain] >= 0.9) & (seconds[~plain] <= 3.1)).mean() > 0.3  # 1-3 s clips ...
    assert (seconds[~plain] > 3.1).mean() > 0.3  # ... and whole performances
    for i in np.flatnonzero(~plain)[:20]:
        truth = synthetic.motion(int(d.labels[i]), synthetic.make_subject(int(d.subjects[i]), seed=1),
                                 int(d.ids[i].split("/")[2][1:]), fps=float(d.fps[i]), seed=1)
        assert d.lengths[i] <= len(truth)
    faceless = [(d.sequence(i)[:, [coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR], 2] == 0).all()
                for i in np.flatnonzero(~plain)]
    assert 0.25 < np.mean(faceless) < 0.8
    again = synthetic_data.build(seed=1, subjects=[2, 9], repetitions=[1, 2])
    np.testing.assert_array_equal(d.keypoints, again.keypoints)
    np.testing.assert_array_equal(d.fps, again.fps)
    mhad_only = synthetic_data.build(seed=1, subjects=[2], repetitions=[1], extra_activities=False, variants=0)
    assert len(mhad_only) == 11 and mhad_only.label_names == synthetic.ACTIONS
    np.testing.assert_array_equal(mhad_only.sequence(0), d.sequence(0))
    with pytest.raises(ValueError, match="variants"):
        synthetic_data.build(subjects=[1], repetitions=[1], variants=-1)
