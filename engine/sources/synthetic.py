"""A 2D-projected kinematic model of a person performing the 11 Berkeley MHAD actions, standing,
walking, or moving about in no particular way (`other`).

Used twice: by the `synthetic:` video source (frames drawn with `draw_person` on `background`)
and by the trainer's synthetic dataset (keypoints from `motion`). Written once so that what the
engine shows with no camera is what the shipped models were trained on.

How it works: each action is a list of key poses (joint angles in degrees plus a few body
offsets) with durations; frames interpolate between them with cosine easing, plus slow
per-repetition sway. A pose is turned into 3D joint positions (metres, person facing the
camera, COCO-18 order), rotated by the subject's yaw and projected through a pinhole camera
like the Kinect 1 of MHAD (f = 525 px at 640x480). Everything random comes from
numpy Generators seeded with (seed, subject, action, repetition), so outputs are deterministic.

Beyond MHAD (ACTIVITIES = ACTIONS + standing, walking, other): standing and other are key-pose
plans too, walking a gait cycle; they face any way, turn, walk along a path and stand near or
far, and face joints turned away from the camera are hidden. The MHAD actions' outputs are
unchanged by all of this (tests/test_synthetic.py pins them). `scripted_motion` plays
activities one after another, for scenes with a known truth per frame.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from engine.sources.mhad import ACTIONS  # the actions the synthetic people perform, in MHAD order
from pose.coco import (
    L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, N_JOINTS, NECK, NOSE,
    R_ANKLE, R_EAR, R_ELBOW, R_EYE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
)

# Kinect 1 colour camera focal length in pixels at 640x480.
_FOCAL_640 = 525.0

# Beyond MHAD: what people in front of a camera mostly do when they perform none of its actions.
# `other` is the negatives class (random unstructured movement), published as `unknown` by a model
# that lists it in `unknown_labels`. Indices continue the MHAD ones: standing 11, walking 12, other 13.
EXTRA_ACTIVITIES: tuple[str, ...] = ("standing", "walking", "other")
ACTIVITIES: tuple[str, ...] = ACTIONS + EXTRA_ACTIVITIES
STANDING, WALKING, OTHER = (ACTIVITIES.index(name) for name in EXTRA_ACTIVITIES)


@dataclass(frozen=True)
class Subject:
    """One synthetic person: body (metres), style of moving, place in the scene, clothes (BGR)."""

    subject_id: int
    height_m: float
    torso_m: float  # mid-hip to neck
    upper_arm_m: float
    forearm_m: float
    thigh_m: float
    shin_m: float
    ankle_m: float  # ankle height above the floor
    shoulder_width_m: float
    hip_width_m: float
    neck_m: float  # neck to head centre
    head_radius_m: float
    tempo: float  # > 1 moves faster
    amplitude: float  # scales how far poses depart from standing
    x_m: float  # lateral position in the scene
    distance_m: float  # from the camera
    camera_height_m: float
    yaw_deg: float  # body turned away from facing the camera
    skin_bgr: tuple[int, int, int]
    hair_bgr: tuple[int, int, int]
    shirt_bgr: tuple[int, int, int]
    pants_bgr: tuple[int, int, int]
    shoes_bgr: tuple[int, int, int]
    camera_pitch_deg: float = 0.0  # camera looking down (a surveillance camera); 0: level, as in MHAD


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


_SKINS = ((60, 90, 140), (80, 120, 175), (110, 150, 200), (140, 180, 225), (45, 65, 100))


def make_subject(subject_id: int, seed: int = 0) -> Subject:
    """The subject `subject_id` of world `seed`: the same arguments always give the same person."""
    rng = _rng(seed, 7919, subject_id)
    h = float(rng.uniform(1.55, 1.90))

    def part(ratio: float, spread: float = 0.05) -> float:
        return float(h * ratio * rng.uniform(1 - spread, 1 + spread))

    distance = float(rng.uniform(2.9, 3.7))
    return Subject(
        subject_id=subject_id,
        height_m=h,
        torso_m=part(0.30),
        upper_arm_m=part(0.186),
        forearm_m=part(0.146),
        thigh_m=part(0.245),
        shin_m=part(0.246),
        ankle_m=part(0.04),
        shoulder_width_m=part(0.23, 0.08),
        hip_width_m=part(0.115, 0.08),
        neck_m=part(0.09),
        head_radius_m=part(0.065),
        tempo=float(rng.uniform(0.8, 1.25)),
        amplitude=float(rng.uniform(0.85, 1.15)),
        x_m=float(rng.uniform(-0.45, 0.45)),
        distance_m=distance,
        camera_height_m=float(h * rng.uniform(0.5, 0.62)),
        yaw_deg=float(rng.uniform(-8, 8)),
        skin_bgr=_SKINS[int(rng.integers(len(_SKINS)))],
        hair_bgr=_colour(rng, 10, 80),
        shirt_bgr=_colour(rng, 30, 230),
        pants_bgr=_colour(rng, 20, 150),
        shoes_bgr=_colour(rng, 10, 60),
    )


# ---------------------------------------------------------------------------------------------
# Poses: a vector of named parameters. Limb directions are absolute (world frame) angles:
# `a` turns in the frontal plane (0 hanging down, 90 straight out sideways, 180 straight up,
# negative or beyond 180 = across the body), `f` leans the limb towards the camera (90 points
# at it, negative points behind). Torso pitch bends forward, roll leans sideways.
_PARAMS = (
    "air", "root_x", "root_z", "torso_pitch", "torso_roll", "head_pitch",
    "rua_a", "rua_f", "rfa_a", "rfa_f", "lua_a", "lua_f", "lfa_a", "lfa_f",
    "rth_a", "rth_f", "rsh_a", "rsh_f", "lth_a", "lth_f", "lsh_a", "lsh_f",
)
_P = {name: i for i, name in enumerate(_PARAMS)}

_STAND = dict(
    air=0.0, root_x=0.0, root_z=0.0, torso_pitch=0.0, torso_roll=0.0, head_pitch=0.0,
    rua_a=8.0, rua_f=0.0, rfa_a=5.0, rfa_f=10.0, lua_a=8.0, lua_f=0.0, lfa_a=5.0, lfa_f=10.0,
    rth_a=3.0, rth_f=0.0, rsh_a=2.0, rsh_f=0.0, lth_a=3.0, lth_f=0.0, lsh_a=2.0, lsh_f=0.0,
)


def _pose(base: dict[str, float] | None = None, **changes: float) -> np.ndarray:
    values = dict(_STAND if base is None else base)
    for key, value in changes.items():
        if key not in _P:
            raise KeyError(key)
        values[key] = value
    return np.array([values[k] for k in _PARAMS], np.float64)


def _both_arms(ua_a: float, ua_f: float, fa_a: float, fa_f: float) -> dict[str, float]:
    return dict(rua_a=ua_a, rua_f=ua_f, rfa_a=fa_a, rfa_f=fa_f, lua_a=ua_a, lua_f=ua_f, lfa_a=fa_a, lfa_f=fa_f)


def _both_legs(th_a: float, th_f: float, sh_a: float, sh_f: float) -> dict[str, float]:
    return dict(rth_a=th_a, rth_f=th_f, rsh_a=sh_a, rsh_f=sh_f, lth_a=th_a, lth_f=th_f, lsh_a=sh_a, lsh_f=sh_f)


STAND = _pose()
_CROUCH = _pose(**_both_legs(3, 38, 2, -38), torso_pitch=15, **_both_arms(15, -25, 12, -15))
_SEATED = _pose(
    **_both_legs(6, 82, 3, -4), torso_pitch=6, root_z=-0.12, **_both_arms(6, 28, 4, 72)
)
_HALF_SIT = _pose(
    **_both_legs(5, 48, 2, -18), torso_pitch=34, root_z=-0.08, **_both_arms(10, 35, 8, 45)
)

# A keyframe plan: (seconds to reach this pose from the previous one, pose vector).
_Plan = list[tuple[float, np.ndarray]]


def _idle(rng: np.random.Generator, lo: float = 0.3, hi: float = 0.9) -> float:
    return float(rng.uniform(lo, hi))


def _plan_jumping(rng: np.random.Generator) -> _Plan:
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND)]
    height = rng.uniform(0.12, 0.22)
    for _ in range(int(rng.integers(3, 7))):
        plan += [
            (0.22, _CROUCH),
            (0.2, _pose(air=height, **_both_arms(22, 30, 18, 40), torso_pitch=3)),
        ]
    plan += [(0.22, _CROUCH), (0.35, STAND), (_idle(rng), STAND)]
    return plan


def _plan_jumping_jacks(rng: np.random.Generator) -> _Plan:
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND)]
    spread = rng.uniform(14, 22)
    air = rng.uniform(0.05, 0.1)
    open_air = _pose(air=air, **_both_legs(spread, 0, spread, 0), **_both_arms(120, 0, 125, 0))
    open_land = _pose(**_both_legs(spread, 14, spread, -14), **_both_arms(168, 5, 178, 5))
    close_air = _pose(air=air, **_both_arms(70, 0, 70, 0))
    for _ in range(int(rng.integers(3, 7))):
        plan += [(0.2, open_air), (0.18, open_land), (0.2, close_air), (0.18, _CROUCH)]
    plan += [(0.3, STAND), (_idle(rng), STAND)]
    return plan


def _plan_bending(rng: np.random.Generator) -> _Plan:
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND)]
    for _ in range(int(rng.integers(1, 3))):
        depth = rng.uniform(70, 95)
        bent = _pose(
            torso_pitch=depth, head_pitch=15, root_z=-0.12, **_both_legs(3, 12, 2, -8),
            **_both_arms(4, 12, 2, 15),
        )
        plan += [(rng.uniform(0.9, 1.3), bent), (rng.uniform(0.3, 1.0), bent), (rng.uniform(0.9, 1.3), STAND)]
        plan += [(rng.uniform(0.2, 0.6), STAND)]
    plan += [(_idle(rng), STAND)]
    return plan


_GUARD = dict(rua_a=15, rua_f=35, rfa_a=200, rfa_f=38, lua_a=15, lua_f=35, lfa_a=200, lfa_f=38)


def _plan_punching(rng: np.random.Generator) -> _Plan:
    guard = _pose(**_GUARD, **_both_legs(6, 8, 4, -6), torso_pitch=6)
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND), (0.5, guard), (0.3, guard)]
    side = "r" if rng.random() < 0.7 else "l"
    for _ in range(int(rng.integers(4, 9))):
        reach = rng.uniform(78, 88)
        fist = dict(_GUARD)
        fist.update({f"{side}ua_a": 80, f"{side}ua_f": reach, f"{side}fa_a": 80, f"{side}fa_f": reach + 2})
        roll = 6 if side == "r" else -6
        punch = _pose(**fist, **_both_legs(6, 8, 4, -6), torso_pitch=10, torso_roll=roll)
        plan += [(0.16, punch), (0.22, guard), (rng.uniform(0.0, 0.25), guard)]
        side = "l" if side == "r" else "r"
    plan += [(0.5, STAND), (_idle(rng), STAND)]
    return plan


def _plan_waving(rng: np.random.Generator, two_hands: bool) -> _Plan:
    up = rng.uniform(140, 160)
    raised = dict(rua_a=up, rua_f=10, rfa_a=175, rfa_f=10)
    if two_hands:
        raised.update(lua_a=up, lua_f=10, lfa_a=175, lfa_f=10)
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND), (0.6, _pose(**raised))]
    swing = rng.uniform(25, 40)
    period = rng.uniform(0.45, 0.75)
    for _ in range(int(rng.integers(4, 8))):
        for sign in (-1, 1):
            arms = {"rfa_a": 180 + sign * swing}
            if two_hands:
                arms["lfa_a"] = 180 + sign * swing
            plan += [(period / 2, _pose(**{**raised, **arms}))]
    plan += [(0.6, STAND), (_idle(rng), STAND)]
    return plan


def _plan_clapping(rng: np.random.Generator) -> _Plan:
    apart = _pose(**_both_arms(12, 38, -20, 45))
    together = _pose(**_both_arms(12, 38, -82, 30))
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND), (0.45, apart)]
    period = rng.uniform(0.3, 0.5)
    for _ in range(int(rng.integers(5, 11))):
        plan += [(period * 0.45, together), (period * 0.55, apart)]
    plan += [(0.45, STAND), (_idle(rng), STAND)]
    return plan


def _plan_throwing(rng: np.random.Generator) -> _Plan:
    plan: _Plan = [(0.0, STAND), (_idle(rng), STAND)]
    for _ in range(int(rng.integers(1, 3))):
        windup = _pose(
            rua_a=125, rua_f=-35, rfa_a=165, rfa_f=-55, lua_a=55, lua_f=45, lfa_a=60, lfa_f=50,
            torso_roll=-8, torso_pitch=-5, lth_a=3, lth_f=18, lsh_a=2, lsh_f=-5,
        )
        release = _pose(
            rua_a=110, rua_f=60, rfa_a=120, rfa_f=70, lua_a=20, lua_f=20, lfa_a=15, lfa_f=30,
            torso_pitch=15, torso_roll=6, lth_a=3, lth_f=18, lsh_a=2, lsh_f=-5,
        )
        follow = _pose(
            rua_a=-10, rua_f=55, rfa_a=-40, rfa_f=40, lua_a=12, lua_f=-10, lfa_a=10, lfa_f=0,
            torso_pitch=25, torso_roll=4, rth_a=3, rth_f=10, rsh_a=2, rsh_f=-15,
        )
        plan += [
            (rng.uniform(0.6, 0.9), windup), (rng.uniform(0.1, 0.4), windup), (0.18, release),
            (0.22, follow), (rng.uniform(0.2, 0.4), follow), (rng.uniform(0.6, 0.9), STAND),
            (rng.uniform(0.2, 0.6), STAND),
        ]
    return plan


def _sit_down(rng: np.random.Generator) -> _Plan:
    return [(rng.uniform(0.6, 0.9), _HALF_SIT), (rng.uniform(0.5, 0.8), _SEATED)]


def _stand_up(rng: np.random.Generator) -> _Plan:
    return [(rng.uniform(0.5, 0.8), _HALF_SIT), (rng.uniform(0.6, 0.9), STAND)]


def _plan_sit_stand(rng: np.random.Generator) -> _Plan:
    return (
        [(0.0, STAND), (_idle(rng), STAND)] + _sit_down(rng)
        + [(rng.uniform(0.3, 0.9), _SEATED)] + _stand_up(rng) + [(_idle(rng), STAND)]
    )


def _plan_sit_down(rng: np.random.Generator) -> _Plan:
    return [(0.0, STAND), (_idle(rng), STAND)] + _sit_down(rng) + [(rng.uniform(1.2, 2.5), _SEATED)]


def _plan_stand_up(rng: np.random.Generator) -> _Plan:
    return [(0.0, _SEATED), (rng.uniform(1.2, 2.5), _SEATED)] + _stand_up(rng) + [(_idle(rng, 0.6, 1.4), STAND)]


_PLANS = (
    _plan_jumping,
    _plan_jumping_jacks,
    _plan_bending,
    _plan_punching,
    lambda rng: _plan_waving(rng, two_hands=True),
    lambda rng: _plan_waving(rng, two_hands=False),
    _plan_clapping,
    _plan_throwing,
    _plan_sit_stand,
    _plan_sit_down,
    _plan_stand_up,
)

# Parameters that are angles (degrees); the others are metres.
_ANGLE = np.array([not name.startswith(("air", "root")) for name in _PARAMS])


def _pose_track(plan: _Plan, subject: Subject, rng: np.random.Generator, fps: float) -> np.ndarray:
    """float64[T, len(_PARAMS)]: the plan timed by the subject's tempo, eased, scaled and swaying."""
    tempo = subject.tempo * rng.uniform(0.92, 1.08)
    durations = np.array([d for d, _ in plan], np.float64)
    durations[1:] *= rng.uniform(0.88, 1.12, size=len(durations) - 1) / tempo
    # MHAD recordings last at least about 3 s: quick performers wait longer before and after.
    shortfall = rng.uniform(3.2, 3.8) - durations.sum()
    if shortfall > 0:
        before = rng.uniform(0.2, 0.8)
        durations[1] += shortfall * before  # every plan starts and ends with a hold
        durations[-1] += shortfall * (1 - before)
    times = np.cumsum(durations)
    keys = np.stack([p for _, p in plan])
    # Amplitude scales the departure from standing, per parameter, so no two repetitions match.
    amp = subject.amplitude * rng.uniform(0.9, 1.1, size=len(_PARAMS))
    keys = STAND + (keys - STAND) * amp

    n = max(2, int(round(times[-1] * fps)))
    t = np.arange(n) / fps
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[seg + 1] - times[seg], 1e-6)
    u = np.clip((t - times[seg]) / span, 0.0, 1.0)
    w = (0.5 - 0.5 * np.cos(np.pi * u))[:, None]
    track = keys[seg] + w * (keys[seg + 1] - keys[seg])

    # Slow sway: two sinusoids per parameter with random phase; a few degrees, a centimetre.
    freq = rng.uniform(0.15, 0.8, size=(2, len(_PARAMS)))
    phase = rng.uniform(0, 2 * np.pi, size=(2, len(_PARAMS)))
    sway = np.sin(2 * np.pi * freq[0] * t[:, None] + phase[0]) + 0.5 * np.sin(2 * np.pi * freq[1] * t[:, None] + phase[1])
    scale = np.where(_ANGLE, 2.5, 0.006)
    scale[_P["air"]] = 0.0
    return track + sway * scale


