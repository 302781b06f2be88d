"""How capture deals frames to pose workers: credits, chunks of one stream per worker, lost frames named.

ZeroMQ's PUSH deals frames round-robin by timing, so which worker saw which frames, and
so each worker's tracking state, changed from run to run. Here capture binds a ROUTER and
each pose worker connects a DEALER:

- A worker reports `{"done": N, "hwm": H, ...}` after every frame it finished (and twice a
  second while idle): it can take `H - (sent - done)` more. Capture sends only to a worker
  with credit, so a worker's queue never grows beyond H and live frames are never stale.
- A recorded stream is cut into chunks of `chunk` frames; each chunk goes whole to one worker,
  and its first frame carries `fresh`, on which the worker forgets the stream's tracking
  state. What a worker computes for a frame then depends on the frames of its chunk only,
  never on how many workers there are or which was faster: the same clip gives the same
  keypoints with one worker or four.
- Capture knows which frames each worker holds. A worker that goes silent, or that the
  supervisor restarted (a new worker announcing the same local index), is dead: the frames
  it held are announced downstream as lost, so render counts them at once instead of waiting.

Control messages travel as two frames, `b"ctl"` and a msgpack map; a frame message's first
frame is a msgpack map and can never equal `b"ctl"`.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

import msgpack
import zmq

CONTROL = b"ctl"
# Workers report at least this often; capture pings each worker as often.
HEARTBEAT_S = 0.5
# A worker silent this long is dead (a local one restarted by the supervisor is known dead at once).
SILENT_S = 10.0
# A worker that heard no ping for this long says the engine went away.
ENGINE_SILENT_S = 3.0
MAX_CONTROL_BYTES = 4096


class BadControl(ValueError):
    """A control message with missing or wrongly typed fields; counted and dropped."""


def pack_control(fields: dict) -> list[bytes]:
    return [CONTROL, msgpack.packb(fields, use_bin_type=True)]


def is_control(parts: list) -> bool:
    return len(parts) == 2 and bytes(parts[0]) == CONTROL


def unpack_control(parts: list) -> dict:
    """The map of a control message, checked for size and shape (a hostile peer costs a drop)."""
    raw = parts[1].buffer if isinstance(parts[1], zmq.Frame) else parts[1]
    if len(raw) > MAX_CONTROL_BYTES:
        raise BadControl(f"control message of {len(raw)} bytes")
    try:
        value = msgpack.unpackb(raw, raw=False, max_str_len=1024, max_array_len=64, max_map_len=16)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadControl(f"control message is not msgpack: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise BadControl("control message is not a map")
    return value


def _count(value: object, name: str, hi: int = 1 << 62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise BadControl(f"{name}={value!r} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class WorkerReport:
    """What a worker tells capture: frames finished since it started, its queue size, who it is."""

    done: int
    hwm: int
    worker: int
    remote: bool
    pid: int

    @classmethod
    def parse(cls, fields: dict) -> "WorkerReport":
        remote = fields.get("remote", False)
        if not isinstance(remote, bool):
            raise BadControl(f"remote={remote!r} is not a boolean")
        return cls(_count(fields.get("done"), "done"), max(1, _count(fields.get("hwm"), "hwm", 1 << 16)),
                   _count(fields.get("worker", 0), "worker", 1 << 16), remote, _count(fields.get("pid", 0), "pid"))

    def fields(self) -> dict:
        return {"done": self.done, "hwm": self.hwm, "worker": self.worker, "remote": self.remote, "pid": self.pid}


@dataclass(frozen=True)
class Sent:
    stream: str
    seq: int
    prev: int


@dataclass
class Worker:
    identity: bytes
    report: WorkerReport
    done_base: int  # the worker's `done` when this capture first heard of it
    heard: float
    held: deque[Sent] = field(default_factory=deque)  # sent, not yet reported done, oldest first
    acknowledged: int = 0  # frames this capture has seen reported done

    @property
    def credit(self) -> int:
        return self.report.hwm - len(self.held)

    def update(self, report: WorkerReport, now: float) -> None:
        finished = report.done - self.done_base - self.acknowledged
        for _ in range(max(0, min(finished, len(self.held)))):
            self.held.popleft()
        self.acknowledged += max(0, finished)
        self.report, self.heard = report, now


class WorkerPool:
    """Capture's side: the workers connected to its ROUTER, their credit and what each holds."""

    def __init__(self, sock: zmq.Socket, silent_s: float = SILENT_S) -> None:
        self.sock = sock
        self.silent_s = silent_s
        self.workers: dict[bytes, Worker] = {}
        self.malformed = 0
        self._pinged = 0.0

    def receive(self, now: float) -> list[Sent]:
        """Read every pending report; returns the frames that dead workers held (now lost)."""
        lost: list[Sent] = []
        while self.sock.poll(0, zmq.POLLIN):
            identity, *parts = self.sock.recv_multipart()
            try:
                if not is_control(parts):
                    raise BadControl("not a control message")
                report = WorkerReport.parse(unpack_control(parts))
            except BadControl:
                self.malformed += 1
                continue
            worker = self.workers.get(identity)
            if worker is None:
                if not report.remote:  # the supervisor restarted local worker N: the old N is gone
                    for other in [w for w in self.workers.values() if not w.report.remote and w.report.worker == report.worker]:
                        lost += self._forget(other)
                worker = self.workers[identity] = Worker(identity, report, report.done, now)
            worker.update(report, now)
        for worker in [w for w in self.workers.values() if now - w.heard > self.silent_s]:
            lost += self._forget(worker)
        if now - self._pinged >= HEARTBEAT_S:
            self._pinged = now
            for worker in list(self.workers.values()):
                if not self._send_control(worker.identity, {"ping": True}):
                    lost += self._forget(worker)  # its connection is gone (tcp heartbeats noticed a cut link)
        return lost

    def _forget(self, worker: Worker) -> list[Sent]:
        del self.workers[worker.identity]
        return list(worker.held)

    def broadcast(self, fields: dict) -> None:
        for identity in list(self.workers):
            self._send_control(identity, fields)

    def _send_control(self, identity: bytes, fields: dict) -> bool:
        """False only when the worker's connection is gone; a full queue just skips a ping."""
        try:
            self.sock.send_multipart([identity, *pack_control(fields)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            return exc.errno != zmq.EHOSTUNREACH
        return True

    def alive(self, identity: bytes | None) -> bool:
        return identity is not None and identity in self.workers

    def freest(self) -> Worker | None:
        """The worker with the most credit (None when no worker has any); ties by identity for order."""
        ready = [w for w in self.workers.values() if w.credit > 0]
        return max(ready, key=lambda w: (w.credit, w.identity)) if ready else None

    def any_worker(self) -> Worker | None:
        return min(self.workers.values(), key=lambda w: len(w.held)) if self.workers else None

    def send(self, worker: Worker, frames: list, sent: Sent | None) -> list[Sent] | None:
        """Send one message (transport frames) to `worker`; a frame (`sent`) uses one credit.

        Returns None when sent; otherwise the message was not sent (try again, or another worker)
        and the list holds the frames the worker held if it turned out to be gone (empty when its
        queue was only full).
        """
        try:
            self.sock.send_multipart([worker.identity, *frames], copy=False)
        except zmq.Again:
            return []
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            return self._forget(worker)
        if sent is not None:
            worker.held.append(sent)
        return None

    def counts(self) -> dict[str, int]:
        remote = sum(1 for w in self.workers.values() if w.report.remote)
        return {"local": len(self.workers) - remote, "remote": remote}


class EngineLink:
    """A pose worker's side: reports to capture, and notices when the engine comes and goes."""

    def __init__(self, sock: zmq.Socket, hwm: int, worker: int, remote: bool) -> None:
        self.sock = sock
        self.hwm, self.worker, self.remote = hwm, worker, remote
        self.done = 0
        self._reported = 0.0
        self.last_ping: float | None = None
        self.ended = False

    def report(self, now: float, force: bool = False) -> None:
        if force or now - self._reported >= HEARTBEAT_S:
            self._reported = now
            fields = WorkerReport(self.done, self.hwm, self.worker, self.remote, os.getpid()).fields()
            try:
                self.sock.send_multipart(pack_control(fields), zmq.NOBLOCK)
            except zmq.Again:
                pass  # no engine to take it: `done` is a running total, the next report says it

    def finished_one(self, now: float) -> None:
        self.done += 1
        self.report(now, force=True)

    def heard(self, fields: dict, now: float) -> str | None:
        """Take a ping or goodbye from capture; returns a line worth telling a user, if any."""
        first = self.last_ping is None
        self.last_ping = now
        if fields.get("bye"):
            self.ended = True
            return "the engine ended"
        return "connected to the engine" if first else None

    def silent(self, now: float) -> bool:
        return self.last_ping is not None and now - self.last_ping > ENGINE_SILENT_S

    def wait_for_the_next(self) -> None:
        """After a goodbye: the next engine to bind the same endpoints is new (`connected` is said again)."""
        self.ended, self.last_ping = False, None

