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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.framework.media import VIDEO_CODECS, open_video_writer
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


class LabelHistory:
    """Labels per (stream, track), kept until no frame still to be drawn can need them.

    Labels arrive in frame order per stream (one classify process, one PUB socket), so a
    track's label list is ascending in `seq_to`: what it says about frame `seq` is final once
    the track, or the stream, has a label for a later frame, or classify says it passed `seq`.
    """

    def __init__(self, max_per_track: int = 4096) -> None:
        self.max_per_track = max_per_track  # a bound for labels of frames that never reach the sink
        self._tracks: dict[str, dict[int, deque[tuple[int, dict]]]] = {}
        self._newest: dict[str, int] = {}
        self._passed: dict[str, float] = {}  # classify progress per stream (inf once it ended the stream)

    def add(self, label: dict) -> None:
        stream, track, seq_to = label["stream"], int(label["track"]), int(label["seq_to"])
        labels = self._tracks.setdefault(stream, {}).setdefault(track, deque(maxlen=self.max_per_track))
        labels.append((seq_to, label))
        self._newest[stream] = max(self._newest.get(stream, -1), seq_to)

    def passed(self, stream: str, seq: int | None) -> None:
        """Classify has published every label of `stream` up to frame `seq` (None: all of them)."""
        mark = float("inf") if seq is None else float(seq)
        self._passed[stream] = max(self._passed.get(stream, -1.0), mark)

    def settled(self, stream: str, seq: int, tracks: Iterable[int]) -> bool:
        """True when no label still to come can change what frame `seq` shows for `tracks`."""
        if self._passed.get(stream, -1.0) >= seq or self._newest.get(stream, -1) > seq:
            return True
        known = self._tracks.get(stream, {})
        return all(t < 0 or (t in known and known[t] and known[t][-1][0] >= seq) for t in tracks)

    def at(self, stream: str, seq: int) -> dict[int, dict]:
        """track -> its newest label whose window ended at or before frame `seq`."""
        out = {}
        for track, labels in self._tracks.get(stream, {}).items():
            for seq_to, label in reversed(labels):
                if seq_to <= seq:
                    out[track] = label
                    break
        return out

    def forget_before(self, stream: str, seq: int) -> None:
        """Drop labels no frame from `seq` on can show (each track keeps its newest one at or before `seq`)."""
        for labels in self._tracks.get(stream, {}).values():
            while len(labels) > 1 and labels[1][0] <= seq:
                labels.popleft()


@dataclass
class _Pending:
    t_s: float
    stream: str
    seq: int
    people: People
    frame_bgr: np.ndarray


class VideoRecorder(_Output):
    """The annotated video, at the source's frame rate: skeletons, boxes, and each person's action label.

    Labels come after the frames they describe (the classifier is downstream of the frames'
    publisher), so a frame waits here until what it shows is settled: classify reported it has
    passed the frame, or a label of a later frame came (labels arrive in frame order), or the
    frame has nobody tracked in it. It is then drawn with, per track, the newest label whose
    window ended at or before it: a recorded source gives the same video every run. More than
    `delay_frames` waiting frames are drawn with what is known then (the sink of a lossless
    source stops taking frames while `room()` is 0, which slows the source instead). Until
    classify has sent progress, a frame that waited `delay_s` is drawn too: without progress a
    track's last frames would otherwise wait for a label that never comes.
    """

    what, flag = "video file", "--record"

    def __init__(self, path: str | os.PathLike[str], on_error: ErrorSink, overlay: FrameOverlay | None = None,
                 delay_frames: int = 30, delay_s: float = 0.5, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        super().__init__(path, on_error)
        self.labels = LabelHistory()
        self.overlay = overlay or FrameOverlay()
        self.delay_frames, self.delay_s, self.min_free_bytes = delay_frames, delay_s, min_free_bytes
        self.frames = 0
        self._pending: deque[_Pending] = deque()
        self.progress_seen = False  # classify reports how far it is: frames wait for it, not for a time
        self._ended: set[str] = set()
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

    def label(self, label: dict) -> None:
        """A label from the labels PUB (in the order published)."""
        if not self.failed:
            self.labels.add(label)

    def passed(self, stream: str, seq: int | None) -> None:
        """Classify's progress on `stream` (None: it has ended the stream); from now on no frame waits by the clock."""
        self.labels.passed(stream, seq)
        self.progress_seen = True

    def room(self) -> int:
        """Frames `add` takes before the oldest would be drawn for lack of space (0: stop taking)."""
        return max(0, self.delay_frames - len(self._pending))

    def add(self, stream: str, seq: int, fps: float, people: People, frame_bgr: np.ndarray, now_s: float) -> None:
        """Queue one frame (`frame_bgr` is copied when drawn); writes the frames whose labels are settled."""
        if self.failed:
            return
        if self._writer is None:
            self._open(frame_bgr.shape[1], frame_bgr.shape[0], fps)
            if self.failed:
                return
            self._next_free_check = now_s + FREE_CHECK_PERIOD_S
        self._pending.append(_Pending(now_s, stream, seq, people, frame_bgr))
        self.flush(now_s)

    def end(self, stream: str) -> None:
        """Every frame of `stream` has been added (its end-of-stream marker came)."""
        self._ended.add(stream)

    def complete(self, stream: str) -> bool:
        """True once `stream` ended and each of its frames is written (or the recorder gave up)."""
        return stream in self._ended and (self.failed or all(p.stream != stream for p in self._pending))

    def flush(self, now_s: float, everything: bool = False) -> None:
        if now_s >= self._next_free_check and self._writer is not None:  # before writing more
            self._next_free_check = now_s + FREE_CHECK_PERIOD_S
            self._check_free_space()
        while self._pending and not self.failed:
            head = self._pending[0]
            waited_enough = not self.progress_seen and now_s - head.t_s >= self.delay_s
            ready = everything or len(self._pending) > self.delay_frames or waited_enough \
                or self.labels.settled(head.stream, head.seq, head.people.tracks.tolist())
            if not ready:
                break
            self._pending.popleft()
            self._write(head)

    def _open(self, width: int, height: int, fps: float) -> None:
        fps = fps if fps and np.isfinite(fps) and fps > 0 else 30.0
        writer = open_video_writer(self.path, fps, (width, height))
        if writer is None:
            self._fail(OSError(errno.EIO, "OpenCV cannot open a video writer there"))
            return
        self._writer, self._size = writer, (int(width), int(height))

    def _write(self, frame: _Pending) -> None:
        image = self.overlay.draw(frame.frame_bgr, frame.people, self.labels.at(frame.stream, frame.seq))
        self.labels.forget_before(frame.stream, frame.seq)
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
