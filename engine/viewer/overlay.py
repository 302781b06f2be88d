"""The picture a viewer or recorder shows: a frame with skeletons, boxes, track ids and labels.

Built from pose.draw's annotators, composed in a list; the label annotator reads a mapping
this class refills before each frame.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pose.base import People
from pose.coco import N_JOINTS
from pose.draw import Annotator, BoxAnnotator, LabelAnnotator, SkeletonAnnotator, annotate_all


def people_of(arrays: Mapping[str, np.ndarray], tracks: list[int]) -> People:
    """People of a monitor message (keypoints float32[P,18,3], boxes float32[P,4], tracks from the header)."""
    keypoints = arrays.get("keypoints", np.zeros((0, N_JOINTS, 3), np.float32))
    boxes = arrays.get("boxes", np.zeros((0, 4), np.float32))
    ids = np.asarray(tracks if len(tracks) == len(keypoints) else [-1] * len(keypoints), np.int32)
    return People(keypoints, boxes, ids)


def label_text(label: Mapping) -> str:
    return f"{label['label']} {float(label['score']):.2f}"


class FrameOverlay:
    """Draws people and their labels on a copy of a frame; the annotator list is the whole style."""

    def __init__(self, annotators: list[Annotator] | None = None) -> None:
        self._texts: dict[int, str] = {}
        self.annotators: list[Annotator] = annotators if annotators is not None else [
            SkeletonAnnotator(thickness=3, joint_radius=4),
            BoxAnnotator(thickness=2),
            LabelAnnotator(self._texts, text_scale=0.7),
        ]

    def draw(self, frame_bgr: np.ndarray, people: People, labels: Mapping[int, Mapping]) -> np.ndarray:
        """A new uint8[H, W, 3] image: `frame_bgr` (left untouched, it may be a read-only buffer) annotated."""
        self._texts.clear()
        self._texts.update({track: label_text(label) for track, label in labels.items()})
        return annotate_all(np.array(frame_bgr, dtype=np.uint8, copy=True), people, self.annotators)
