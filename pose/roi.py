"""Rotated square regions of interest: where a person is, how big, which way is up.

BlazePose crops each person upright before the landmark model sees them. Two points
place the crop: the hip centre and a point above the head (the detector's keypoints
0 and 1, or the landmark model's auxiliary points 33 and 34 when tracking). As in
MediaPipe (AlignmentPointsRectsCalculator, then RectTransformationCalculator with
scale 1.25 and square_long), the side is 2 x their distance x 1.25, centred on the hips,
rotated so that hips -> head points up in the crop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = 1.25


@dataclass(frozen=True)
class Roi:
    """Centre and side in frame pixels; angle in radians, 0 = upright, positive = head leaning right."""

    cx: float
    cy: float
    size: float
    angle: float


def roi_from_points(center_xy: np.ndarray, top_xy: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """The crop around a person from the hip centre and the point above the head (pixels)."""
    dx, dy = float(top_xy[0] - center_xy[0]), float(top_xy[1] - center_xy[1])
    size = 2.0 * math.hypot(dx, dy) * scale
    return Roi(float(center_xy[0]), float(center_xy[1]), size, math.atan2(dx, -dy))


def crop_to_frame(roi: Roi, crop_size: int) -> np.ndarray:
    """float64[2, 3] affine map from crop coordinates (0..crop_size, continuous) to frame pixels."""
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    k = roi.size / crop_size
    right = np.array([c, s]) * k  # the crop's x axis in the frame
    down = np.array([-s, c]) * k  # the crop's y axis in the frame
    origin = np.array([roi.cx, roi.cy]) - (right + down) * crop_size / 2
    return np.stack([right, down, origin], axis=1)


def warp_crop(frame: np.ndarray, roi: Roi, crop_size: int) -> np.ndarray:
    """The upright crop_size x crop_size image of the region (edges replicated outside the frame)."""
    m = crop_to_frame(roi, crop_size)
    # OpenCV samples pixel centres: crop pixel j sits at continuous j + 0.5, frame pixel x at x + 0.5.
    m_px = m.copy()
    m_px[:, 2] = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2] - 0.5
    return cv2.warpAffine(frame, m_px, (crop_size, crop_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def to_frame(points_crop: np.ndarray, roi: Roi, crop_size: int) -> np.ndarray:
    """float32[N, 2] crop coordinates -> frame pixels."""
    m = crop_to_frame(roi, crop_size)
    return (points_crop[:, :2] @ m[:, :2].T + m[:, 2]).astype(np.float32)
