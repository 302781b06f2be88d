"""The viewer's side of the engine: subscribes to labels and the monitor, keeps the newest picture.

A thread drains both SUB sockets (small buffers: the viewer drops frames, it never holds the
pipeline back), keeps the newest frame of each stream, and at most `max_fps` times a second
draws and JPEG-encodes only the frame of a stream someone is watching. The web server reads
the results (`jpeg`, `state_json`); nothing here knows about HTTP.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import zmq

from engine.framework import transport
from engine.errors import ConfigError
from engine.framework.endpoints import parse_host_port
from engine.framework.schema import LABELS_TOPIC, hello_topic
from engine.framework.security import load_keys
from engine.framework.stage_options import VIEW_MAX_FPS
from engine.framework.stagekit import LABELS_HWM, RollingStats
from engine.viewer.board import LabelBoard, drain_labels
from engine.viewer.overlay import FrameOverlay, people_of
from pose.base import People
from pose.draw import TRACK_COLORS_BGR

POLL_MS = 20
STATE_PERIOD_S = 0.25
STREAM_STICKY_S = 1.0  # the page follows a new stream only when the shown one has been silent this long
PEOPLE_SHOWN_S = 5.0  # without frames to go by, a track without a label for this long leaves the people panel
RATE_WINDOW_S = 3.0


@dataclass(frozen=True)
class ViewerOptions:
    """What a viewer connects to and how it serves; `backend`/`model` are shown until the streams say."""

    labels: str
    monitor: str | None
    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = ""
    model: str = ""
    label_names: tuple[str, ...] = ()  # the model's classes, in order: stable colours from the first label on
    max_fps: float = VIEW_MAX_FPS
    jpeg_quality: int = 80
    horizon_s: float = 60.0
    curve_keys: str | None = None  # CURVE key folder, when the engine's tcp endpoints use CURVE
    # Said once on stderr when nothing at all arrived for `silence_s` (`engine view`: what to check);
    # empty for the view stage, which starts with its engine.
    silence_hint: str = ""
    silence_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"viewer port {self.port} is out of range: use 1-65535")
        if not 0.5 <= self.max_fps <= 60:
            raise ConfigError(f"viewer frame rate {self.max_fps} is out of range: use 0.5-60")
        if not 10 <= self.jpeg_quality <= 100:
            raise ConfigError(f"viewer JPEG quality {self.jpeg_quality} is out of range: use 10-100")


def parse_bind(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'8080', ':8080', 'HOST:8080' or '[::1]:8080' -> (host, port)."""
    return parse_host_port(text, "viewer address", 8080, default_host)


@dataclass
class Shown:
    """The newest frame of one stream, as received."""

    header: dict
    people: People
    frame: np.ndarray | None
    received_s: float
    version: int


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


class SeqRate:
    """Frames per second of a stream from its sequence numbers: right even when the viewer drops frames."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, int]] = deque()

    def add(self, now_s: float, seq: int) -> None:
        self._points.append((now_s, seq))
        while self._points and now_s - self._points[0][0] > self.window_s:
            self._points.popleft()

    def rate(self, now_s: float) -> float:
        if len(self._points) < 2 or now_s - self._points[-1][0] > self.window_s:
            return 0.0
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        return max(0, s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


class RecentLatency:
    """Latency percentiles over the last few seconds only, so the page shows now, not the start-up."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=4096)

    def add(self, now_s: float, latency_ms: float) -> None:
        self._samples.append((now_s, latency_ms))

    def percentiles(self, now_s: float) -> dict[str, float]:
        while self._samples and now_s - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        if not self._samples:
            return {}
        p50, p95 = np.percentile([ms for _, ms in self._samples], [50, 95])
        return {"p50": round(float(p50), 1), "p95": round(float(p95), 1)}


