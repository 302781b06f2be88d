"""Other skeleton layouts to COCO-18: the one table that says which joint goes where.

Every dataset or sensor numbers its joints its own way. The engine speaks only COCO-18
(OpenPose order, `pose.coco`), so data from anywhere else passes through `to_coco18` with the
name of its layout; adding a source means adding a row to `LAYOUTS`, not writing a converter.

Each layout lists its joints in their native order and, for every COCO-18 joint, the layout
joints it comes from:

- one joint: copied (a sensor's "head" becomes COCO's nose: the nearest point COCO has; the
  head centre sits a little above the nose, a small, consistent offset a classifier learns);
- two or more joints: their mean, with the lowest of their confidences (a derived joint is only
  as sure as its least sure source), e.g. the neck of a layout without one is mid-shoulders;
- none: the layout does not have the joint (a Kinect skeleton has no eyes or ears); it gets
  x = y = 0 and confidence 0, the engine's "missing joint".

Layouts (joint names in native order are in `LAYOUTS[name].joints`):

    coco18        OpenPose COCO-18, the engine's own order (identity)
    coco17        COCO keypoints (17), MS-COCO / most top-down pose models; neck = mid-shoulders
    body25        OpenPose BODY_25; toes, heels and mid-hip dropped
    kinect_v1     Microsoft Kinect v1 SDK (20); head -> nose, shoulder_center -> neck,
                  hands, feet, spine and hip_center dropped (wrists and ankles are kept)
    openni        OpenNI / NiTE (15), e.g. SBU Kinect Interaction; hand -> wrist,
                  foot -> ankle, head -> nose, torso dropped
    penn_action   Penn Action (13); head -> nose, neck = mid-shoulders; the first joint of
                  each left/right pair is the person's right, whatever the dataset's README
                  says (evidence at PENN_ACTION_JOINTS)

Left and right are the person's own in every layout, as in COCO.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pose.coco import JOINTS, N_JOINTS


class LayoutError(ValueError):
    """An unknown layout name or points of the wrong shape; the message says what is known."""


@dataclass(frozen=True)
class Layout:
    """A named skeleton layout and where each COCO-18 joint comes from.

    `sources[k]` holds the indices (into `joints`) averaged to make COCO-18 joint k;
    an empty tuple means the layout lacks that joint.
    """

    name: str
    joints: tuple[str, ...]
    sources: tuple[tuple[int, ...], ...]
    description: str

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def derived(self) -> tuple[str, ...]:
        """COCO-18 joints made from more than one layout joint (e.g. the neck)."""
        return tuple(JOINTS[k] for k, src in enumerate(self.sources) if len(src) > 1)

    def missing(self) -> tuple[str, ...]:
        """COCO-18 joints this layout cannot give (always confidence 0)."""
        return tuple(JOINTS[k] for k, src in enumerate(self.sources) if not src)


def _layout(name: str, joints: tuple[str, ...], mapping: Mapping[str, str | tuple[str, ...]], description: str) -> Layout:
    """Build a Layout from COCO-18 joint name -> layout joint name(s), checking every name."""
    index = {joint: i for i, joint in enumerate(joints)}
    unknown = [k for k in mapping if k not in JOINTS]
    if unknown or len(index) != len(joints):
        raise LayoutError(f"layout {name}: unknown COCO-18 joints {unknown} or repeated joint names")
    sources = []
    for coco_joint in JOINTS:
        src = mapping.get(coco_joint, ())
        src = (src,) if isinstance(src, str) else tuple(src)
        sources.append(tuple(index[s] for s in src))  # KeyError here is a typo in the table below
    return Layout(name, joints, tuple(sources), description)


def _same_names(joints: tuple[str, ...]) -> dict[str, str]:
    return {j: j for j in joints if j in JOINTS}


COCO18_JOINTS = JOINTS
COCO17_JOINTS: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear",
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
BODY25_JOINTS: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
    "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
)
KINECT_V1_JOINTS: tuple[str, ...] = (
    "hip_center", "spine", "shoulder_center", "head",
    "shoulder_left", "elbow_left", "wrist_left", "hand_left",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right",
    "hip_left", "knee_left", "ankle_left", "foot_left",
    "hip_right", "knee_right", "ankle_right", "foot_right",
)
OPENNI_JOINTS: tuple[str, ...] = (
    "head", "neck", "torso",
    "left_shoulder", "left_elbow", "left_hand",
    "right_shoulder", "right_elbow", "right_hand",
    "left_hip", "left_knee", "left_foot",
    "right_hip", "right_knee", "right_foot",
)
# Penn Action's sides, as the data has them. Its README lists "left shoulder, right shoulder, ..."
# (left first), but in the annotations the first of each pair is the person's RIGHT: on all
# 2,326 clips the strumming hand of strum_guitar is the first wrist in 97% of clips (bowl 80%,
# tennis 68-72%, baseball_pitch 74%: mostly right-handed people), and in clips whose `pose` is
# "front" the first shoulder lies on the image's left in 96% of frames (a person facing the
# camera has their right there). Other Penn Action loaders (e.g. deephar's pa16j layout) read
# it the same way. The names below are the person's own sides; COCO's are too.
PENN_ACTION_JOINTS: tuple[str, ...] = (
    "head", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow",
    "right_wrist", "left_wrist", "right_hip", "left_hip",
    "right_knee", "left_knee", "right_ankle", "left_ankle",
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _layout("coco18", COCO18_JOINTS, _same_names(COCO18_JOINTS), "OpenPose COCO-18, the engine's own order"),
        _layout(
            "coco17", COCO17_JOINTS, {**_same_names(COCO17_JOINTS), "neck": ("l_shoulder", "r_shoulder")},
            "COCO keypoints (17); neck = mid-shoulders",
        ),
        _layout("body25", BODY25_JOINTS, _same_names(BODY25_JOINTS), "OpenPose BODY_25; toes, heels and mid-hip dropped"),
        _layout(
            "kinect_v1", KINECT_V1_JOINTS,
            {
                "nose": "head", "neck": "shoulder_center",
                "r_shoulder": "shoulder_right", "r_elbow": "elbow_right", "r_wrist": "wrist_right",
                "l_shoulder": "shoulder_left", "l_elbow": "elbow_left", "l_wrist": "wrist_left",
                "r_hip": "hip_right", "r_knee": "knee_right", "r_ankle": "ankle_right",
                "l_hip": "hip_left", "l_knee": "knee_left", "l_ankle": "ankle_left",
            },
            "Kinect v1 SDK (20 joints); head -> nose, no eyes or ears",
        ),
        _layout(
            "openni", OPENNI_JOINTS,
            {
                "nose": "head", "neck": "neck",
                "r_shoulder": "right_shoulder", "r_elbow": "right_elbow", "r_wrist": "right_hand",
                "l_shoulder": "left_shoulder", "l_elbow": "left_elbow", "l_wrist": "left_hand",
                "r_hip": "right_hip", "r_knee": "right_knee", "r_ankle": "right_foot",
                "l_hip": "left_hip", "l_knee": "left_knee", "l_ankle": "left_foot",
            },
            "OpenNI/NiTE (15 joints, e.g. SBU Kinect Interaction); hand -> wrist, foot -> ankle, no eyes or ears",
        ),
        _layout(
            "penn_action", PENN_ACTION_JOINTS,
            {
                "nose": "head", "neck": ("left_shoulder", "right_shoulder"),
                "r_shoulder": "right_shoulder", "r_elbow": "right_elbow", "r_wrist": "right_wrist",
                "l_shoulder": "left_shoulder", "l_elbow": "left_elbow", "l_wrist": "left_wrist",
                "r_hip": "right_hip", "r_knee": "right_knee", "r_ankle": "right_ankle",
                "l_hip": "left_hip", "l_knee": "left_knee", "l_ankle": "left_ankle",
            },
            "Penn Action (13 joints); head -> nose, neck = mid-shoulders, no eyes or ears",
        ),
    )
}


def get_layout(name: str) -> Layout:
    """The layout called `name`; an unknown name raises LayoutError listing the known ones."""
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        raise LayoutError(f"unknown skeleton layout {name!r}; known layouts: {', '.join(sorted(LAYOUTS))}") from None


def to_coco18(points: np.ndarray, layout: str, confidence: np.ndarray | None = None) -> np.ndarray:
    """Joints in `layout` -> float32[..., 18, 3] COCO-18 keypoints (x, y, confidence).

    points: float[..., J, 2] (x, y) or float[..., J, 3] (x, y, confidence), J = the layout's
        joint count, x and y in pixels. A 3D sensor's (x, y, z) is NOT this: project it to
        the image (or drop z, `points[..., :2]`) first.
    confidence: optional float[..., J] in 0..1 (e.g. a visibility flag); multiplies the
        confidence channel when points has one, else all joints count as fully seen.

    A joint whose x, y or confidence is NaN or infinite counts as missing. Every missing
    joint (confidence 0, NaN, or absent from the layout) comes out as x = y = confidence = 0,
    so no stale coordinate leaks into drawing or features.
    """
    spec = get_layout(layout)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim < 2 or pts.shape[-2] != spec.n_joints or pts.shape[-1] not in (2, 3):
        raise LayoutError(
            f"layout {spec.name!r} takes points of shape [..., {spec.n_joints}, 2 or 3], got {pts.shape}"
        )
    xy = pts[..., :2]
    conf = pts[..., 2] if pts.shape[-1] == 3 else np.ones(pts.shape[:-1])
    if confidence is not None:
        c = np.asarray(confidence, dtype=np.float64)
        if c.shape != pts.shape[:-1]:
            raise LayoutError(f"confidence must have shape {pts.shape[:-1]} (one per joint), got {c.shape}")
        conf = conf * c
    ok = np.isfinite(xy).all(axis=-1) & np.isfinite(conf)
    conf = np.where(ok, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0)
    xy = np.where(ok[..., None], xy, 0.0)

    out = np.zeros(pts.shape[:-2] + (N_JOINTS, 3), np.float32)
    for k, src in enumerate(spec.sources):
        if not src:
            continue
        c = conf[..., list(src)].min(axis=-1)
        out[..., k, :2] = xy[..., list(src), :].mean(axis=-2)
        out[..., k, 2] = c
    seen = out[..., 2] > 0
    out[..., :2] *= seen[..., None]
    return out