def _direction(a_deg: np.ndarray, f_deg: np.ndarray, side: float) -> np.ndarray:
    """Unit vectors [T, 3] (x right in the image, y up, z towards the camera)."""
    a, f = np.radians(a_deg), np.radians(f_deg)
    return np.stack([side * np.sin(a) * np.cos(f), -np.cos(a) * np.cos(f), np.sin(f)], axis=-1)


def _skeleton_3d(track: np.ndarray, s: Subject) -> np.ndarray:
    """float64[T, 18, 3] joint positions in metres, feet on the floor (y = 0) unless jumping."""
    p = {name: track[:, i] for name, i in _P.items()}
    T = len(track)
    # The person faces the camera: their right side is on the image's left (x < 0).
    right, left = -1.0, 1.0
    thigh_r = _direction(p["rth_a"], p["rth_f"], right) * s.thigh_m
    shin_r = _direction(p["rsh_a"], p["rsh_f"], right) * s.shin_m
    thigh_l = _direction(p["lth_a"], p["lth_f"], left) * s.thigh_m
    shin_l = _direction(p["lsh_a"], p["lsh_f"], left) * s.shin_m
    # Pelvis height follows from the longer leg standing on the floor (or sitting on a chair of
    # shin height: thighs then point forward and the shin alone carries the pelvis).
    drop = np.maximum(-(thigh_r + shin_r)[:, 1], -(thigh_l + shin_l)[:, 1])
    root = np.stack([p["root_x"], s.ankle_m + drop + p["air"], p["root_z"]], axis=-1)
    half_hip = np.array([s.hip_width_m / 2, 0, 0])
    hip_r, hip_l = root - half_hip, root + half_hip
    knee_r, knee_l = hip_r + thigh_r, hip_l + thigh_l
    ankle_r, ankle_l = knee_r + shin_r, knee_l + shin_l

    pitch, roll = np.radians(p["torso_pitch"]), np.radians(p["torso_roll"])
    up = np.stack([np.sin(roll), np.cos(pitch) * np.cos(roll), np.sin(pitch) * np.cos(roll)], axis=-1)
    neck = root + up * s.torso_m
    side_x = np.array([1.0, 0, 0])
    sh_r = neck - side_x * s.shoulder_width_m / 2 - up * 0.02
    sh_l = neck + side_x * s.shoulder_width_m / 2 - up * 0.02
    elbow_r = sh_r + _direction(p["rua_a"], p["rua_f"], right) * s.upper_arm_m
    wrist_r = elbow_r + _direction(p["rfa_a"], p["rfa_f"], right) * s.forearm_m
    elbow_l = sh_l + _direction(p["lua_a"], p["lua_f"], left) * s.upper_arm_m
    wrist_l = elbow_l + _direction(p["lfa_a"], p["lfa_f"], left) * s.forearm_m

    hp = pitch + np.radians(p["head_pitch"])
    h_up = np.stack([np.sin(roll), np.cos(hp), np.sin(hp)], axis=-1)
    h_fwd = np.stack([np.zeros(T), -np.sin(hp), np.cos(hp)], axis=-1)
    r = s.head_radius_m
    head = neck + h_up * s.neck_m
    nose = head + h_fwd * r - h_up * 0.15 * r
    eye_r = head + h_fwd * 0.8 * r + h_up * 0.25 * r - side_x * 0.45 * r
    eye_l = head + h_fwd * 0.8 * r + h_up * 0.25 * r + side_x * 0.45 * r
    ear_r = head - side_x * r
    ear_l = head + side_x * r

    joints = np.zeros((T, N_JOINTS, 3))
    for index, value in (
        (NOSE, nose), (NECK, neck), (R_SHOULDER, sh_r), (R_ELBOW, elbow_r), (R_WRIST, wrist_r),
        (L_SHOULDER, sh_l), (L_ELBOW, elbow_l), (L_WRIST, wrist_l), (R_HIP, hip_r), (R_KNEE, knee_r),
        (R_ANKLE, ankle_r), (L_HIP, hip_l), (L_KNEE, knee_l), (L_ANKLE, ankle_l), (R_EYE, eye_r),
        (L_EYE, eye_l), (R_EAR, ear_r), (L_EAR, ear_l),
    ):
        joints[:, index] = value
    return joints


