"""Writing annotated video: which containers the engine writes and the OpenCV codec for each.

`engine pose --out` and the sink's `--record` both write through here, so they accept the
same file names and produce the same files.
"""
from __future__ import annotations

from pathlib import Path

import cv2

# Codecs every OpenCV build can write without extra libraries: mp4v in .mp4, Motion JPEG in .avi.
VIDEO_CODECS: dict[str, str] = {".mp4": "mp4v", ".avi": "MJPG"}


def open_video_writer(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter | None:
    """An open writer for `path` (its suffix picks the codec, one of VIDEO_CODECS), or None if OpenCV cannot write there."""
    fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[Path(path).suffix.lower()])
    writer = cv2.VideoWriter(str(path), fourcc, float(fps), (int(size[0]), int(size[1])))
    if writer.isOpened():
        return writer
    writer.release()
    return None
