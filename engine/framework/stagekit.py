"""What every stage process shares: signals, status reports to the supervisor, exit codes.

A stage is a thin loop (receive, call its core, send, count); this module keeps the
plumbing out of those loops.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import zmq

from engine.framework import transport
from engine.errors import EngineError, ModelError
from engine.framework.security import CurveKeys, load_keys
from engine.framework.stage_options import StageOptions
from pose.base import PoseError

STATUS_INTERVAL_S = 0.5
LINGER_AT_EXIT_MS = 1000
# Exit codes a stage uses for errors that a restart cannot fix; the supervisor stops on them.
FATAL_EXIT_CODES = frozenset({2, 3, 4})


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so a killed supervisor leaves no orphans."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class Stop:
    """A flag set by SIGTERM; loops poll with short timeouts and check it."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def __bool__(self) -> bool:
        return self.requested


class RollingStats:
    """Event rate and latency percentiles over the last few seconds."""

    def __init__(self, horizon_s: float = 5.0, max_samples: int = 2048) -> None:
        self.horizon_ns = int(horizon_s * 1e9)
        self._events: deque[int] = deque(maxlen=max_samples)
        self._latency_ms: deque[float] = deque(maxlen=max_samples)

    def add(self, now_ns: int, latency_ms: float | None = None) -> None:
        self._events.append(now_ns)
        if latency_ms is not None:
            self._latency_ms.append(latency_ms)

    def rate(self, now_ns: int) -> float:
        while self._events and now_ns - self._events[0] > self.horizon_ns:
            self._events.popleft()
        if len(self._events) < 2:
            return 0.0
        span = max(now_ns - self._events[0], 1)
        return (len(self._events) - 1) * 1e9 / span

    def latency(self) -> dict[str, float]:
        if not self._latency_ms:
            return {}
        values = np.fromiter(self._latency_ms, dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


_TALLY_FORMAT = "<q"


def tally_path(status_endpoint: str, stage: str, worker: int, pid: int) -> Path | None:
    """Where a stage process on this host keeps its frame count: beside the supervisor's ipc status socket."""
    if not status_endpoint.startswith("ipc://"):
        return None  # a stage on another host: its reports are all there is
    return Path(status_endpoint[len("ipc://"):]).parent / f"tally.{stage}.{worker}.{pid}"


class FrameTally:
    """A stage's frame count in a small shared file, written at every frame.

    A status report is up to half a second old when a stage is killed: the frames it handled
    since would vanish from the run's totals. The file outlives the process, so the supervisor
    reads the exact count of a dead incarnation (`read_tally`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "wb") as f:
            f.write(struct.pack(_TALLY_FORMAT, 0))
        with open(path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), struct.calcsize(_TALLY_FORMAT))

    def set(self, frames: int) -> None:
        struct.pack_into(_TALLY_FORMAT, self._map, 0, frames)


def read_tally(path: Path) -> int | None:
    """The count a (dead) stage left in its tally file, or None without one; the file is removed."""
    try:
        data = path.read_bytes()
        path.unlink()
    except OSError:
        return None
    if len(data) != struct.calcsize(_TALLY_FORMAT):
        return None
    return struct.unpack(_TALLY_FORMAT, data)[0]


# The process's tally: one stage per process, one meter counting its frames (StageMeter).
_tally: FrameTally | None = None


class StatusReporter:
    """Pushes a small msgpack map to the supervisor twice a second; never blocks the stage."""

    def __init__(self, ctx: zmq.Context, endpoint: str | None, stage: str, worker: int = 0) -> None:
        global _tally
        self.stage, self.worker = stage, worker
        self._sock = None
        self._next = 0.0
        path = tally_path(endpoint, stage, worker, os.getpid()) if endpoint else None
        if path is not None and _tally is None:
            try:
                _tally = FrameTally(path)
            except OSError:
                pass  # no shared file: the supervisor falls back on the last report
        if endpoint:
            self._sock = ctx.socket(zmq.PUSH)
            self._sock.setsockopt(zmq.LINGER, 200)
            self._sock.setsockopt(zmq.SNDHWM, 16)
            self._sock.connect(endpoint)

    def due(self) -> bool:
        return self._sock is not None and time.monotonic() >= self._next

    def send(self, fields: dict, force: bool = False) -> None:
        if self._sock is None or not (force or self.due()):
            return
        self._next = time.monotonic() + STATUS_INTERVAL_S
        report = {"stage": self.stage, "worker": self.worker, "pid": os.getpid(), "t_ns": time.time_ns(), **fields}
        try:
            self._sock.send(msgpack.packb(report, use_bin_type=True), zmq.NOBLOCK)
        except zmq.Again:
            pass


# Messages queued on each link after pose, and the kernel buffer behind them: enough to keep the
# stages busy, few enough that a stage killed mid-run takes only a few frames with it.
LINK_HWM = 16
LINK_KERNEL_BUFFER_BYTES = 64 * 1024
# Labels are small and every one counts (the viewer's timeline, the labels file): the publisher
# and its subscribers queue many rather than drop one.
LABELS_HWM = 10_000
# The lossless record feed (render -> sink): a few frames, so a slow writer slows the source at once.
RECORD_FEED_HWM = 4
# Larger than any message a stage accepts (a 4K frame is 25 MB): a bigger one is cut off by ZeroMQ
# before it is held in memory.
MAX_MESSAGE_BYTES = 96 * 1024 * 1024


def bounded(sock: zmq.Socket, hwm: int = LINK_HWM) -> zmq.Socket:
    """Small queues on an inter-stage link (both directions, ZeroMQ's and the kernel's)."""
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.SNDBUF, LINK_KERNEL_BUFFER_BYTES)
    sock.setsockopt(zmq.RCVBUF, LINK_KERNEL_BUFFER_BYTES)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    return sock


def send_when_ready(sock: zmq.Socket, header: dict, arrays: dict | None, stop: "Stop", poll_ms: int = 100) -> bool:
    """A blocking send that still notices SIGTERM: waits for room in `sock`; False if stopped first."""
    while not stop:
        if sock.poll(poll_ms, zmq.POLLOUT):
            transport.send(sock, header, arrays)
            return True
    return False


def curve_keys(options: StageOptions) -> CurveKeys | None:
    """The stage's CURVE keys (`--curve-keys`), or None for plain sockets."""
    return load_keys(options.curve_keys) if options.curve_keys else None


def run_stage(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a stage's main, turning user errors into one stderr line and their exit code."""
    die_with_parent()
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        code = main(argv)
    except (EngineError, PoseError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = getattr(exc, "exit_code", ModelError.exit_code)  # PoseError: like a bad model file
    finally:
        # Frames go out zero-copy: libzmq may still read their buffers. Closing every socket and
        # terminating the context here, before the interpreter frees those buffers, avoids a crash at exit.
        zmq.Context.instance().destroy(linger=LINGER_AT_EXIT_MS)
    sys.exit(code)


class StageMeter:
    """A stage's own counters: frames, busy time per frame, first/last frame times, rolling rate."""

    def __init__(self) -> None:
        self.frames = 0
        self.busy_ns = 0
        self.t_first_ns = 0
        self.t_last_ns = 0
        self.rolling = RollingStats()

    def count(self, started_perf_ns: int, latency_ms: float | None = None) -> None:
        """One frame done; `started_perf_ns` is perf_counter_ns() when its work began."""
        self.count_busy(time.perf_counter_ns() - started_perf_ns, latency_ms)

    def count_busy(self, busy_ns: int, latency_ms: float | None = None) -> None:
        now = time.time_ns()
        self.busy_ns += busy_ns
        self.frames += 1
        self.t_first_ns = self.t_first_ns or now
        self.t_last_ns = now
        self.rolling.add(now, latency_ms)
        if _tally is not None:
            _tally.set(self.frames)

    def fields(self) -> dict:
        return {
            "frames": self.frames, "rate": self.rolling.rate(time.time_ns()),
            "ms_per_frame": self.busy_ns / 1e6 / self.frames if self.frames else 0.0,
            "t_first_ns": self.t_first_ns, "t_last_ns": self.t_last_ns,
        }