def _project(joints: np.ndarray, s: Subject, size: tuple[int, int], yaw_deg: float) -> np.ndarray:
    """float32[T, 18, 3] pixels; confidence 1 inside the frame, 0 outside."""
    width, height = size
    yaw = np.radians(yaw_deg)
    x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
    xr = x * np.cos(yaw) + z * np.sin(yaw)
    zr = -x * np.sin(yaw) + z * np.cos(yaw)
    focal = _FOCAL_640 * width / 640.0
    depth = s.distance_m - zr
    up = y - s.camera_height_m
    if s.camera_pitch_deg:  # pitched down: forward and up along the camera's own axes
        pitch = np.radians(s.camera_pitch_deg)
        depth, up = depth * np.cos(pitch) - up * np.sin(pitch), up * np.cos(pitch) + depth * np.sin(pitch)
    u = width / 2 + focal * (xr + s.x_m) / depth
    v = height / 2 - focal * up / depth
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return np.stack([u, v, inside.astype(np.float64)], axis=-1).astype(np.float32)


def motion(
    action: int,
    subject: Subject,
    repetition: int,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    turn_deg: float = 0.0,
) -> np.ndarray:
    """Ground-truth keypoints float32[T, 18, 3] (pixels, confidence 1 or 0 out of frame or hidden).

    `action` is an index into ACTIVITIES: 0-10 are the MHAD actions (A01 = 0), then standing,
    walking and other. `size` is (width, height). T varies with the activity, the subject's
    tempo and the repetition, about 3-8 s as in MHAD. `turn_deg` turns the person further away
    from the camera (0, the default, is the performance as the shipped models saw it; walkers
    already go every way and ignore it); turned face joints hide as in `_turn`.
    """
    if not 0 <= action < len(ACTIVITIES):
        raise ValueError(f"activity {action} out of range: use 0..{len(ACTIVITIES) - 1} ({', '.join(ACTIVITIES)})")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if action >= len(ACTIONS):
        return _extra_motion(action, subject, repetition, fps, size, seed, turn_deg)
    rng = _rng(seed, subject.subject_id, action, repetition)
    plan = _PLANS[action](rng)
    track = _pose_track(plan, subject, rng, fps)
    if turn_deg:
        return _render(_turned_mhad(track, subject, rng, turn_deg), subject, size)
    joints = _skeleton_3d(track, subject)
    # Per repetition the person stands a little elsewhere and turned a little differently.
    joints[..., 0] += rng.uniform(-0.12, 0.12)
    joints[..., 2] += rng.uniform(-0.15, 0.15)
    # MHAD subjects face the camera; each repetition turns a little differently.
    yaw = subject.yaw_deg + rng.uniform(-10, 10)
    return _project(joints, subject, size, yaw)


