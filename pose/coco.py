"""COCO-18 in OpenPose order: the one place that knows joint indices, limbs and colours."""
from __future__ import annotations

JOINTS: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)
N_JOINTS = len(JOINTS)
J = {name: i for i, name in enumerate(JOINTS)}

NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

# The 19 joint pairs of OpenPose's COCO model, in the order of its part affinity fields.
# The last two (shoulder-ear) exist only for grouping; they are not drawn.
PAF_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
    (2, 16), (5, 17),
)
LIMBS: tuple[tuple[int, int], ...] = PAF_PAIRS[:17]

# OpenPose's demo palette (RGB), one colour per limb; skeleton images use it so that
# models trained on the research's images see the same colours.
LIMB_COLORS_RGB: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
    (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
    (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
    (255, 0, 255), (255, 0, 170),
)
LIMB_COLORS_BGR: tuple[tuple[int, int, int], ...] = tuple((b, g, r) for r, g, b in LIMB_COLORS_RGB)
