"""Readers of frames for every kind of source a `SourceSpec` names."""
from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# FFmpeg's own log lines would precede our one-line errors; bad media is reported by us.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np

from engine.errors import SourceError
from engine.sources import mhad
from engine.sources.spec import IMAGE_SUFFIXES, SourceSpec, natural_key


@dataclass
class Frame:
    """One decoded frame; `keypoints` (float32[P, 18, 3]) only where the source carries ground truth."""

    stream: str
    seq: int
    image: np.ndarray
    t_capture_ns: int
    keypoints: np.ndarray | None = None
    truth: str | None = None



class StreamReader:
    """Frames of one stream, in order; `read` returns None at its end."""

    stream: str
    fps: float
    _seq: int = 0

    def read(self) -> Frame | None:
        raise NotImplementedError

    def skip_to(self, seq: int) -> None:
        """Continue from frame `seq` (a restarted capture resuming); readers override this to avoid decoding."""
        while self.position() < seq and self.read() is not None:
            pass

    def position(self) -> int:
        """The seq of the next frame `read` returns."""
        return self._seq

    def close(self) -> None:
        pass


class VideoReader(StreamReader):
    """A file, camera or network stream through OpenCV's decoders."""

    def __init__(self, stream: str, capture: cv2.VideoCapture, fps: float) -> None:
        self.stream, self._capture, self.fps, self._seq = stream, capture, fps, 0

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        frame = Frame(self.stream, self._seq, image, time.time_ns())
        self._seq += 1
        return frame

    def skip_to(self, seq: int) -> None:
        while self._seq < seq and self._capture.grab():  # grab() skips decoding
            self._seq += 1

    def close(self) -> None:
        self._capture.release()


class ImageListReader(StreamReader):
    def __init__(self, stream: str, paths: list[str], fps: float) -> None:
        self.stream, self._paths, self.fps, self._seq = stream, paths, fps, 0

    def skip_to(self, seq: int) -> None:
        self._seq = min(max(self._seq, seq), len(self._paths))

    def read(self) -> Frame | None:
        if self._seq >= len(self._paths):
            return None
        path = self._paths[self._seq]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"image {path} cannot be decoded: remove it or convert it to PNG/JPEG")
        frame = Frame(self.stream, self._seq, image, time.time_ns())
        self._seq += 1
        return frame


