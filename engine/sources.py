"""Source strings: parsed in one place, opened as readers of frames.

Every command (`run`, `pose`, `prepare`, benchmarks) goes through `parse_source`, so a new
scheme is added here once and every error message lists the accepted forms.
"""
from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

# FFmpeg's own log lines would precede our one-line errors; bad media is reported by us.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np

from engine.errors import SourceError

ACCEPTED_FORMS = (
    "camera:N[?width=&height=&fps=], a video file path, an image folder or glob, "
    "rtsp://... or http(s)://..., mhad:SXX[/AYY[/RZZ]][?kinect=2], synthetic:[AYY][?loops=&subjects=&seed=&fps=&size=]"
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
MHAD_FPS = 30.0
MHAD_SUBJECTS, MHAD_ACTIONS, MHAD_REPETITIONS = 12, 11, 5


@dataclass(frozen=True)
class SourceSpec:
    """What a source string names; `live` sources drop frames, recorded ones are lossless."""

    kind: str  # camera | stream | video | images | mhad | synthetic
    text: str
    live: bool
    location: str = ""
    params: dict = field(default_factory=dict)


@dataclass
class Frame:
    """One decoded frame; `keypoints` (float32[P, 18, 3]) only where the source carries ground truth."""

    stream: str
    seq: int
    image: np.ndarray
    t_capture_ns: int
    keypoints: np.ndarray | None = None
    truth: str | None = None


def natural_key(text: str) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _query(text: str) -> tuple[str, dict[str, str]]:
    base, _, query = text.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True))


