"""The one small interface every pose backend implements: a frame in, COCO-18 people out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pose.coco import N_JOINTS


class PoseError(Exception):
    """A backend cannot run (missing weights, bad option); the message says how to fix it."""


@dataclass(frozen=True)
class PoseOptions:
    """Options shared by all backends; each backend reads the ones it understands."""

    backend: str = "blazepose"
    max_people: int = 1
    threads: int = 1
    weights_dir: str | None = None
    input_height: int = 368
    min_confidence: float = 0.5
    smoothing: bool = True
    replay_file: str | None = None


@dataclass
class People:
    """Everyone found in one frame.

    keypoints: float32[P, 18, 3], x and y in pixels of the frame, confidence 0-1 (0 = missing).
    boxes: float32[P, 4] as x0, y0, x1, y1 in pixels.
    tracks: int32[P], -1 where no id has been given yet (the renderer's tracker gives them).
    """

    keypoints: np.ndarray
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    tracks: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, N_JOINTS, 3)
        n = len(self.keypoints)
        if len(self.boxes) != n:
            self.boxes = boxes_from_keypoints(self.keypoints)
        if len(self.tracks) != n:
            self.tracks = np.full((n,), -1, np.int32)

    @staticmethod
    def empty() -> "People":
        return People(np.zeros((0, N_JOINTS, 3), np.float32))

    def __len__(self) -> int:
        return len(self.keypoints)


def boxes_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """float32[P, 4] boxes around each person's visible joints (zeros for nobody visible)."""
    kp = np.asarray(keypoints, np.float32).reshape(-1, N_JOINTS, 3)
    visible = kp[..., 2] > 0
    big = np.float32(1e9)
    x = np.where(visible, kp[..., 0], big)
    y = np.where(visible, kp[..., 1], big)
    x0, y0 = x.min(axis=1), y.min(axis=1)
    x = np.where(visible, kp[..., 0], -big)
    y = np.where(visible, kp[..., 1], -big)
    x1, y1 = x.max(axis=1), y.max(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1)
    boxes[~visible.any(axis=1)] = 0
    return boxes.astype(np.float32)


class PoseBackend(Protocol):
    """Backends keep per-stream state (ROI tracking, smoothing) keyed by the stream id."""

    name: str

    def estimate(
        self, frame_bgr: np.ndarray, stream: str = "", seq: int = -1, given: np.ndarray | None = None
    ) -> People:
        """People in a BGR uint8[H, W, 3] frame.

        `stream`/`seq` identify the frame (per-stream state, replay files); `given` is
        float32[P, 18, 3] keypoints the source carried with the frame, if any.
        """
        ...

    def reset(self, stream: str | None = None) -> None:
        """Forget the per-stream state (one stream, or all): the next frame is estimated afresh."""
        ...

    def close(self) -> None: ...