# ---------------------------------------------------------------------------------------------
# Activities beyond MHAD: standing, walking, other. Each is a pose track (the parameters above,
# in the body's own frame) plus where the body faces (yaw per frame) and where it goes (a path on
# the floor); `_render` turns, moves and projects it, hiding the face joints a camera cannot see.


@dataclass(frozen=True)
class _Performance:
    track: np.ndarray  # float64[T, len(_PARAMS)]
    yaw_deg: np.ndarray  # float64[T]: 0 faces the camera, 90 faces the image's right
    path: np.ndarray  # float64[T, 2]: world (x, z) displacement in metres, z towards the camera


def activity_index(activity: int | str) -> int:
    """The index in ACTIVITIES of an index, a name (`walking`, `waving two hands`) or an MHAD id (`A05`)."""
    if isinstance(activity, (int, np.integer)):
        index = int(activity)
    else:
        text = str(activity).strip().lower()
        names = [name.lower() for name in ACTIVITIES]
        if text in names:
            index = names.index(text)
        elif len(text) == 3 and text[0] == "a" and text[1:].isdigit() and 1 <= int(text[1:]) <= len(ACTIONS):
            index = int(text[1:]) - 1
        else:
            raise ValueError(f"activity {activity!r} unknown: use A01-A{len(ACTIONS):02d} or one of {', '.join(ACTIVITIES)}")
    if not 0 <= index < len(ACTIVITIES):
        raise ValueError(f"activity {index} out of range: use 0..{len(ACTIVITIES) - 1}")
    return index