def _int_param(params: dict, key: str, source: str, default: int, lo: int = 0, hi: int = 1 << 30) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SourceError(f"source {source!r}: {key}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SourceError(f"source {source!r}: {key}={value} is out of range {lo}..{hi}")
    return value


def _check_keys(params: dict, allowed: set[str], source: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise SourceError(f"source {source!r}: unknown option {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}")


def parse_source(text: str, mhad_root: str | None = None) -> SourceSpec:
    """Turn a source string into a SourceSpec; raises SourceError listing the accepted forms."""
    text = text.strip()
    if not text:
        raise SourceError(f"empty source: use one of {ACCEPTED_FORMS}")
    lowered = text.lower()
    if lowered.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return SourceSpec("stream", text, live=True, location=text)
    scheme, sep, rest = text.partition(":")
    if sep and scheme == "camera":
        base, params = _query(rest)
        _check_keys(params, {"width", "height", "fps"}, text)
        if not base.isdigit():
            raise SourceError(f"source {text!r}: camera index must be a number, e.g. camera:0")
        for key in ("width", "height", "fps"):
            _int_param(params, key, text, 0, 1, 10000)
        return SourceSpec("camera", text, live=True, location=base, params=params)
    if sep and scheme == "mhad":
        return _parse_mhad(text, rest, mhad_root)
    if sep and scheme == "synthetic":
        return _parse_synthetic(text, rest)
    if sep and len(scheme) > 1 and "/" not in scheme and not os.path.exists(text):
        raise SourceError(f"unknown source scheme {scheme + ':'!r}: use one of {ACCEPTED_FORMS}")
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("images", text, live=False, location=str(path))
    if any(ch in text for ch in "*?["):
        return SourceSpec("images", text, live=False, location=str(path))
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return SourceSpec("images", text, live=False, location=str(path))
        return SourceSpec("video", text, live=False, location=str(path))
    if path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        raise SourceError(f"file {text} not found: check the path")
    raise SourceError(f"source {text!r} is neither an existing file or folder nor a known scheme: use one of {ACCEPTED_FORMS}")


def _parse_mhad(text: str, rest: str, mhad_root: str | None) -> SourceSpec:
    base, params = _query(rest)
    _check_keys(params, {"kinect"}, text)
    kinect = _int_param(params, "kinect", text, 1, 1, 2)
    match = re.fullmatch(r"S(\d{2})(?:/A(\d{2})(?:/R(\d{2}))?)?", base.strip("/"))
    if not match:
        raise SourceError(f"source {text!r}: write mhad:S08/A03/R01, mhad:S08/A03 or mhad:S08")
    subject, action, rep = (int(g) if g else None for g in match.groups())
    if not 1 <= subject <= MHAD_SUBJECTS or (action and not 1 <= action <= MHAD_ACTIONS) or (rep and not 1 <= rep <= MHAD_REPETITIONS):
        raise SourceError(f"source {text!r}: subjects are S01-S12, actions A01-A11, repetitions R01-R05")
    root = mhad_root or os.environ.get("MHAD_ROOT")
    if not root:
        raise SourceError("MHAD root not set: pass --mhad-root DIR or set MHAD_ROOT to the folder that holds Kinect/")
    kin_dir = Path(root).expanduser() / "Kinect" / f"Kin0{kinect}"
    if not kin_dir.is_dir():
        raise SourceError(f"MHAD root {root} has no Kinect/Kin0{kinect} folder: point --mhad-root at the dataset's top folder")
    actions = [action] if action else list(range(1, MHAD_ACTIONS + 1))
    reps = [rep] if rep else list(range(1, MHAD_REPETITIONS + 1))
    sequences = [(subject, a, r) for a in actions for r in reps]
    if action and rep:
        seq_dir = kin_dir / f"S{subject:02d}" / f"A{action:02d}" / f"R{rep:02d}"
        if not seq_dir.is_dir():
            hint = " (S04/A08/R05 is missing from the real dataset)" if (subject, action, rep) == (4, 8, 5) else ""
            raise SourceError(f"MHAD sequence {base} not found: {seq_dir} does not exist{hint}")
    return SourceSpec("mhad", text, live=False, location=str(kin_dir), params={"kinect": kinect, "sequences": sequences})


def _parse_synthetic(text: str, rest: str) -> SourceSpec:
    base, params = _query(rest)
    _check_keys(params, {"loops", "subjects", "seed", "fps", "size"}, text)
    from engine.synthetic import ACTIONS  # the motion model is the one the trainer uses

    if base:
        match = re.fullmatch(r"A(\d{2})", base)
        if not match or not 1 <= int(match.group(1)) <= len(ACTIONS):
            raise SourceError(f"source {text!r}: synthetic action must be A01-A{len(ACTIONS):02d}")
        actions = [int(match.group(1)) - 1]
    else:
        actions = list(range(len(ACTIONS)))
    subjects_text = params.get("subjects", "8-12")
    sub_match = re.fullmatch(r"(\d+)(?:-(\d+))?", subjects_text)
    if not sub_match:
        raise SourceError(f"source {text!r}: subjects must look like 8-12 or 3")
    lo, hi = int(sub_match.group(1)), int(sub_match.group(2) or sub_match.group(1))
    if not 1 <= lo <= hi <= 99:
        raise SourceError(f"source {text!r}: subjects range {subjects_text} is out of 1..99")
    size_text = params.get("size", "640x480")
    size_match = re.fullmatch(r"(\d+)x(\d+)", size_text)
    if not size_match or not all(64 <= int(v) <= 4096 for v in size_match.groups()):
        raise SourceError(f"source {text!r}: size must look like 640x480 (64..4096 each)")
    resolved = {
        "actions": actions,
        "subjects": list(range(lo, hi + 1)),
        "loops": _int_param(params, "loops", text, 0, 0),
        "seed": _int_param(params, "seed", text, 0, 0),
        "fps": float(_int_param(params, "fps", text, 30, 1, 240)),
        "size": (int(size_match.group(1)), int(size_match.group(2))),
    }
    return SourceSpec("synthetic", text, live=False, location=base, params=resolved)


# --- readers -----------------------------------------------------------------------------


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
        from engine import synthetic

        self._synthetic = synthetic
        p = spec.params
        self.stream = spec.text  # the whole string: two synthetic sources with other seeds are two streams
        self.fps = p["fps"]
        self._size, self._seed = p["size"], p["seed"]
        plan = [(a, s) for s in p["subjects"] for a in p["actions"]]
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
        repetition = 1 + (self._index // len(self._plan)) % MHAD_REPETITIONS
        subject = self._synthetic.make_subject(subject_id, seed=self._seed)
        self._subject, self._action = subject, action
        self._keypoints = self._synthetic.motion(action, subject, repetition, fps=self.fps, size=self._size, seed=self._seed)
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
            truth=self._synthetic.ACTIONS[self._action],
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
            raise SourceError(f"glob {spec.text} matches no images: check the pattern")
    return sorted(paths, key=natural_key)


def open_streams(spec: SourceSpec, fps_hint: float = 30.0) -> Iterator[StreamReader]:
    """The streams a source holds, opened one after another (mhad:S08 holds 55)."""
    if spec.kind == "synthetic":
        yield SyntheticReader(spec)
    elif spec.kind == "images":
        yield ImageListReader(spec.text, _image_paths(spec), fps_hint)
    elif spec.kind == "mhad":
        kin = spec.params["kinect"]
        for subject, action, rep in spec.params["sequences"]:
            seq_dir = Path(spec.location) / f"S{subject:02d}" / f"A{action:02d}" / f"R{rep:02d}"
            name = f"mhad:S{subject:02d}/A{action:02d}/R{rep:02d}"
            if not seq_dir.is_dir():
                continue  # whole-subject replays skip the sequences the dataset lacks
            prefix = f"kin_k0{kin}_s{subject:02d}_a{action:02d}_r{rep:02d}_color_"
            paths = sorted((str(p) for p in seq_dir.glob(prefix + "*.ppm")), key=natural_key)
            if not paths:
                raise SourceError(f"MHAD sequence {seq_dir} holds no {prefix}NNNNN.ppm frames: check the dataset copy")
            yield ImageListReader(name, paths, MHAD_FPS)
    elif spec.kind == "video":
        unreadable = f"video {spec.location} cannot be opened: not a video OpenCV can decode (try converting it to mp4)"
        capture = _open_capture(spec.location, unreadable)
        ok, _ = capture.read()
        capture.release()
        if not ok:
            raise SourceError(f"video {spec.location} has no decodable frame: the file is damaged or empty")
        # Reopened rather than rewound: seeking back to frame 0 is unreliable for some containers.
        capture = _open_capture(spec.location, unreadable)
        fps = capture.get(cv2.CAP_PROP_FPS) or fps_hint
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
