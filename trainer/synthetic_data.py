"""An MHAD-shaped synthetic dataset from engine.sources.synthetic: S01-S12 x activities x R01-R05.

The motion model gives ground truth; a pose backend does not, so keypoints get what a real
detector adds: pixel noise, confidences below 1, joints that vanish for a frame or a run of
frames (face joints most often). Deterministic from the seed.

Each performance gives its whole 30 fps sequence as a detector would see it (`degrade`; the
sequence the shipped models were trained on, unchanged), then `variants` more of the same
performance as other pose sources and cameras would give it (`vary`, then `degrade`): sensor
skeletons without eyes and ears (Kinect), hips and neck placed as other sources place them, a
camera higher, tilted, farther, mirrored or cutting the feet off, 15-30 fps, and 1-3 s clips as
well as whole performances.
Besides the 11 MHAD actions, people stand, walk and move about in no particular way (`other`,
the negatives) so a model can say none of its actions is happening.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.sources import synthetic
from engine.sources.mhad import FPS, N_REPETITIONS, N_SUBJECTS
from pose.coco import L_EAR, L_EYE, L_HIP, L_SHOULDER, N_JOINTS, NECK, NOSE, R_EAR, R_EYE, R_HIP, R_SHOULDER
from trainer.augment import mirror, warp
from trainer.dataset import Dataset, from_sequences

SIZE = (640, 480)
VARIANTS = 2  # varied copies per performance, besides the plain one

_FACE = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)
_EYES_EARS = (R_EYE, L_EYE, R_EAR, L_EAR)


def degrade(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a pose backend might report for ground-truth keypoints float32[T, 18, 3]."""
    kp = keypoints.copy()
    t = len(kp)
    visible = kp[..., 2] > 0
    ys = kp[..., 1][visible]
    height_px = float(ys.max() - ys.min()) if ys.size else 100.0
    sigma = height_px * rng.uniform(0.004, 0.012)
    kp[..., :2] += rng.normal(0.0, sigma, size=(t, N_JOINTS, 2)).astype(np.float32)
    conf = rng.uniform(0.45, 1.0, size=(t, N_JOINTS)).astype(np.float32)
    drop_p = np.full(N_JOINTS, rng.uniform(0.005, 0.03))
    drop_p[list(_FACE)] *= 3
    dropped = rng.random((t, N_JOINTS)) < drop_p
    for _ in range(int(rng.integers(0, 4))):  # a joint lost for a run of frames (occlusion, blur)
        joint = int(rng.integers(N_JOINTS))
        start = int(rng.integers(t))
        dropped[start : start + int(rng.integers(3, 16)), joint] = True
    missing = dropped | ~visible
    kp[..., 2] = np.where(missing, 0.0, conf)
    kp[missing, :2] = 0.0
    return kp


# ---------------------------------------------------------------------------------------------
# Source variety: what differs between pose sources and cameras, drawn once per sequence.

FRAME_RATES = (15.0, 20.0, 25.0, 30.0)  # what real datasets and cameras deliver


@dataclass(frozen=True)
class Look:
    """How one sequence is seen. Lengths are in the person's own image sizes (torso, head, height)."""

    fps: float  # the capture rate the sequence gets
    clip_s: float | None  # a clip this long (1-3 s) cut from the performance; None: all of it
    face: str  # "full"; "none": no eyes and ears (sensor skeletons); "head": no eyes and ears, nose at the head
    head_up: float  # with face "head": the head point this far above the head centre, in neck-to-head lengths
    hip_spread: float  # distance between the hips relative to the model's (< 1 inward, > 1 outward)
    neck_up: float | None  # None: the model's neck; else at mid-shoulders plus this many torso lengths up
    roll_deg: float  # camera roll: the 2D skeleton rotated
    squash: float  # vertical foreshortening of a camera looking down (1 = level)
    scale: float  # person size relative to the plain sequence (< 1: farther away)
    mirror: bool  # a mirrored image: x flipped, left and right swapped
    crop_bottom: float = 0.0  # share of the person's height below the frame's lower edge (feet out of view)
    turn_deg: float = 0.0  # the person turned further from the camera than MHAD's +-18 degrees (3D, before projection)


