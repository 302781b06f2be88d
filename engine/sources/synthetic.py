"""A 2D-projected kinematic model of a person performing the 11 Berkeley MHAD actions.

Used twice: by the `synthetic:` video source (frames drawn with `draw_person` on `background`)
and by the trainer's synthetic dataset (keypoints from `motion`). Written once so that what the
engine shows with no camera is what the shipped models were trained on.

How it works: each action is a list of key poses (joint angles in degrees plus a few body
offsets) with durations; frames interpolate between them with cosine easing, plus slow
per-repetition sway. A pose is turned into 3D joint positions (metres, person facing the
camera, COCO-18 order), rotated by the subject's yaw and projected through a pinhole camera
like the Kinect 1 of MHAD (f = 525 px at 640x480). Everything random comes from
numpy Generators seeded with (seed, subject, action, repetition), so outputs are deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.sources.mhad import ACTIONS  # the actions the synthetic people perform, in MHAD order
from pose.coco import (
    L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, N_JOINTS, NECK, NOSE,
    R_ANKLE, R_EAR, R_ELBOW, R_EYE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
)

# Kinect 1 colour camera focal length in pixels at 640x480.
_FOCAL_640 = 525.0


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
    u = width / 2 + focal * (xr + s.x_m) / depth
    v = height / 2 - focal * (y - s.camera_height_m) / depth
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return np.stack([u, v, inside.astype(np.float64)], axis=-1).astype(np.float32)


def motion(
    action: int,
    subject: Subject,
    repetition: int,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> np.ndarray:
    """Ground-truth keypoints float32[T, 18, 3] (pixels, confidence 1 or 0 out of frame).

    `action` is 0-based (A01 = 0); `size` is (width, height). T varies with the action, the
    subject's tempo and the repetition, about 3-8 s as in MHAD.
    """
    if not 0 <= action < len(ACTIONS):
        raise ValueError(f"action {action} out of range: use 0..{len(ACTIONS) - 1}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    rng = _rng(seed, subject.subject_id, action, repetition)
    plan = _PLANS[action](rng)
    track = _pose_track(plan, subject, rng, fps)
    joints = _skeleton_3d(track, subject)
    # Per repetition the person stands a little elsewhere and turned a little differently.
    joints[..., 0] += rng.uniform(-0.12, 0.12)
    joints[..., 2] += rng.uniform(-0.15, 0.15)
    # MHAD subjects face the camera; each repetition turns a little differently.
    yaw = subject.yaw_deg + rng.uniform(-10, 10)
    return _project(joints, subject, size, yaw)


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


__all__ = ["ACTIONS", "Subject", "background", "draw_person", "make_subject", "motion"]