def _ease(u: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


# Rest poses of a standing person (arms and head only). Angles as in `_PARAMS`; each was checked
# by eye with draw_person: pockets put the wrists at the front of the hips, crossed arms hold the
# forearms at chest height, the phone hand is forward at waist height under a lowered head.
_REST_ARMS: dict[str, dict[str, float]] = {
    "hanging": {},
    "pockets": _both_arms(12, -12, -30, 30),
    "crossed": _both_arms(18, 42, -100, 22),
    "hips": _both_arms(48, -15, -55, -10),
    "behind": _both_arms(10, -35, -30, -60),
    "phone": dict(rua_a=8, rua_f=5, rfa_a=-25, rfa_f=70, head_pitch=25),
    "phone two hands": dict(**_both_arms(8, 8, -35, 65), head_pitch=28),
    "face": dict(rua_a=20, rua_f=60, rfa_a=200, rfa_f=30),
    "chin left": dict(lua_a=20, lua_f=60, lfa_a=200, lfa_f=30, head_pitch=8),
}


def _weight_shift(rng: np.random.Generator) -> dict[str, float]:
    """Leaning on one leg: the pelvis moves over it and the other knee relaxes (a few degrees, 3 cm)."""
    side = "r" if rng.random() < 0.5 else "l"
    sign = -1.0 if side == "r" else 1.0  # the person's right is the image's left
    bend = rng.uniform(4, 12)
    return {
        "root_x": sign * rng.uniform(0.01, 0.04), "torso_roll": -sign * rng.uniform(1, 4),
        f"{side}th_a": rng.uniform(4, 9), f"{side}th_f": bend, f"{side}sh_f": -bend,
    }


def _plan_standing(rng: np.random.Generator, duration: float) -> _Plan:
    """Still, with what people do while standing: weight shifts, a new arm rest pose, a look around."""
    names = list(_REST_ARMS)

    def rest(arms: str, legs: dict[str, float]) -> np.ndarray:
        return _pose(**{**_REST_ARMS[arms], **legs})

    arms, legs = names[int(rng.integers(len(names)))], _weight_shift(rng) if rng.random() < 0.5 else {}
    plan: _Plan = [(0.0, rest(arms, legs))]
    elapsed = 0.0
    while elapsed < duration:
        hold = rng.uniform(0.8, 2.5)
        plan.append((hold, plan[-1][1]))
        change = rng.random()
        if change < 0.3:
            arms = names[int(rng.integers(len(names)))]
        elif change < 0.7:
            legs = _weight_shift(rng) if rng.random() < 0.7 else {}
        pose = rest(arms, legs)
        if change >= 0.7:  # a glance: the head alone moves
            pose[_P["head_pitch"]] += rng.uniform(-15, 15)
        change = float(np.linalg.norm((pose - plan[-1][1])[_ANGLE]))  # degrees, all joints together
        move = max(rng.uniform(0.6, 1.3), change / rng.uniform(50, 90))  # unhurried
        plan.append((move, pose))
        elapsed += hold + move
    return plan


# `other`, the negatives, must never be a clean MHAD action by accident. The choices that keep it
# apart, each against the actions it could be mistaken for:
# - slow: every keyframe takes at least 0.6 s and at most _OTHER_SPEED_DEG_S degrees per second on
#   its largest change, so limbs never move at the speed of a punch, throw, clap or wave (those
#   change 50-90 degrees in 0.1-0.4 s), and holds between moves are irregular (no rhythm);
# - grounded: no flight and at most one knee bent at a time (no jumping, jumping jacks, sitting);
# - upright: the torso leans at most 30 degrees (bending goes to 70-95);
# - arms above the shoulders at most once per sequence (a stretch), never swung there.
_OTHER_SPEED_DEG_S = (35.0, 70.0)
_OTHER_MOVES = ("arm", "arms", "fidget", "torso", "step", "head", "stretch", "rest")
_OTHER_P = (0.22, 0.12, 0.16, 0.12, 0.16, 0.08, 0.04, 0.10)


def _random_arm(rng: np.random.Generator, side: str, high: bool) -> dict[str, float]:
    """One arm somewhere a person's arm goes: upper arm below shoulder height unless `high`."""
    ua_a = rng.uniform(140, 175) if high else rng.uniform(-15, 80)
    ua_f = rng.uniform(-10, 30) if high else rng.uniform(-40, 80)
    fa_a = ua_a + (rng.uniform(-15, 15) if high else rng.uniform(-90, 20))
    fa_f = min(95.0, ua_f + rng.uniform(0, 80))
    return {f"{side}ua_a": ua_a, f"{side}ua_f": ua_f, f"{side}fa_a": fa_a, f"{side}fa_f": fa_f}


def _other_move(rng: np.random.Generator, pose: np.ndarray, kind: str, step_side: str) -> np.ndarray:
    """The pose after one unstructured move of `kind` from `pose`."""
    values = dict(zip(_PARAMS, pose.tolist()))
    side = "r" if rng.random() < 0.5 else "l"
    if kind == "arm":
        values.update(_random_arm(rng, side, high=False))
    elif kind == "arms":
        values.update(_random_arm(rng, "r", high=False))
        values.update(_random_arm(rng, "l", high=False))
    elif kind == "fidget":  # small changes to a few arm angles
        for name in rng.choice([n for n in _PARAMS if n[1:3] in ("ua", "fa")], size=3, replace=False):
            values[str(name)] += rng.uniform(-18, 18)
    elif kind == "torso":
        values.update(torso_pitch=rng.uniform(-5, 30), torso_roll=rng.uniform(-12, 12))
    elif kind == "step":  # lift one leg (the other carries the body), or put it back
        bent = values[f"{step_side}th_f"] > 10
        thigh = 0.0 if bent else rng.uniform(15, 40)
        values.update({f"{step_side}th_f": thigh, f"{step_side}sh_f": thigh - (0 if bent else rng.uniform(20, 50)),
                       f"{step_side}th_a": rng.uniform(2, 10)})
    elif kind == "head":
        values.update(head_pitch=rng.uniform(-20, 25))
    elif kind == "stretch":
        values.update(_random_arm(rng, "r", high=True))
        values.update(_random_arm(rng, "l", high=True))
        values.update(torso_pitch=rng.uniform(-10, 0))
    else:
        values = dict(_STAND)
    return _pose(**values)


def _plan_other(rng: np.random.Generator, duration: float) -> _Plan:
    """Random smooth keyframes within human limits, slow and irregular (see the rules above)."""
    pose = _other_move(rng, STAND, "arms", "r") if rng.random() < 0.5 else STAND
    plan: _Plan = [(0.0, pose)]
    elapsed, stretched, step_side = 0.0, False, "r"
    while elapsed < duration:
        kind = str(rng.choice(_OTHER_MOVES, p=_OTHER_P))
        if kind == "stretch" and stretched:
            kind = "arms"
        if plan[-1][1][_P["rua_a"]] > 120 or plan[-1][1][_P["lua_a"]] > 120:
            kind = "rest"  # a stretch is held once, then the arms come down
        stretched |= kind == "stretch"
        new = _other_move(rng, pose, kind, step_side)
        if kind == "step" and new[_P[f"{step_side}th_f"]] <= 10:
            step_side = "l" if step_side == "r" else "r"
        change = float(np.linalg.norm((new - pose)[_ANGLE]))  # degrees, all joints together
        move = max(rng.uniform(0.6, 1.4), change / rng.uniform(*_OTHER_SPEED_DEG_S))
        plan.append((move, new))
        hold = rng.uniform(0.0, 0.8) if rng.random() < 0.6 else 0.0
        if hold:
            plan.append((hold, new))
        pose = new
        elapsed += move + hold
    return plan


def _walking_track(rng: np.random.Generator, subject: Subject, fps: float, n: int, speed: float) -> np.ndarray:
    """float64[n, len(_PARAMS)]: a gait cycle in place (the path moves the body).

    Shapes from clinical gait curves, simplified: the thigh swings about 8 +- 20 degrees, the knee
    flexes about 50-60 degrees in swing (as the thigh passes upright) and 10-15 at loading, arms swing opposite to the legs;
    step length about 0.4 x height at 1.3 m/s, shorter when slower.
    """
    t = np.arange(n) / fps
    gain = float(np.clip(speed / 1.3, 0.55, 1.35))
    step_m = subject.height_m * rng.uniform(0.36, 0.44) * gain ** 0.4
    cadence = speed / step_m  # steps per second; a stride is two steps
    phase = 2 * np.pi * cadence / 2 * t + rng.uniform(0, 2 * np.pi)
    track = np.tile(STAND, (n, 1))
    swing = rng.uniform(16, 22) * gain
    knee_peak = rng.uniform(45, 58) * min(gain, 1.1)
    for side, offset in (("r", 0.0), ("l", np.pi)):
        phi = phase + offset
        thigh = 8 + swing * np.sin(phi)
        knee = 6 + 10 * np.maximum(0, np.sin(phi)) ** 4 + knee_peak * np.maximum(0, np.cos(phi + 0.2)) ** 3
        track[:, _P[f"{side}th_f"]] = thigh
        track[:, _P[f"{side}sh_f"]] = thigh - knee
        track[:, _P[f"{side}th_a"]] = 3
    arm = rng.uniform(10, 26) * gain
    elbow = rng.uniform(8, 30)
    for side, sign in (("r", -1.0), ("l", 1.0)):
        ua_f = sign * arm * np.sin(phase)
        track[:, _P[f"{side}ua_f"]] = ua_f
        track[:, _P[f"{side}fa_f"]] = ua_f + elbow
    track[:, _P["torso_pitch"]] = rng.uniform(1, 7)
    track[:, _P["torso_roll"]] = rng.uniform(1, 2.5) * np.sin(phase)
    track[:, _P["head_pitch"]] = rng.uniform(-5, 15)
    carry = rng.random()
    if carry < 0.25:  # hands that do not swing: a phone, pockets, or arms crossed
        arms = ("phone", "pockets", "crossed", "phone two hands")[int(rng.integers(4))]
        for name, value in _REST_ARMS[arms].items():
            track[:, _P[name]] = value
    return track


def _yaw_walk(rng: np.random.Generator) -> float:
    """Across the view half the time, diagonally or towards/away from the camera otherwise."""
    kind = rng.random()
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind < 0.5:
        return sign * (90 + rng.uniform(-20, 20))
    if kind < 0.8:
        return sign * (45 + rng.uniform(-15, 15) + (90 if rng.random() < 0.4 else 0))
    return rng.uniform(-15, 15) + (180 if rng.random() < 0.4 else 0)


def _camera_height(rng: np.random.Generator, subject: Subject, depth: float) -> float:
    """A camera height that keeps head and feet in the frame at `depth` (vertical half view 0.45 depth)."""
    lo, hi = subject.height_m - 0.42 * depth, 0.42 * depth
    wanted = rng.uniform(0.8, 2.2)
    return float(np.clip(wanted, lo, hi)) if lo <= hi else subject.height_m / 2


def _placed(subject: Subject, rng: np.random.Generator, near: bool, far: tuple[float, float],
            min_depth: float = 3.0, approach: float = 0.2, elevated: float = 0.0) -> Subject:
    """The subject at MHAD's place (`near`) or farther (log-uniform in `far`, small people at its
    end), with a camera height that keeps them in the frame when `approach` metres nearer.

    With probability `elevated` (far only) the camera hangs 2.5-8 m up and looks down at the
    person's middle, as a street or shop camera does: people walking towards or away from it
    then move down or up the image and grow or shrink, which a level camera never shows.
    """
    if near:
        return subject
    depth = max(min_depth, float(np.exp(rng.uniform(*np.log(far)))))
    placed = replace(subject, distance_m=depth, x_m=float(rng.uniform(-0.35, 0.35) * 0.61 * depth),
                     camera_height_m=_camera_height(rng, subject, depth - approach))
    if elevated and rng.random() < elevated:
        height = float(rng.uniform(2.5, 8.0))
        pitch = float(np.degrees(np.arctan2(height - subject.height_m / 2, depth)))
        placed = replace(placed, camera_height_m=height, camera_pitch_deg=pitch)
    return placed


def _perform_walking(subject: Subject, rng: np.random.Generator, fps: float) -> tuple[_Performance, Subject]:
    duration = rng.uniform(3.0, 8.0)
    n = max(2, int(round(duration * fps)))
    speed = rng.uniform(0.7, 1.8)
    yaw = _yaw_walk(rng)
    track = _walking_track(rng, subject, fps, n, speed)
    # People do not walk on rails: the heading wanders a few degrees, slowly.
    t = np.arange(n) / fps
    wander = rng.uniform(0, 6) * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi))
    headings = np.radians(yaw + wander)
    step = speed / fps * np.stack([np.sin(headings), np.cos(headings)], axis=-1)
    path = np.cumsum(step, axis=0)
    path -= path[n // 2]  # the middle of the walk is where the person is placed
    heading, length = np.radians(yaw), speed * duration
    # Far enough that the walk stays mostly in view (horizontal half view 0.61 x depth) and the
    # whole body is seen at the nearest point; 3-25 m, log-uniform, as pedestrians in a street.
    approach = length / 2 * abs(np.cos(heading))
    fit = max(length * abs(np.sin(heading)) / 2 / 0.55, 3.0 + approach)
    placed = _placed(subject, rng, near=False, far=(3.0, 25.0), min_depth=fit, approach=approach, elevated=0.5)
    return _Performance(track, yaw + wander, path), placed


_LONGEST_S = 9.0  # the longest MHAD performances of the model last about 9 s; extras stop there too


def _perform_planned(activity: int, subject: Subject, rng: np.random.Generator, fps: float) -> tuple[_Performance, Subject]:
    duration = rng.uniform(3.0, 7.0)
    plan = _plan_standing(rng, duration) if activity == STANDING else _plan_other(rng, duration)
    track = _pose_track(plan, subject, rng, fps)[: max(2, int(_LONGEST_S * fps))]
    n = len(track)
    if activity == STANDING:  # people stand anywhere: in MHAD's place, farther, turned
        yaw = np.full(n, subject.yaw_deg + rng.uniform(-10, 10) if rng.random() < 0.5 else rng.uniform(-70, 70))
        if rng.random() < 0.1:
            yaw += 180
        placed = _placed(subject, rng, near=rng.random() < 0.5, far=(3.5, 18.0), elevated=0.5)
    else:  # mostly framed as MHAD is, so that framing does not tell `other` apart
        yaw = np.full(n, subject.yaw_deg + rng.uniform(-10, 10) if rng.random() < 0.6 else rng.uniform(-60, 60))
        if rng.random() < 0.3:  # turning around
            angle = rng.uniform(90, 200)
            turn = max(rng.uniform(2.0, 3.5), angle / 70)  # at most about 110 degrees/s at its fastest
            start = rng.uniform(0, max(0.1, n / fps - turn))
            yaw += np.sign(rng.random() - 0.5) * angle * _ease((np.arange(n) / fps - start) / turn)
        placed = _placed(subject, rng, near=rng.random() < 0.75, far=(3.5, 9.0))
    offset = np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.15, 0.15)])
    return _Performance(track, yaw, np.tile(offset, (n, 1))), placed