class SyntheticReader(StreamReader):
    """People of the built-in motion model performing the shipped model's actions, one after another."""

    def __init__(self, spec: SourceSpec) -> None:
        from engine.sources import synthetic

        self._synthetic = synthetic
        p = spec.params
        self.stream = spec.text  # the whole string: two synthetic sources with other seeds are two streams
        self.fps = p["fps"]
        self._size, self._seed = p["size"], p["seed"]
        plan = [(a, s) for s in p["subjects"] for a in p["actions"]]
        self._script = p.get("script") or []  # [(activity, seconds)]: one scripted scene per subject
        if self._script:
            plan = [(-1, s) for s in p["subjects"]]
        # Interleave subjects so a short run still shows several people and actions.
        order = np.random.default_rng(p["seed"]).permutation(len(plan))
        self._plan = [plan[i] for i in order]
        self._loops = p["loops"]
        self._index, self._seq, self._t = 0, 0, 0
        self._keypoints: np.ndarray | None = None

    def _next_sequence(self) -> bool:
        if self._loops and self._index >= self._loops * len(self._plan):
            return False
        action, subject_id = self._plan[self._index % len(self._plan)]
        repetition = 1 + (self._index // len(self._plan)) % mhad.N_REPETITIONS
        subject = self._synthetic.make_subject(subject_id, seed=self._seed)
        self._subject, self._action = subject, action
        if self._script:  # a loop plays the scene again with the next seed, so loops differ
            self._keypoints, labels = self._synthetic.scripted_motion(
                self._script, subject, fps=self.fps, size=self._size, seed=self._seed + repetition - 1)
            self._truths = [self._synthetic.ACTIVITIES[i] for i in labels]
        else:
            self._keypoints = self._synthetic.motion(action, subject, repetition, fps=self.fps, size=self._size, seed=self._seed)
            self._truths = [self._synthetic.ACTIVITIES[action]] * len(self._keypoints)
        self._background = self._synthetic.background(self._size, seed=self._seed + self._index)
        self._index += 1
        self._t = 0
        return True

    def skip_to(self, seq: int) -> None:
        """Advance through the motion model without drawing a frame."""
        while self._seq < seq:
            if self._keypoints is None or self._t >= len(self._keypoints):
                if not self._next_sequence():
                    return
            step = min(seq - self._seq, len(self._keypoints) - self._t)
            self._seq += step
            self._t += step

    def read(self) -> Frame | None:
        if self._keypoints is None or self._t >= len(self._keypoints):
            if not self._next_sequence():
                return None
        keypoints = self._keypoints[self._t]
        image = self._background.copy()
        self._synthetic.draw_person(image, keypoints, self._subject)
        frame = Frame(
            self.stream, self._seq, image, time.time_ns(), keypoints[None].astype(np.float32),
            truth=self._truths[self._t],
        )
        self._seq += 1
        self._t += 1
        return frame


def _open_capture(target: int | str, what: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        raise SourceError(what)
    return capture


def _image_paths(spec: SourceSpec) -> list[str]:
    location = spec.location
    if os.path.isdir(location):
        paths = [str(p) for p in Path(location).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise SourceError(f"folder {location} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): point --source at a folder of frames")
    elif os.path.isfile(location):
        paths = [location]
    else:
        paths = [p for p in glob.glob(os.path.expanduser(location)) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise SourceError(f"glob {location} matches no images: check the pattern")
    return sorted(paths, key=natural_key)


def open_streams(spec: SourceSpec, fps_hint: float = 30.0) -> Iterator[StreamReader]:
    """The streams a source holds, opened one after another (mhad:S08 holds 55)."""
    if spec.kind == "synthetic":
        yield SyntheticReader(spec)
    elif spec.kind == "images":  # images carry no rate: `?fps=N` on the source, else the hint
        yield ImageListReader(spec.text, _image_paths(spec), spec.params.get("fps", fps_hint))
    elif spec.kind == "mhad":
        kin_dir, kinect = Path(spec.location), spec.params["kinect"]
        for subject, action, rep in spec.params["sequences"]:
            if not mhad.sequence_dir(kin_dir, subject, action, rep).is_dir():
                continue  # whole-subject replays skip the sequences the dataset lacks
            paths = [str(p) for p in mhad.frame_paths(kin_dir, kinect, subject, action, rep)]
            if not paths:
                raise SourceError(f"MHAD sequence {mhad.sequence_dir(kin_dir, subject, action, rep)} holds no "
                                  f"kin_k0{kinect}_..._color_NNNNN.ppm frames: check the dataset copy")
            yield ImageListReader(f"mhad:{mhad.sequence_id(subject, action, rep)}", paths, mhad.FPS)
    elif spec.kind == "video":
        unreadable = f"video {spec.location} cannot be opened: not a video OpenCV can decode (try converting it to mp4)"
        capture = _open_capture(spec.location, unreadable)
        ok, _ = capture.read()
        capture.release()
        if not ok:
            raise SourceError(f"video {spec.location} has no decodable frame: the file is damaged or empty")
        # Reopened rather than rewound: seeking back to frame 0 is unreliable for some containers.
        capture = _open_capture(spec.location, unreadable)
        fps = spec.params.get("fps") or capture.get(cv2.CAP_PROP_FPS) or fps_hint  # `?fps=N` overrides the container
        yield VideoReader(spec.text, capture, fps if 1 <= fps <= 240 else fps_hint)
    elif spec.kind == "camera":
        yield open_camera(spec)
    elif spec.kind == "stream":
        capture = _open_capture(spec.location, f"stream {spec.location} cannot be opened: check the URL and that the server is reachable")
        fps = capture.get(cv2.CAP_PROP_FPS) or fps_hint
        yield VideoReader(spec.text, capture, fps if 1 <= fps <= 240 else fps_hint)
    else:  # pragma: no cover - parse_source never builds another kind
        raise SourceError(f"source kind {spec.kind!r} unknown")


def open_camera(spec: SourceSpec) -> VideoReader:
    index = int(spec.location)
    device = f"/dev/video{index}"
    if os.name == "posix" and not os.path.exists(device):
        raise SourceError(f"camera {index} not found: {device} does not exist (list cameras with `ls /dev/video*`, or run --source synthetic:)")
    capture = _open_capture(index, f"camera {index} cannot be opened: it may be in use by another program")
    for key, prop in (("width", cv2.CAP_PROP_FRAME_WIDTH), ("height", cv2.CAP_PROP_FRAME_HEIGHT), ("fps", cv2.CAP_PROP_FPS)):
        if key in spec.params:
            capture.set(prop, float(spec.params[key]))
    fps = capture.get(cv2.CAP_PROP_FPS)
    return VideoReader(spec.text, capture, fps if 1 <= fps <= 240 else 30.0)


def probe(spec: SourceSpec) -> None:
    """Open the first stream and read one frame, so bad input fails before any stage starts.

    Network streams are not probed: the capture stage reconnects to them with back-off.
    """
    if spec.kind == "stream":
        return
    readers = open_streams(spec)
    try:
        reader = next(readers, None)
        if reader is None:
            raise SourceError(f"source {spec.text} holds no sequence: check the dataset copy")
        try:
            if reader.read() is None:
                raise SourceError(f"source {spec.text} yields no frame: the media is empty or unreadable")
        finally:
            reader.close()
    finally:
        readers.close()
