"""Capture stage: reads sources, stamps frames, deals them to the pose workers.

Recorded sources are lossless (waiting for a worker's credit is the backpressure that slows
the reader) and go to the workers in chunks (engine.framework.dispatch), so the keypoints do
not depend on the number of workers. Live sources and `--realtime` replays keep only the
newest frame, send it when a worker is free, and count what they drop. Every frame names the
previous frame sent on its stream (`prev`), so nothing downstream waits for a dropped one.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import zmq

from engine.framework import transport
from engine.framework.dispatch import Sent, Worker, WorkerPool
from engine.errors import SourceError
from engine.sources import Frame, SourceSpec, StreamReader, open_streams, parse_source
from engine.framework.options import parse_options
from engine.framework.stage_options import CaptureOptions
from engine.framework.stagekit import StageMeter, StatusReporter, Stop, curve_keys, run_stage

POLL_MS = 100
RECONNECT_MAX_S = 5.0


def frame_message(frame: Frame, fps: float, live: bool, dropped: int) -> tuple[dict, dict[str, np.ndarray]]:
    h, w = frame.image.shape[:2]
    header = {
        "stream": frame.stream, "seq": frame.seq, "t_capture_ns": frame.t_capture_ns,
        "fps": fps, "size": [w, h], "live": live, "dropped": dropped,
    }
    if frame.truth is not None:
        header["truth"] = frame.truth
    arrays = {"frame": frame.image}
    if frame.keypoints is not None:
        arrays["keypoints_gt"] = frame.keypoints
    return header, arrays


def eos_message(stream: str, next_seq: int, fps: float) -> dict:
    return {"stream": stream, "seq": next_seq, "t_capture_ns": time.time_ns(), "fps": fps, "eos": True}


@dataclass
class LatestSlot:
    """Newest frame of one live source; older ones are overwritten and counted as dropped.

    End-of-stream markers queue separately: they are never dropped.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    item: tuple[dict, dict] | None = None
    eos: deque = field(default_factory=deque)
    read: int = 0  # frames the source gave: each is sent on, dropped, or waiting here
    dropped: int = 0
    dropped_by_stream: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    reconnecting: bool = False
    error: str | None = None

    def put(self, item: tuple[dict, dict]) -> None:
        with self.lock:
            self.read += 1
            if self.item is not None:
                self.dropped += 1
                stream = self.item[0]["stream"]
                self.dropped_by_stream[stream] = self.dropped_by_stream.get(stream, 0) + 1
            self.item = item

    def take(self) -> tuple[dict, dict] | None:
        """The newest frame, or, once no frame waits, an end-of-stream marker with its stream's drops."""
        with self.lock:
            if self.eos and self.item is None:
                eos = self.eos.popleft()
                return {**eos, "dropped": self.dropped_by_stream.get(eos["stream"], 0)}, {}
            item, self.item = self.item, None
            return item


class ArrivalRate:
    """The frame rate a live source really delivers, from its first arrivals.

    Containers often claim a rate they do not keep (MJPEG over HTTP reports FFmpeg's 25 fps guess,
    webcams slow down in low light); the classifier resamples by this rate, so it must be the real
    one. Measured once, then fixed: a rate that moved would restart every track's window.
    """

    SAMPLES = 12

    def __init__(self) -> None:
        self._times: list[int] = []
        self.fps: float | None = None

    def add(self, t_ns: int) -> float | None:
        if self.fps is None:
            self._times.append(t_ns)
            if len(self._times) > self.SAMPLES:
                interval_s = float(np.median(np.diff(self._times))) / 1e9
                self.fps = round(1.0 / interval_s, 1) if interval_s > 0 else None
        return self.fps


