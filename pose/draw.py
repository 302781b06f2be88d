"""Annotators: small callables that draw one thing about the people of a frame.

Each has the shape `annotate(frame_bgr, people) -> frame_bgr` (also callable directly), draws
in place on the frame it is given and returns it, and takes its options in the constructor;
compose them by listing them (`annotate_all(frame, people, [SkeletonAnnotator(), BoxAnnotator()])`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import cv2
import numpy as np

from pose.base import People
from pose.coco import LIMB_COLORS_BGR, LIMBS, N_JOINTS

# Each joint takes the colour of the drawn limb that ends at it (the neck, which ends none,
# that of the first limb), so joints and limbs read as OpenPose's demo renders them.
JOINT_COLORS_BGR: tuple[tuple[int, int, int], ...] = tuple(
    next((LIMB_COLORS_BGR[i] for i, (_, b) in enumerate(LIMBS) if b == j), LIMB_COLORS_BGR[0]) for j in range(N_JOINTS)
)

# Distinct, bright colours for track ids (BGR); an id keeps its colour for the whole stream.
TRACK_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (75, 25, 230), (75, 180, 60), (25, 225, 255), (200, 130, 0), (48, 130, 245), (180, 30, 145),
    (240, 240, 70), (230, 50, 240), (60, 245, 210), (212, 190, 250), (128, 128, 0), (255, 190, 220),
)


def track_color(track: int) -> tuple[int, int, int]:
    """The colour of a track id (grey for people without one)."""
    return (160, 160, 160) if track < 0 else TRACK_COLORS_BGR[int(track) % len(TRACK_COLORS_BGR)]


class Annotator(Protocol):
    def annotate(self, frame_bgr: np.ndarray, people: People) -> np.ndarray: ...


class _Base:
    def __call__(self, frame_bgr: np.ndarray, people: People) -> np.ndarray:
        return self.annotate(frame_bgr, people)

    def annotate(self, frame_bgr: np.ndarray, people: People) -> np.ndarray:
        raise NotImplementedError


class SkeletonAnnotator(_Base):
    """COCO-18 limbs in OpenPose colours and joints as dots; joints under min_confidence are left out."""

    def __init__(self, thickness: int = 2, joint_radius: int = 3, min_confidence: float = 0.0) -> None:
        self.thickness, self.joint_radius, self.min_confidence = int(thickness), int(joint_radius), float(min_confidence)

    def annotate(self, frame_bgr: np.ndarray, people: People) -> np.ndarray:
        kp = people.keypoints
        if not len(kp):
            return frame_bgr
        shown = (kp[..., 2] > self.min_confidence) & np.isfinite(kp[..., :2]).all(axis=-1)
        xy = np.rint(np.where(shown[..., None], kp[..., :2], 0)).astype(np.int32)
        for limb, (a, b) in enumerate(LIMBS):
            both = shown[:, a] & shown[:, b]
            if both.any():
                segments = np.stack([xy[both, a], xy[both, b]], axis=1)
                cv2.polylines(frame_bgr, segments, False, LIMB_COLORS_BGR[limb], self.thickness, cv2.LINE_AA)
        if self.joint_radius > 0:
            for p, j in zip(*np.nonzero(shown)):
                cv2.circle(frame_bgr, (int(xy[p, j, 0]), int(xy[p, j, 1])), self.joint_radius, JOINT_COLORS_BGR[j], -1, cv2.LINE_AA)
        return frame_bgr


def _text(frame_bgr: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], scale: float) -> None:
    """Text on a filled box of the track's colour, kept inside the frame."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    x = int(np.clip(x, 0, max(0, frame_bgr.shape[1] - w - 2)))
    y = int(np.clip(y, h + base + 2, frame_bgr.shape[0]))
    cv2.rectangle(frame_bgr, (x, y - h - base - 2), (x + w + 2, y), color, -1)
    cv2.putText(frame_bgr, text, (x + 1, y - base - 1), font, scale, (0, 0, 0), 1, cv2.LINE_AA)


class BoxAnnotator(_Base):
    """Each person's box in their track's colour, with '#id' on its top-left corner."""

    def __init__(self, thickness: int = 2, show_id: bool = True, text_scale: float = 0.5) -> None:
        self.thickness, self.show_id, self.text_scale = int(thickness), bool(show_id), float(text_scale)

    def annotate(self, frame_bgr: np.ndarray, people: People) -> np.ndarray:
        for box, track in zip(people.boxes, people.tracks):
            if not np.any(box):
                continue
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            color = track_color(int(track))
            cv2.rectangle(frame_bgr, (x0, y0), (x1, y1), color, self.thickness)
            if self.show_id and track >= 0:
                _text(frame_bgr, f"#{int(track)}", x0, y0, color, self.text_scale)
        return frame_bgr


class LabelAnnotator(_Base):
    """A text per track under its box (e.g. the current action label).

    `labels` maps track id to text, or is a callable track -> text or None; a mapping given
    here can be updated by its owner between frames (the viewer keeps the latest labels in it).
    """

    def __init__(
        self, labels: Mapping[int, str] | Callable[[int], str | None], text_scale: float = 0.6
    ) -> None:
        self.labels, self.text_scale = labels, float(text_scale)

    def _label(self, track: int) -> str | None:
        if callable(self.labels):
            return self.labels(track)
        return self.labels.get(track)

    def annotate(self, frame_bgr: np.ndarray, people: People) -> np.ndarray:
        for box, track in zip(people.boxes, people.tracks):
            text = self._label(int(track))
            if text and np.any(box):
                _text(frame_bgr, text, int(box[0]), int(round(box[3])) + 24, track_color(int(track)), self.text_scale)
        return frame_bgr


def annotate_all(frame_bgr: np.ndarray, people: People, annotators: Iterable[Annotator]) -> np.ndarray:
    """Applies the annotators in order (later ones draw on top)."""
    for annotator in annotators:
        frame_bgr = annotator.annotate(frame_bgr, people)
    return frame_bgr
