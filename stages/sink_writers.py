"""The sink's files: labels JSONL, annotated video, keypoints file.

Each output reports a failure (unwritable path, disk full) once, through `on_error`, as one
line naming the file and the fix, then turns itself off: the run goes on without that file.
Nothing here prints; the sink stage decides where those lines go.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from engine.framework.media import VIDEO_CODECS, open_video_writer
from engine.viewer.board import LabelBoard
from engine.viewer.overlay import FrameOverlay
from pose.base import People, PoseError
from pose.keypoints_file import KeypointsWriter

ErrorSink = Callable[[str], None]
# mp4 writes its index at the end: stop while there is room for it, so the file stays playable.
MIN_FREE_BYTES = 64 * 1024 * 1024
FREE_CHECK_PERIOD_S = 1.0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def check_writable(path: Path) -> None:
    """Raise OSError now if a file cannot be created next to `path` (rather than after a long run)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    os.close(fd)
    os.unlink(tmp)


class _Output:
    what = "file"
    flag = ""

    def __init__(self, path: str | os.PathLike[str], on_error: ErrorSink) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self.failed = False

    def _fail(self, exc: BaseException, kept: str = "") -> None:
        self.failed = True
        self.on_error(f"{self.what} {self.path}: {_reason(exc)}; choose a writable path with {self.flag} "
                      f"(the run goes on without this file{kept})")


class LabelsFile(_Output):
    """Every label, one JSON object per line with the topic's fields, flushed per line."""

    what, flag = "labels file", "--labels-out"

    def __init__(self, path: str | os.PathLike[str], on_error: ErrorSink) -> None:
        super().__init__(path, on_error)
        self.lines = 0
        self._file = None
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            self._fail(exc)

    def write(self, label: dict) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(label, separators=(",", ":")) + "\n")
            self._file.flush()  # a crash leaves complete lines
            self.lines += 1
        except OSError as exc:
            self._close_quietly()
            self._fail(exc, ", complete lines so far are kept")

    def _close_quietly(self) -> None:
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            pass  # the bytes that did not fit are lost either way; the lines before them are on disk

    def close(self) -> None:
        if self._file is not None:
            self._close_quietly()


class KeypointsOutput(_Output):
    """Per-frame people in the keypoints file format the replay backend reads (pose.keypoints_file)."""

    what, flag = "keypoints file", "--keypoints-out"

    def __init__(self, path: str | os.PathLike[str], on_error: ErrorSink) -> None:
        super().__init__(path, on_error)
        self.frames = 0
        self._writer: KeypointsWriter | None = None
        try:
            check_writable(self.path)  # an .npz is written at the end: find out now
            self._writer = KeypointsWriter(self.path)
        except PoseError as exc:
            self.failed = True
            on_error(f"{exc} (the run goes on without this file)")
        except OSError as exc:
            self._fail(exc)

    def write(self, stream: str, seq: int, people: People) -> None:
        if self._writer is None:
            return
        try:
            self._writer.write(stream, seq, people)
            self.frames += 1
        except OSError as exc:
            self._writer = None
            self._fail(exc, ", complete lines so far are kept")

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except OSError as exc:
            self._fail(exc)


class VideoRecorder(_Output):
    """The annotated video, at the source's frame rate, drawn a moment late so labels line up.

    Frames wait (at most `delay_frames` of them, `delay_s` long) until the classifier has
    labelled them, then each is drawn with the labels whose window ended at or before it.
    """

    what, flag = "video file", "--record"

    def __init__(self, path: str | os.PathLike[str], on_error: ErrorSink, board: LabelBoard,
                 overlay: FrameOverlay | None = None, delay_frames: int = 30, delay_s: float = 0.5,
                 min_free_bytes: int = MIN_FREE_BYTES) -> None:
        super().__init__(path, on_error)
        self.board, self.overlay = board, overlay or FrameOverlay()
        self.delay_frames, self.delay_s, self.min_free_bytes = delay_frames, delay_s, min_free_bytes
        self.frames = 0
        self._pending: deque[tuple[float, str, int, People, np.ndarray]] = deque()
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._next_free_check = 0.0
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            self.failed = True
            on_error(f"video file {self.path}: unknown format {suffix or '(none)'!r}; name it *.mp4 or *.avi "
                     f"(the run goes on without this file)")
            return
        try:
            check_writable(self.path)
        except OSError as exc:
            self._fail(exc)

    def add(self, stream: str, seq: int, fps: float, people: People, frame_bgr: np.ndarray, now_s: float) -> None:
        """Queue one frame (`frame_bgr` is copied when drawn); writes the frames whose labels are in."""
        if self.failed:
            return
        if self._writer is None:
            self._open(frame_bgr.shape[1], frame_bgr.shape[0], fps)
            if self.failed:
                return
            self._next_free_check = now_s + FREE_CHECK_PERIOD_S
        self._pending.append((now_s, stream, seq, people, frame_bgr))
        self.flush(now_s)

    def flush(self, now_s: float, everything: bool = False) -> None:
        while self._pending and not self.failed:
            t, stream, seq, _, _ = self._pending[0]
            ready = everything or len(self._pending) > self.delay_frames or now_s - t >= self.delay_s \
                or self.board.newest_seq(stream) >= seq
            if not ready:
                break
            self._write(*self._pending.popleft()[1:])
        if now_s >= self._next_free_check and self._writer is not None:
            self._next_free_check = now_s + FREE_CHECK_PERIOD_S
            self._check_free_space()

    def _open(self, width: int, height: int, fps: float) -> None:
        fps = fps if fps and np.isfinite(fps) and fps > 0 else 30.0
        writer = open_video_writer(self.path, fps, (width, height))
        if writer is None:
            self._fail(OSError(errno.EIO, "OpenCV cannot open a video writer there"))
            return
        self._writer, self._size = writer, (int(width), int(height))

    def _write(self, stream: str, seq: int, people: People, frame_bgr: np.ndarray) -> None:
        image = self.overlay.draw(frame_bgr, people, self.board.at(stream, seq))
        if (image.shape[1], image.shape[0]) != self._size:  # another stream of another size: one video, one size
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def _check_free_space(self) -> None:
        try:
            free = shutil.disk_usage(self.path.parent if str(self.path.parent) else ".").free
        except OSError:
            return
        if free < self.min_free_bytes:
            self._release()
            self.failed = True
            self._pending.clear()
            self.on_error(f"video file {self.path}: stopped recording with {free / 2**20:.0f} MiB left on its disk, "
                          f"so that the video so far stays playable; free space or record elsewhere with --record")

    def _release(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()  # writes the mp4 index: without it the file does not play

    def close(self, now_s: float | None = None) -> None:
        """Write what is pending and finish the file (on SIGTERM too)."""
        if not self.failed:
            self.flush(time.monotonic() if now_s is None else now_s, everything=True)
        self._release()


class SeqGaps:
    """Frames a subscriber never saw, per stream, from the gaps in their sequence numbers."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}
        self.seen = 0
        self.missed = 0

    def see(self, stream: str, seq: int) -> None:
        expected = self.next.get(stream, 0)
        if seq > expected:
            self.missed += seq - expected
        self.next[stream] = max(expected, seq + 1)
        self.seen += 1