class LiveReader(threading.Thread):
    """Reads one source as fast as it produces (paced to its fps for recorded media) into a slot."""

    def __init__(self, spec: SourceSpec, mhad_root: str | None, paced: bool, stop: Stop, exit_on_loss: bool,
                 resume: dict) -> None:
        super().__init__(daemon=True)
        self.spec, self.mhad_root, self.paced, self.stop, self.exit_on_loss = spec, mhad_root, paced, stop, exit_on_loss
        self.resume = resume
        self.slot = LatestSlot()
        # A restarted capture numbers on from where the last one was: the stream stays one stream.
        self._next_seq = int(resume.get("next", {}).get(spec.text, 0))
        self.rate = ArrivalRate()

    def run(self) -> None:
        try:
            if self.spec.kind in ("camera", "stream"):
                self._run_live()
            else:
                for reader in open_streams(self.spec):
                    if reader.stream in self.resume.get("ended", ()):
                        reader.close()
                        continue
                    reader.skip_to(int(self.resume.get("next", {}).get(reader.stream, 0)))
                    self._play(reader)
                    if self.stop:
                        break
        except SourceError as exc:
            self.slot.error = str(exc)
        finally:
            self.slot.finished = True

    def _play(self, reader: StreamReader) -> bool:
        """Play one stream to its end; False if it ended early (a live source lost)."""
        t0, seq = time.monotonic() - reader.position() / reader.fps, reader.position()
        try:
            while not self.stop:
                if self.paced:
                    # Wait first, then read: the frame is stamped when it "arrives", as a camera's would be.
                    delay = t0 + reader.position() / reader.fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                frame = reader.read()
                if frame is None:
                    break
                self.slot.put(frame_message(frame, reader.fps, True, self.slot.dropped))
                seq = frame.seq + 1
        finally:
            reader.close()
        with self.slot.lock:
            self.slot.eos.append(eos_message(reader.stream, seq, reader.fps))
        return False

    def _run_live(self) -> None:
        backoff = 0.5
        while not self.stop:
            try:
                reader = next(open_streams(self.spec))
                self.slot.reconnecting = False
                backoff = 0.5
                self._play_live(reader)
            except SourceError as exc:
                if self.exit_on_loss:
                    raise
                self.slot.error = str(exc)
            if self.exit_on_loss:
                raise SourceError(f"source {self.spec.text} was lost and --exit-on-source-loss is set")
            self.slot.reconnecting = True
            deadline = time.monotonic() + backoff
            while not self.stop and time.monotonic() < deadline:
                time.sleep(0.05)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _play_live(self, reader: StreamReader) -> None:
        """One connection; frame numbers go on from the last connection's, so the stream stays one stream."""
        try:
            while not self.stop:
                frame = reader.read()
                if frame is None:
                    return
                frame.seq, self._next_seq = self._next_seq, self._next_seq + 1
                fps = self.rate.add(frame.t_capture_ns) or reader.fps
                self.slot.put(frame_message(frame, fps, True, self.slot.dropped))
        finally:
            reader.close()


@dataclass
class Route:
    """Where one stream's frames go: the previous frame sent, and the worker holding its current chunk."""

    prev: int
    owner: bytes | None = None
    chunk_end: int = 0