def draw_look(rng: np.random.Generator) -> Look:
    """A random Look, with shares set against the real skeleton datasets at hand (SBU Kinect, Penn
    Action annotations; measured with the model's plain sequences as reference):

    - face: half the sequences lose eyes and ears (neither dataset has them); 60% of those get a
      head point instead of a nose (Kinect `Head`: SBU's sits 0.48 torso lengths above the neck,
      the model's nose 0.30, so the point is raised by up to 0.45 neck-to-head lengths);
    - hips: the model's hips are 0.50 of the shoulder width apart, SBU's 0.65, Penn's 0.88, and the
      brief asks for some inward too: 60% get 0.8-1.9 times the spread;
    - neck: 30% at the mid-shoulder point exactly (both datasets), 30% moved 0.1 down to 0.15 up;
    - camera: half tilted (roll +-8 degrees, vertical foreshortening 0.7-1), 60% at another
      distance (0.25-1.3 x, log-uniform: small far people), half mirrored, 20% with the feet
      and up to half the body below the frame; half turned up to 45 degrees further from the camera
      (in 3D: MHAD's people face it within 18 degrees, people in other videos do not);
    - time: 15/20/25/30 fps (30 twice as often; SBU is 15, MHAD 30), half 1-3 s clips (SBU's
      last 0.7-3 s), half whole performances.
    """
    face = "full" if rng.random() < 0.5 else ("head" if rng.random() < 0.6 else "none")
    tilted = rng.random() < 0.5
    neck = rng.random()
    return Look(
        fps=float(rng.choice(FRAME_RATES, p=(0.2, 0.2, 0.2, 0.4))),
        clip_s=float(rng.uniform(1.0, 3.0)) if rng.random() < 0.5 else None,
        face=face,
        head_up=float(rng.uniform(0.0, 0.45)) if face == "head" else 0.0,
        hip_spread=float(rng.uniform(0.8, 1.9)) if rng.random() < 0.6 else 1.0,
        neck_up=None if neck < 0.4 else (0.0 if neck < 0.7 else float(rng.uniform(-0.1, 0.15))),
        roll_deg=float(rng.uniform(-8, 8)) if tilted else 0.0,
        squash=float(rng.uniform(0.7, 1.0)) if tilted else 1.0,
        scale=float(np.exp(rng.uniform(np.log(0.25), np.log(1.3)))) if rng.random() < 0.6 else 1.0,
        mirror=bool(rng.random() < 0.5),
        crop_bottom=float(rng.uniform(0.1, 0.5)) if rng.random() < 0.2 else 0.0,
        turn_deg=float(rng.uniform(-45, 45)) if rng.random() < 0.5 else 0.0,
    )


def sensor_skeleton(keypoints: np.ndarray, look: Look) -> np.ndarray:
    """Ground truth float32[T, 18, 3] with another source's joint placement: face, hips, neck."""
    kp = np.array(keypoints, np.float32, copy=True)
    if look.face == "head":
        ears = kp[:, [R_EAR, L_EAR]]
        centre = ears[..., :2].mean(axis=1)  # the ears sit either side of the head centre
        kp[:, NOSE, :2] = centre + look.head_up * (centre - kp[:, NECK, :2])
        kp[:, NOSE, 2] = np.where((ears[..., 2] > 0).any(axis=1) | (kp[:, NOSE, 2] > 0), 1.0, 0.0)
    if look.face != "full":
        kp[:, list(_EYES_EARS)] = 0.0
    mid_hip = (kp[:, R_HIP, :2] + kp[:, L_HIP, :2]) / 2
    if look.hip_spread != 1.0:
        for hip in (R_HIP, L_HIP):
            kp[:, hip, :2] = mid_hip + look.hip_spread * (kp[:, hip, :2] - mid_hip)
    if look.neck_up is not None:
        shoulders = (kp[:, R_SHOULDER, :2] + kp[:, L_SHOULDER, :2]) / 2
        kp[:, NECK, :2] = shoulders + look.neck_up * (shoulders - mid_hip)
    return kp