def _turn(joints: np.ndarray, yaw_deg: np.ndarray, path: np.ndarray, head_radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Joints turned by a per-frame yaw and moved along the path; and bool[T, 18] face joints hidden.

    The head is a sphere: a face joint is seen while it faces the camera enough, by how far it
    stands out of the head centre towards the camera (z, in head radii): the nose, which juts out,
    down to -0.4 (turned up to about 113 degrees), an eye down to +0.15 (the far eye goes at about
    60 degrees), an ear down to -0.7 (about 45 degrees past profile): what a detector reports, roughly.
    """
    yaw = np.radians(yaw_deg)[:, None]
    x, z = joints[..., 0], joints[..., 2]
    turned = joints.copy()
    turned[..., 0] = x * np.cos(yaw) + z * np.sin(yaw) + path[:, None, 0]
    turned[..., 2] = -x * np.sin(yaw) + z * np.cos(yaw) + path[:, None, 1]
    head_z = (turned[:, R_EAR, 2] + turned[:, L_EAR, 2]) / 2
    hidden = np.zeros(joints.shape[:2], bool)
    for joint, least in ((NOSE, -0.4), (R_EYE, 0.15), (L_EYE, 0.15), (R_EAR, -0.7), (L_EAR, -0.7)):
        hidden[:, joint] = turned[:, joint, 2] - head_z < least * head_radius_m
    return turned, hidden


def _render(performance: _Performance, subject: Subject, size: tuple[int, int]) -> np.ndarray:
    """float32[T, 18, 3] pixels; confidence 0 out of frame or hidden (eyes hidden also lose x, y)."""
    joints = _skeleton_3d(performance.track, subject)
    turned, hidden = _turn(joints, performance.yaw_deg, performance.path, subject.head_radius_m)
    keypoints = _project(turned, subject, size, 0.0)
    keypoints[..., 2][hidden] = 0.0
    eyes = hidden.copy()
    eyes[:, [NOSE, R_EAR, L_EAR]] = False  # the head is still drawn around nose and ears
    keypoints[eyes] = 0.0
    return keypoints


def _extra_motion(activity: int, subject: Subject, repetition: int, fps: float, size: tuple[int, int], seed: int,
                  turn_deg: float = 0.0) -> np.ndarray:
    rng = _rng(seed, subject.subject_id, activity, repetition)
    if activity == WALKING:
        performance, placed = _perform_walking(subject, rng, fps)
    else:
        performance, placed = _perform_planned(activity, subject, rng, fps)
        performance = replace(performance, yaw_deg=performance.yaw_deg + turn_deg)
    return _render(performance, placed, size)


def _turned_mhad(track: np.ndarray, subject: Subject, rng: np.random.Generator, turn_deg: float) -> _Performance:
    """An MHAD performance placed as `motion` places it (same draws, same order), turned further."""
    n = len(track)
    offset = np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.15, 0.15)])
    yaw = subject.yaw_deg + rng.uniform(-10, 10) + turn_deg
    return _Performance(track, np.full(n, yaw), np.tile(offset, (n, 1)))


# ---------------------------------------------------------------------------------------------
# Scripted scenes: activities one after another, for tests and demos.

_BLEND_S = 0.35  # seconds over which one segment's pose turns into the next one's


def _busiest(track: np.ndarray, n: int) -> np.ndarray:
    """The n frames of a track where it moves most (the action itself, not the waits around it)."""
    if len(track) <= n:
        pad = n - len(track)
        before = pad // 2
        return np.concatenate([np.repeat(track[:1], before, 0), track, np.repeat(track[-1:], pad - before, 0)])
    energy = np.abs(np.diff(track[:, _ANGLE], axis=0)).sum(axis=1)
    window = np.convolve(energy, np.ones(n - 1), mode="valid")
    start = int(np.argmax(window))
    return track[start : start + n]


def _pace(subject: Subject, x_now: float, speed: float, fps: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Walking sideways from x_now (world metres), turning back at the edges of the view: float64[n]
    positions and yaw (90 = to the image's right), the turns eased over half a second."""
    half = max(0.3, 0.61 * subject.distance_m - 0.45)  # horizontal half view 0.61 x depth, less a body
    lo, hi = -half - subject.x_m, half - subject.x_m
    direction = -1.0 if x_now > (lo + hi) / 2 else 1.0
    pos = x_now - lo + direction * speed * np.arange(1, n + 1) / fps
    span = hi - lo
    folded = np.mod(pos, 2 * span)
    x = lo + np.where(folded < span, folded, 2 * span - folded)
    heading = 90.0 * np.where((folded < span) == (direction > 0), 1.0, -1.0)
    width = max(1, int(round(0.5 * fps)))
    padded = np.concatenate([np.full(width, heading[0]), heading, np.full(width, heading[-1])])
    smooth = np.convolve(padded, np.ones(2 * width + 1) / (2 * width + 1), mode="same")[width:-width]
    return x, smooth


def _segment(activity: int, subject: Subject, rng: np.random.Generator, fps: float, n: int, x_now: float) -> _Performance:
    """Exactly n frames of `activity` facing the camera (walking goes sideways, towards the middle)."""
    yaw = np.full(n, subject.yaw_deg)
    path = np.zeros((n, 2))
    if activity == WALKING:
        speed = rng.uniform(0.8, 1.4)
        x, heading = _pace(subject, x_now, speed, fps, n)
        path[:, 0] = x - x_now
        return _Performance(_walking_track(rng, subject, fps, n, speed), heading, path)
    if activity < len(ACTIONS):
        track = _pose_track(_PLANS[activity](rng), subject, rng, fps)
    elif activity == STANDING:
        track = _pose_track(_plan_standing(rng, n / fps), subject, rng, fps)
    else:
        track = _pose_track(_plan_other(rng, n / fps), subject, rng, fps)
    return _Performance(_busiest(track, n), yaw, path)


def _join(parts: list[_Performance], fps: float) -> _Performance:
    """Segments end to end: each starts from where the last one ended, eased in over _BLEND_S."""
    tracks, yaws, paths = [parts[0].track], [parts[0].yaw_deg], [parts[0].path]
    for part in parts[1:]:
        m = min(max(1, int(round(_BLEND_S * fps))), len(part.track))
        w = _ease(np.arange(1, m + 1) / m)
        track, yaw = part.track.copy(), part.yaw_deg.copy()
        track[:m] = tracks[-1][-1] + w[:, None] * (track[:m] - tracks[-1][-1])
        yaw[:m] = yaws[-1][-1] + w * (yaw[:m] - yaws[-1][-1])
        tracks.append(track)
        yaws.append(yaw)
        paths.append(part.path + paths[-1][-1])
    return _Performance(np.concatenate(tracks), np.concatenate(yaws), np.concatenate(paths))


def scripted_motion(
    segments: list[tuple[int | str, float]],
    subject: Subject,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints float32[T, 18, 3] of activities one after another, and int32[T] the activity of each frame.

    `segments` is [(activity, seconds), ...] with activities as `activity_index` takes them, e.g.
    [("standing", 4), ("A05", 1), ("standing", 4)]. Segment k has exactly round(seconds x fps)
    frames; an MHAD action keeps its busiest stretch (a 1 s wave is waving, not the raise before
    it); each segment eases in from the last pose of the one before over 0.35 s. The person stays
    where MHAD puts them, facing the camera; walking goes sideways, back towards the middle.
    """
    if not segments:
        raise ValueError("a script needs at least one (activity, seconds) segment")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    parts, labels, x_now = [], [], 0.0
    for k, (activity, seconds) in enumerate(segments):
        index = activity_index(activity)
        n = int(round(float(seconds) * fps))
        if n < 1:
            raise ValueError(f"segment {k} ({activity!r}, {seconds} s) is shorter than one frame at {fps} fps")
        part = _segment(index, subject, _rng(seed, subject.subject_id, index, 1_000_003 + k), fps, n, x_now)
        x_now += float(part.path[-1, 0])
        parts.append(part)
        labels.append(np.full(n, index, np.int32))
    return _render(_join(parts, fps), subject, size), np.concatenate(labels)


# ---------------------------------------------------------------------------------------------
# Drawing


def _pt(kp: np.ndarray, i: int) -> tuple[int, int]:
    return int(round(float(kp[i, 0]))), int(round(float(kp[i, 1])))


def _present(kp: np.ndarray, *idx: int) -> bool:
    return all(kp[i, 2] > 0 or kp[i, 0] != 0 or kp[i, 1] != 0 for i in idx)


def draw_person(canvas_bgr: np.ndarray, keypoints: np.ndarray, subject: Subject) -> None:
    """Draw a filled figure (legs, torso, arms, head) in the subject's clothes, in place.

    Joints out of frame are still drawn where they are (OpenCV clips); all-zero joints are
    treated as absent. Sizes follow the person's pixel scale (torso length in the image).
    """
    kp = np.asarray(keypoints, np.float32)
    mid_hip = (kp[R_HIP, :2] + kp[L_HIP, :2]) / 2
    torso_px = float(np.linalg.norm(kp[NECK, :2] - mid_hip))
    scale = max(torso_px / subject.torso_m, 20.0)  # pixels per metre
    leg_w = max(2, int(0.15 * scale))
    arm_w = max(2, int(0.095 * scale))
    fore_w = max(2, int(0.075 * scale))

    def limb(a: int, b: int, colour: tuple[int, int, int], width: int) -> None:
        if _present(kp, a, b):
            cv2.line(canvas_bgr, _pt(kp, a), _pt(kp, b), colour, width, cv2.LINE_AA)

    # Far leg/arm first would need depth; the figure faces the camera, so legs, torso, arms.
    for hip, knee, ankle in ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE)):
        limb(hip, knee, subject.pants_bgr, leg_w)
        limb(knee, ankle, subject.pants_bgr, int(leg_w * 0.85))
        if _present(kp, ankle):
            cv2.circle(canvas_bgr, _pt(kp, ankle), max(2, int(leg_w * 0.45)), subject.shoes_bgr, -1, cv2.LINE_AA)
    if _present(kp, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP):
        widen = np.array([0.03 * scale, 0], np.float32)
        poly = np.array(
            [kp[R_SHOULDER, :2] - widen, kp[L_SHOULDER, :2] + widen, kp[L_HIP, :2] + widen, kp[R_HIP, :2] - widen]
        )
        cv2.fillConvexPoly(canvas_bgr, np.round(poly).astype(np.int32), subject.shirt_bgr, cv2.LINE_AA)
        cv2.line(canvas_bgr, _pt(kp, R_HIP), _pt(kp, L_HIP), subject.pants_bgr, max(2, int(0.08 * scale)), cv2.LINE_AA)
    for shoulder, elbow, wrist in ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST)):
        limb(shoulder, elbow, subject.shirt_bgr, arm_w)
        limb(elbow, wrist, subject.skin_bgr, fore_w)
        if _present(kp, wrist):
            cv2.circle(canvas_bgr, _pt(kp, wrist), max(2, int(fore_w * 0.7)), subject.skin_bgr, -1, cv2.LINE_AA)
    limb(NECK, NOSE, subject.skin_bgr, max(2, int(0.07 * scale)))
    if _present(kp, NOSE, NECK):
        radius = max(3, int(subject.head_radius_m * scale * 1.1))
        ears = [kp[i, :2] for i in (R_EAR, L_EAR) if _present(kp, i)]
        centre = np.mean(ears, axis=0) if ears else kp[NOSE, :2]
        c = int(round(float(centre[0]))), int(round(float(centre[1])))
        cv2.circle(canvas_bgr, c, radius, subject.skin_bgr, -1, cv2.LINE_AA)
        # Hair: the upper half of the head, towards the top of the image.
        cv2.ellipse(canvas_bgr, c, (radius, radius), 0, 180, 360, subject.hair_bgr, -1, cv2.LINE_AA)
        for eye in (R_EYE, L_EYE):
            if _present(kp, eye):
                cv2.circle(canvas_bgr, _pt(kp, eye), max(1, radius // 6), (30, 30, 30), -1)


def background(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A plain room, uint8[H, W, 3] BGR for `size` = (width, height): wall, floor, a door, a window."""
    width, height = size
    rng = _rng(seed, 104729)
    wall = np.array(_colour(rng, 120, 220), np.float32)
    floor = np.array(_colour(rng, 50, 140), np.float32)
    horizon = int(height * rng.uniform(0.62, 0.75))
    shade = np.linspace(0.85, 1.05, height, dtype=np.float32)[:, None]
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = wall * shade[:horizon, :, None]
    image[horizon:] = floor * shade[horizon:, :, None]
    image = np.clip(image, 0, 255).astype(np.uint8)
    door_x = int(width * rng.uniform(0.02, 0.3))
    cv2.rectangle(image, (door_x, int(horizon * 0.2)), (door_x + int(width * 0.12), horizon), _colour(rng, 40, 120), -1)
    win_x = int(width * rng.uniform(0.6, 0.85))
    cv2.rectangle(image, (win_x, int(height * 0.12)), (win_x + int(width * 0.13), int(height * 0.35)), _colour(rng, 180, 250), -1)
    cv2.rectangle(image, (win_x, int(height * 0.12)), (win_x + int(width * 0.13), int(height * 0.35)), (60, 60, 60), 3)
    cv2.line(image, (0, horizon), (width, horizon), (40, 40, 40), 2)
    noise = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


__all__ = [
    "ACTIONS", "ACTIVITIES", "EXTRA_ACTIVITIES", "OTHER", "STANDING", "WALKING", "Subject", "activity_index",
    "background", "draw_person", "make_subject", "motion", "scripted_motion",
]