class Capture:
    def __init__(self, args: CaptureOptions) -> None:
        self.args = args
        self.stop = Stop()
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        # Credits bound what each worker holds; the high-water mark only has to clear them and the pings.
        self.sock.setsockopt(zmq.SNDHWM, 1000)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a worker gone is an error here, not a silent drop
        self.sock.setsockopt(zmq.LINGER, 1000)
        transport.bind(self.sock, args.output, "capture output", curve_keys(args))
        self.pool = WorkerPool(self.sock)
        self.status = StatusReporter(self.ctx, args.status, "capture", args.worker)
        self.meter = StageMeter()
        self.resume: dict = json.loads(args.resume) if args.resume else {}
        self.position: dict[str, int] = {}  # next seq per stream: where a restarted capture resumes
        self.routes: dict[str, Route] = {}
        self.live = False
        self.started: list[str] = []
        self.ended: list[str] = []
        self.dropped = 0
        self.read = 0
        self.lost_announced = 0
        self.source_errors: dict[str, str] = {}

    # ------------------------------------------------------------------ dealing

    def _route(self, stream: str, seq: int) -> Route:
        route = self.routes.get(stream)
        if route is None:
            # A stream this incarnation has not sent yet: it starts (prev -1), or resumes after a restart.
            resumed = self.resume.get("next", {}).get(stream)
            route = self.routes[stream] = Route(prev=int(resumed) - 1 if resumed else -1)
        return route

    def _pump(self) -> None:
        """Take the workers' reports; announce what dead workers held as lost."""
        lost = self.pool.receive(time.monotonic())
        if lost:
            self._announce_lost(lost)

    def _announce_lost(self, lost: list[Sent]) -> None:
        by_stream: dict[str, list[list[int]]] = {}
        for item in lost:
            by_stream.setdefault(item.stream, []).append([item.seq, item.prev])
        for stream, frames in by_stream.items():
            header = {"stream": stream, "seq": frames[0][0], "t_capture_ns": time.time_ns(), "lost_frames": frames}
            if self._send_control(header):
                self.lost_announced += len(frames)

    def _wait(self) -> None:
        self.sock.poll(POLL_MS, zmq.POLLIN)
        self._pump()
        self._report(False)

    def _frame_worker(self, stream: str, route: Route, seq: int, chunked: bool) -> tuple[Worker | None, bool]:
        """The worker for frame `seq` now (None: none can take it yet) and whether it starts fresh."""
        if not chunked:
            return self.pool.freest(), False
        fresh = seq >= route.chunk_end or not self.pool.alive(route.owner)
        if fresh:
            worker = self.pool.freest()
        else:
            worker = self.pool.workers[route.owner]
            worker = worker if worker.credit > 0 else None
        if worker is not None and seq - self._oldest_held(stream, seq) >= self.args.max_ahead:
            return None, fresh  # render would hold too much while the oldest frame is still out
        return worker, fresh

    def _oldest_held(self, stream: str, seq: int) -> int:
        held = [item.seq for w in self.pool.workers.values() for item in w.held if item.stream == stream]
        return min(held, default=seq)

    def _send_frame(self, header: dict, arrays: dict, read_ns: int = 0) -> bool:
        """Send one frame once a worker can take it; False if asked to stop first.

        `read_ns` is the time spent reading the frame: with the send, the stage's own work
        (time spent waiting for a worker is not).
        """
        stream, seq = header["stream"], header["seq"]
        route = self._route(stream, seq)
        chunked = not header.get("live")
        while not self.stop:
            self._pump()
            worker, fresh = self._frame_worker(stream, route, seq, chunked)
            if worker is None:
                self._wait()
                continue
            t0 = time.perf_counter_ns()
            message = {**header, "prev": route.prev, **({"fresh": True} if fresh else {})}
            gone = self.pool.send(worker, transport.pack(message, arrays), Sent(stream, seq, route.prev))
            if gone is not None:
                if gone:
                    self._announce_lost(gone)
                else:
                    self._wait()  # the worker's queue is full: it has pings and notices to read first
                continue
            if fresh:
                route.owner, route.chunk_end = worker.identity, (seq // self.args.chunk + 1) * self.args.chunk
            route.prev = seq
            if stream not in self.started:
                self.started.append(stream)
            self.position[stream] = seq + 1
            self.meter.count_busy(read_ns + time.perf_counter_ns() - t0)
            return True
        return False

    def _send_control(self, header: dict) -> bool:
        """End-of-stream and lost-frame notices: to any worker, which passes them on; they take no credit."""
        while not self.stop:
            self._pump()
            worker = self.pool.any_worker()
            if worker is None:
                self._wait()
                continue
            if self.pool.send(worker, transport.pack(header), None) is None:
                return True
        return False

    def _send_eos(self, header: dict) -> bool:
        stream = header["stream"]
        route = self._route(stream, header["seq"])
        if self._send_control({**header, "prev": route.prev}):
            self.ended.append(stream)
            return True
        return False

    # ------------------------------------------------------------------ reporting

    def _report(self, done: bool, force: bool = False, **extra: object) -> None:
        self.status.send(
            {**self.meter.fields(), "dropped": self.dropped, "read": self.read or self.meter.frames,
             "started": self.started, "live": self.live,
             "ended": self.ended, "position": {s: n for s, n in self.position.items() if s not in self.ended},
             "workers": self.pool.counts(), "lost_announced": self.lost_announced,
             "malformed": self.pool.malformed, "source_errors": dict(self.source_errors),
             "done": done, **extra},
            force=done or force,
        )

    def run(self, specs: list[SourceSpec]) -> int:
        self.live = live = self.args.realtime or any(s.live for s in specs)
        if live:
            self._run_live(specs)
        else:
            self._run_lossless(specs)
        finished = not self.stop
        # Stay up until the supervisor stops us, so the last messages are not cut off by exit.
        while not self.stop:
            self._pump()
            self._report(True)
            time.sleep(0.2)
        self.pool.broadcast({"bye": True})  # remote workers end with the engine
        self._report(finished, force=True)
        self.sock.close(linger=500)
        return 0

    def _next_stream(self, streams: Iterator[StreamReader]) -> StreamReader | None:
        """The next stream of a source, skipping what a previous incarnation of this stage finished."""
        for reader in streams:
            if reader.stream in self.resume.get("ended", ()):
                reader.close()
                self.ended.append(reader.stream)
                self.started.append(reader.stream)
                continue
            reader.skip_to(int(self.resume.get("next", {}).get(reader.stream, 0)))
            return reader
        return None

    def _run_lossless(self, specs: list[SourceSpec]) -> None:
        sources = [open_streams(s) for s in specs]
        readers: list[StreamReader | None] = [self._next_stream(it) for it in sources]
        next_seq = [r.position() if r else 0 for r in readers]
        while not self.stop and any(r is not None for r in readers):
            for i, reader in enumerate(readers):
                if reader is None or self.stop:
                    continue
                t0 = time.perf_counter_ns()
                frame = reader.read()
                if frame is None:
                    reader.close()
                    self._send_eos(eos_message(reader.stream, next_seq[i], reader.fps))
                    readers[i] = self._next_stream(sources[i])
                    next_seq[i] = readers[i].position() if readers[i] else 0
                    continue
                self._send_frame(*frame_message(frame, reader.fps, False, 0), read_ns=time.perf_counter_ns() - t0)
                next_seq[i] = frame.seq + 1
            self._report(False)

    def _run_live(self, specs: list[SourceSpec]) -> None:
        threads = [LiveReader(s, self.args.mhad_root, not s.live, self.stop, self.args.exit_on_source_loss, self.resume)
                   for s in specs]
        for t in threads:
            t.start()
        while not self.stop:
            if all(t.slot.finished and t.slot.item is None and not t.slot.eos for t in threads):
                errors = [t.slot.error for t in threads if t.slot.error]
                if errors and self.args.exit_on_source_loss:
                    raise SourceError(errors[0])
                return
            self._pump()
            sent_any = False
            for t in threads:
                # Take a frame only when a worker is free: a frame waiting here would be stale when sent.
                if self.pool.freest() is None and not t.slot.eos:
                    continue
                item = t.slot.take()
                if item is None:
                    continue
                header, arrays = item
                sent_any = self._send_eos(header) if header.get("eos") else self._send_frame(header, arrays)
            self.dropped = sum(t.slot.dropped for t in threads)
            self.read = sum(t.slot.read for t in threads)
            self.source_errors = {t.spec.text: t.slot.error for t in threads if t.slot.reconnecting and t.slot.error}
            self._report(False, reconnecting=[t.spec.text for t in threads if t.slot.reconnecting])
            if not sent_any:
                self.sock.poll(2, zmq.POLLIN)


def main(argv: list[str] | None = None) -> int:
    args = parse_options(CaptureOptions, argv, "engine stage capture", __doc__)
    specs = [parse_source(s, args.mhad_root) for s in args.source]
    return Capture(args).run(specs)


if __name__ == "__main__":
    run_stage(main)