class Feed(threading.Thread):
    """Drains the sockets, keeps the board and the rates, encodes watched frames; `notify` on news."""

    def __init__(self, options: ViewerOptions, notify: Callable[[], None] = lambda: None) -> None:
        super().__init__(name="viewer-feed", daemon=True)
        self.options, self.notify = options, notify
        self.board = LabelBoard(options.horizon_s)
        self.overlay = FrameOverlay()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._shown: dict[str, Shown] = {}
        self._jpegs: dict[str, tuple[int, bytes]] = {}
        self._encoded: dict[str, int] = {}
        self._watchers: Counter[str | None] = Counter()  # None: "whichever stream is live"
        self.auto_stream: str | None = None
        self.backend, self.model = options.backend, options.model
        self.label_names: list[str] = list(options.label_names)
        self.seq_rates: dict[str, SeqRate] = {}
        self.label_stats, self.encode_stats = RollingStats(), RollingStats()
        self.label_latency, self.frame_latency = RecentLatency(), RecentLatency()
        self.malformed = self.frames = self.labels = self.dropped = self.lost = 0
        self._versions = 0
        self.error: str | None = None
        # A page or client that connects before the thread's first pass gets the whole schema, empty.
        self._state = json.dumps(self._build_state(time.monotonic()), separators=(",", ":"))

    # --- for the web server (any thread) ---------------------------------------------------
    def watch(self, stream: str | None, delta: int) -> None:
        with self._lock:
            self._watchers[stream] += delta
            if self._watchers[stream] <= 0:
                del self._watchers[stream]

    def jpeg(self, stream: str | None) -> tuple[int, bytes | None]:
        with self._lock:
            key = stream if stream is not None else self.auto_stream
            return self._jpegs.get(key, (-1, None)) if key is not None else (-1, None)

    def state_json(self) -> str:
        with self._lock:
            return self._state

    def stop(self) -> None:
        self._halt.set()

    # --- the thread --------------------------------------------------------------------------
    def run(self) -> None:
        ctx = zmq.Context.instance()
        labels = ctx.socket(zmq.SUB)
        labels.setsockopt(zmq.RCVHWM, LABELS_HWM)  # all of them make the timeline
        labels.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
        labels.setsockopt(zmq.SUBSCRIBE, hello_topic("view"))  # classify waits for it (schema.HELLO_PREFIX)
        labels.setsockopt(zmq.LINGER, 0)
        monitor = None
        try:
            keys = load_keys(self.options.curve_keys) if self.options.curve_keys else None
            transport.connect(labels, self.options.labels, "viewer labels", keys)
            poller = zmq.Poller()
            poller.register(labels, zmq.POLLIN)
            if self.options.monitor:
                monitor = ctx.socket(zmq.SUB)
                # A tiny buffer: while this thread is busy the publisher drops frames for us, never
                # queueing stale ones or waiting; only the newest of each batch is kept anyway.
                monitor.setsockopt(zmq.RCVHWM, 4)
                monitor.setsockopt(zmq.SUBSCRIBE, b"")
                monitor.setsockopt(zmq.LINGER, 0)
                transport.connect(monitor, self.options.monitor, "viewer monitor", keys)
                poller.register(monitor, zmq.POLLIN)
            next_encode = next_state = 0.0
            hint_at = time.monotonic() + self.options.silence_s if self.options.silence_hint else None
            while not self._halt.is_set():
                events = dict(poller.poll(POLL_MS))
                now = time.monotonic()
                if hint_at is not None and now >= hint_at:
                    hint_at = None
                    if not (self.labels or self.frames or self.malformed):
                        print(self.options.silence_hint, file=sys.stderr, flush=True)
                if labels in events:
                    self._take_labels(labels, now)
                if monitor is not None and monitor in events:
                    self._take_frames(monitor, now)
                if now >= next_encode:
                    next_encode = now + 1.0 / self.options.max_fps
                    if self._encode_watched(now):
                        self.notify()
                if now >= next_state:
                    next_state = now + STATE_PERIOD_S
                    state = json.dumps(self._build_state(now), separators=(",", ":"))
                    with self._lock:
                        self._state = state
                    self.notify()
        except Exception as exc:  # shown on the page and by the stage; the server keeps serving
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            labels.close(linger=0)
            if monitor is not None:
                monitor.close(linger=0)

    def _take_labels(self, sock: zmq.Socket, now: float) -> None:
        for label in drain_labels(sock):
            if label is None:
                self.malformed += 1
                continue
            self.labels += 1
            self.board.update(label, now)
            now_ns = time.time_ns()
            self.label_stats.add(now_ns)
            self.label_latency.add(now, (label["t_publish_ns"] - label["t_capture_ns"]) / 1e6)
            if label.get("model"):
                self.model = str(label["model"])
            for name, _ in label.get("topk") or []:
                if isinstance(name, str) and name not in self.label_names and len(self.label_names) < 256:
                    self.label_names.append(name)

    def _take_frames(self, sock: zmq.Socket, now: float) -> None:
        newest: dict[str, transport.Message] = {}
        for _ in range(256):  # bounded: a flood must not starve the labels
            try:
                msg = transport.recv(sock, zmq.NOBLOCK)
            except zmq.Again:
                break
            except transport.MalformedMessage:
                self.malformed += 1
                continue
            if msg.header.get("eos"):
                continue
            self.frames += 1
            self.seq_rates.setdefault(msg.stream, SeqRate()).add(now, msg.seq)
            self.frame_latency.add(now, (time.time_ns() - msg.header["t_capture_ns"]) / 1e6)
            newest[msg.stream] = msg
        for stream, msg in newest.items():
            h = msg.header
            if isinstance(h.get("dropped"), int):
                self.dropped = h["dropped"]
            if isinstance(h.get("lost"), int):
                self.lost = h["lost"]
            if isinstance(h.get("backend"), str):
                self.backend = h["backend"]
            frame = msg.arrays.get("frame")
            if frame is not None and (frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8):
                frame = None
            tracks = h.get("tracks") if isinstance(h.get("tracks"), list) else []
            self._versions += 1
            shown = Shown(h, people_of(msg.arrays, tracks), frame, now, self._versions)
            with self._lock:
                self._shown[stream] = shown
                current = self._shown.get(self.auto_stream) if self.auto_stream else None
                if current is None or now - current.received_s > STREAM_STICKY_S:
                    self.auto_stream = stream

    def _encode_watched(self, now: float) -> bool:
        with self._lock:
            wanted = {self.auto_stream if s is None else s for s in self._watchers}
            todo = [(s, self._shown[s]) for s in wanted if s in self._shown]
        encoded = False
        for stream, shown in todo:
            if shown.frame is None or self._encoded.get(stream) == shown.version:
                continue
            image = self.overlay.draw(shown.frame, shown.people, self.board.latest(stream))
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality])
            if not ok:
                continue
            self._encoded[stream] = shown.version
            self.encode_stats.add(time.time_ns())
            with self._lock:
                self._jpegs[stream] = (shown.version, data.tobytes())
            encoded = True
        return encoded

    def _people(self, shown: dict[str, Shown], now: float) -> list[dict]:
        """The people panel: for a stream whose frames come, exactly the tracks in its newest frame,
        each with its latest label or none yet; for a stream known by its labels only (no monitor),
        the tracks labelled within PEOPLE_SHOWN_S."""
        people = []
        streams = sorted(set(shown) | {stream for stream, _ in self.board.tracks})
        for stream in streams:
            if stream in shown:
                tracks = sorted({int(t) for t in shown[stream].people.tracks if t >= 0})
            else:
                tracks = sorted(track for (name, track), state in self.board.tracks.items()
                                if name == stream and now - state.t_seen_s <= PEOPLE_SHOWN_S)
            for track in tracks:
                state = self.board.tracks.get((stream, track))
                person: dict = {"stream": stream, "track": track, "in_frame": stream in shown, "label": None}
                if state is not None:
                    label = state.latest
                    person.update(label=label["label"], score=round(float(label["score"]), 3),
                                  topk=[[str(n), round(float(s), 3)] for n, s in (label.get("topk") or [])[:3]],
                                  seq_to=label["seq_to"], age_s=round(now - state.t_seen_s, 2))
                people.append(person)
        return people

    def _build_state(self, now: float) -> dict:
        self.board.prune(now)
        now_ns = time.time_ns()
        with self._lock:
            shown = dict(self._shown)
            auto = self.auto_stream
        for stream in [s for s, v in shown.items() if now - v.received_s > self.options.horizon_s]:
            with self._lock:
                self._shown.pop(stream, None)
                self._jpegs.pop(stream, None)
            self.seq_rates.pop(stream, None)
        people = self._people(shown, now)
        frames = {s: {"seq": v.header.get("seq"), "size": v.header.get("size"), "truth": v.header.get("truth"),
                      "people": len(v.people), "tracks": sorted({int(t) for t in v.people.tracks if t >= 0}),
                      "age_s": round(now - v.received_s, 2), "has_frame": v.frame is not None}
                  for s, v in shown.items()}
        return {
            "backend": self.backend, "model": self.model, "labels": self.label_names,
            "streams": sorted(frames), "auto_stream": auto, "frames": frames,
            "people": people, "timeline": self.board.timeline(now), "horizon_s": self.options.horizon_s,
            "track_colors": [_hex(c) for c in TRACK_COLORS_BGR],
            "rates": {
                "frames_fps": round(sum(r.rate(now) for r in self.seq_rates.values()), 1),
                "labels_per_s": round(self.label_stats.rate(now_ns), 1),
                "label_latency_ms": self.label_latency.percentiles(now),
                "frame_latency_ms": self.frame_latency.percentiles(now),
                "viewer_fps": round(self.encode_stats.rate(now_ns), 1),
                "dropped": self.dropped, "lost": self.lost, "malformed": self.malformed,
                "frames_seen": self.frames, "labels_seen": self.labels,
            },
            "monitor": bool(self.options.monitor), "error": self.error,
        }