def clip_start(keypoints: np.ndarray, n: int, rng: np.random.Generator) -> int:
    """A random start for an n-frame clip, weighted by how much the clip moves (squared), so a short
    clip of an action mostly holds the action rather than the waits before and after it."""
    if n >= len(keypoints):
        return 0
    speed = np.abs(np.diff(keypoints[..., :2], axis=0)).sum(axis=(1, 2))
    energy = np.convolve(speed, np.ones(n - 1), mode="valid") + 1e-6
    weights = energy**2
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def _in_view(keypoints: np.ndarray, look: Look, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The camera part of a Look (roll, tilt, distance, mirror); joints leaving the frame are lost."""
    width, height = size
    present = keypoints[..., 2] > 0
    if not present.any():
        return keypoints
    xy = keypoints[..., :2][present]
    centre = (float(xy[:, 0].mean()), float(xy[:, 1].mean()))
    extent = (xy.max(axis=0) - xy.min(axis=0)) * look.scale / 2
    # Keep the scaled person in the frame where they fit, anywhere else they like.
    free = np.maximum(np.array([width, height]) / 2 - extent - 4, 0)
    target = tuple(float(v) for v in np.array([width, height]) / 2 + rng.uniform(-1, 1, 2) * free)
    if look.scale == 1.0 and not look.roll_deg and look.squash == 1.0:
        target = centre  # an unscaled, level camera keeps the person where they were
    kp = warp(keypoints, centre, target, look.roll_deg, look.squash, look.scale)
    if look.mirror:
        kp = mirror(kp, width)
    outside = (kp[..., 0] < 0) | (kp[..., 0] >= width) | (kp[..., 1] < 0) | (kp[..., 1] >= height)
    if look.crop_bottom:  # the frame's lower edge cuts the person (a webcam, someone close by)
        ys = kp[..., 1][kp[..., 2] > 0]
        if ys.size:
            outside |= kp[..., 1] > ys.max() - look.crop_bottom * (ys.max() - ys.min())
    kp[outside] = 0.0
    return kp


def vary(activity: int, subject: synthetic.Subject, repetition: int, look: Look, rng: np.random.Generator,
         seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Ground truth of one performance as `look` sees it, float32[T, 18, 3] at look.fps (before `degrade`).

    The motion model is sampled at look.fps (the same performance: its random draws do not depend
    on the frame rate), then cut, re-jointed and re-viewed.
    """
    truth = synthetic.motion(activity, subject, repetition, fps=look.fps, size=size, seed=seed, turn_deg=look.turn_deg)
    if look.clip_s is not None:
        n = max(2, int(round(look.clip_s * look.fps)))
        start = clip_start(truth, n, rng)
        truth = truth[start : start + n]
    return _in_view(sensor_skeleton(truth, look), look, size, rng)


# ---------------------------------------------------------------------------------------------


def _sequence_id(subject: int, activity: int, repetition: int) -> str:
    name = f"A{activity + 1:02d}" if activity < len(synthetic.ACTIONS) else synthetic.ACTIVITIES[activity]
    return f"S{subject:02d}/{name}/R{repetition:02d}"


def build(seed: int = 0, subjects: range | list[int] = range(1, N_SUBJECTS + 1),
          actions: range | list[int] | None = None,
          repetitions: range | list[int] = range(1, N_REPETITIONS + 1),
          extra_activities: bool = True, variants: int = VARIANTS) -> Dataset:
    """The synthetic dataset: 1-based subject and repetition ids (MHAD's, so subjects 1-7 train and
    8-12 test), indices into synthetic.ACTIVITIES as labels.

    `actions` (indices into ACTIVITIES) defaults to the 11 MHAD actions plus, with
    `extra_activities`, standing, walking and other; label names are ACTIVITIES then, or ACTIONS
    for a dataset of MHAD actions only. Every performance gives its plain sequence (id
    `S01/A01/R01`, 30 fps, whole) and `variants` varied ones (`S01/A01/R01/v1`, ...; see `vary`).
    """
    if variants < 0:
        raise ValueError(f"variants must be 0 or more, got {variants}")
    if actions is None:
        actions = range(len(synthetic.ACTIVITIES) if extra_activities else len(synthetic.ACTIONS))
    actions = [synthetic.activity_index(a) for a in actions]
    wide = extra_activities or any(a >= len(synthetic.ACTIONS) for a in actions)
    names = synthetic.ACTIVITIES if wide else synthetic.ACTIONS
    sequences, labels, subject_ids, ids, rates = [], [], [], [], []
    for s in subjects:
        subject = synthetic.make_subject(s, seed=seed)
        for a in actions:
            for r in repetitions:
                truth = synthetic.motion(a, subject, r, fps=FPS, size=SIZE, seed=seed)
                rng = np.random.default_rng([seed, s, a, r, 0xD47A])
                sequences.append(degrade(truth, rng))
                rates.append(FPS)
                ids.append(_sequence_id(s, a, r))
                for v in range(1, variants + 1):
                    rng = np.random.default_rng([seed, s, a, r, 0x5EE, v])
                    look = draw_look(rng)
                    sequences.append(degrade(vary(a, subject, r, look, rng, seed=seed), rng))
                    rates.append(look.fps)
                    ids.append(f"{_sequence_id(s, a, r)}/v{v}")
                labels += [a] * (1 + variants)
                subject_ids += [s] * (1 + variants)
    return from_sequences(sequences, labels, names, subject_ids, rates, ids=ids)
