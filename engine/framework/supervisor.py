"""`engine run`: starts the stage processes, watches them, restarts the ones that die, stops cleanly.

Stages are started by module name (`python -m stages.NAME`): this module never imports
them. Each reports to one status socket; the supervisor turns those reports into a
status line, end-of-source detection and hang/crash handling.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import numpy as np
import zmq

from engine.classify.contract import Contract, load_contract
from engine.classify.runtime import ClassifyOptions, track_windows
from engine.errors import ConfigError, EngineError, ModelError, StageError
from engine.framework import transport
from engine.framework.config import RunOptions
from engine.framework.endpoints import connectable, is_loopback
from engine.framework.options import to_argv
from engine.framework.schema import (
    LABELS_TOPIC, BadLabel, BadStatus, decode_label, decode_status, format_label, hello_topic,
)
from engine.framework.security import CurveKeys, load_keys
from engine.framework.stage_options import (
    FRAMES_PER_WORKER, REORDER_CAPACITY, BridgeStageOptions, CaptureOptions, ClassifyStageOptions, PoseStageOptions,
    RenderOptions, SinkOptions, StageOptions, ViewStageOptions,
)
from engine.framework.stagekit import FATAL_EXIT_CODES, LABELS_HWM, read_tally, tally_path
from engine.sources import open_streams, parse_source, probe
from engine.sources.spec import default_max_people
from pose import BACKENDS  # names only: backends load inside the pose workers

SHUTDOWN_GRACE_S = 1.5
BRIDGE_GRACE_S = 6.0  # the bridge's 5 s to drain its buffer to the broker, and its exit
RESTART_WINDOW_S = 60.0
STATUS_PERIOD_S = 1.0
# A stage reports twice a second from its loop; silence this long means it hangs (detected within 5 s).
HANG_S = 4.0
# Silence this long (three reports missed) and the status line shows the stage's rate as 0, HUNG:
# its last rate is no longer news, though it is killed only at HANG_S.
SILENT_S = 1.5
# Imports and model loading come before the first report.
STARTUP_S = 30.0
# Counters that survive a restart: the new process starts from zero, the run's totals do not.
CARRIED = ("frames", "malformed", "lost", "late", "gaps", "labels", "dropped")
# A restarted capture re-sends this many frames before the last one it reported, so the frames
# that sat in its queue when it died are not lost; the renderer drops the ones it already had.
RESUME_MARGIN = 32
# Frames held by render while one is late, when whole frames travel with the keypoints.
REORDER_CAPACITY_WITH_FRAMES = 96
# After the PUB socket is bound, time for subscriptions that were waiting to reach it.
SUBSCRIBE_GRACE_S = 0.2


def _stop_processes(procs: list[subprocess.Popen | None], grace_s: float) -> None:
    """SIGTERM the running ones, SIGKILL those still running after `grace_s`."""
    running = [proc for proc in procs if proc is not None and proc.poll() is None]
    for proc in running:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class StageProcess:
    key: str  # e.g. "pose.1"
    module: str
    options: StageOptions  # the stage's command line is `to_argv(options)`
    log_path: Path
    report_key: tuple[str, int] = ("", 0)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    recent_crashes: deque = field(default_factory=deque)
    carried: dict[str, float] = field(default_factory=dict)
    carried_streams: dict[str, int] = field(default_factory=dict)  # frames per stream of earlier incarnations
    unreported: int = 0  # frames earlier incarnations handled after their last report (from their tally)
    resumed_at: dict[str, int] = field(default_factory=dict)  # a restarted capture's first frame per stream
    started_at: float = 0.0
    last_report: float | None = None
    hung: int = 0

    def silent(self, now: float) -> bool:
        """True while the running process has reported before but not for SILENT_S: its last rate is stale."""
        return (self.proc is not None and self.proc.poll() is None and self.last_report is not None
                and now - self.last_report > SILENT_S)

    def start(self, resume: str | None = None) -> None:
        """Start (or restart) the process; `resume` is a restarted capture's position (CaptureOptions.resume)."""
        self.started_at, self.last_report = time.monotonic(), None
        options = replace(self.options, resume=resume) if resume else self.options
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *to_argv(options)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only; it stops stages in order
            )

    def last_error(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if line.startswith("error: ")]
        if errors:
            return errors[-1][len("error: "):]
        return lines[-1] if lines else ""


class Supervisor:
    def __init__(self, options: RunOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.options, self.out, self.err = options, out, err
        self.stop_requested = False
        self.reports: dict[tuple[str, int], dict] = {}
        self.ended: set[str] = set()
        self.stages: list[StageProcess] = []
        self.run_dir: Path | None = None
        self.keys: CurveKeys | None = None
        self._sink_progress: tuple | None = None  # (frames, streams ended) last reported by the sink
        self._sink_moved = 0.0
        self.elapsed_s = 0.0
        self.malformed_status = 0  # status reports dropped: not msgpack, unknown stage, a field of a wrong type or range
        self.labels_received = 0  # labels this supervisor received as a subscriber: the run's label count
        self._said_errors: dict[str, str] = {}  # the reason last printed per reconnecting source
        self.metrics = None  # engine.framework.metrics.MetricsServer under --metrics
        self._latency = None  # its capture-to-label histogram
        self._next_metrics = 0.0
        self.failing: str | None = None  # why the run is ending in error (healthz says 503)
        self.first_reports: set[tuple[str, int]] = set()  # stages that have reported at least once (readyz)

    @property
    def _by_report_key(self) -> dict[tuple[str, int], StageProcess]:
        return {stage.report_key: stage for stage in self.stages}

    # --- set-up --------------------------------------------------------------------------
    def _validate(self) -> tuple[str, str]:
        """Fail fast on bad input, before any process starts; returns (pose backend, model name)."""
        duplicates = {s for s in self.options.source if self.options.source.count(s) > 1}
        if duplicates:
            raise ConfigError(f"source {sorted(duplicates)[0]} is given twice: each source is one stream (vary ?seed= for synthetic)")
        specs = [parse_source(s, self.options.mhad_root) for s in self.options.source]
        for spec in specs:
            probe(spec)
        if load_contract(self.options.model).input_kind == "pair":
            raise ModelError(f"{self.options.model}: a two-person model (input_kind 'pair') labels pairs of people; "
                             "pass it as --pair-model beside a one-person --model")
        if self.options.pair_unknown_below is not None and not 0.0 <= self.options.pair_unknown_below <= 1.0:
            raise ConfigError(f"--pair-unknown-below {self.options.pair_unknown_below} is out of range: use a score from 0 to 1")
        if self.options.pair_model:
            pair = load_contract(self.options.pair_model)
            if pair.input_kind != "pair":
                raise ModelError(f"{self.options.pair_model}: --pair-model needs a model with input_kind 'pair', this one is "
                                 f"{pair.input_kind!r}; pass it as --model instead (or a pair model such as models/pair_sbu.onnx)")
        backend = self.options.pose
        if backend == "auto":
            backend = "replay" if all(s.kind == "synthetic" for s in specs) else "blazepose"
        if backend not in BACKENDS:
            raise ConfigError(f"unknown pose backend {backend!r}: use auto or one of {', '.join(sorted(BACKENDS))}")
        self._check_free(self.options.publish, "labels publisher")
        mqtt = self.options.mqtt()
        if mqtt is not None:
            from engine.bridge.mqtt import resolve  # paho: only with --bridge
            from engine.framework.bridging import bridge_options

            try:
                resolve(bridge_options(mqtt).url)
            except ConfigError as exc:  # it names `engine bridge`'s flags: say the ones typed here
                raise ConfigError(re.sub(r"--(to|username|password-env|tls-ca|tls-cert|tls-key|buffer)\b",
                                         lambda m: "--bridge" if m[1] == "to" else f"--bridge-{m[1]}", str(exc))) from None
        self.keys = load_keys(self.options.curve_keys) if self.options.curve_keys else None
        self._warn_exposed()
        return backend, Path(self.options.model).stem

    def _warn_exposed(self) -> None:
        """Any socket reachable from other machines without CURVE gets a warning naming the risk."""
        o = self.options
        view = f"tcp://{o.view}" if o.view and ":" in o.view else None
        for what, endpoint in (("labels publisher", o.publish), ("frames endpoint", o.frames_endpoint),
                               ("poses endpoint", o.poses_endpoint), ("monitor endpoint", o.monitor), ("viewer", view)):
            if endpoint and not is_loopback(endpoint) and (self.keys is None or what == "viewer"):
                fix = "" if what == "viewer" else ": add --curve-keys DIR (engine keys generate DIR)"
                print(f"warning: {what} {endpoint} is reachable from other machines without encryption or "
                      f"authentication; anyone on the network can read it{fix}", file=self.err, flush=True)

    @staticmethod
    def _check_free(endpoint: str, what: str) -> None:
        if not endpoint.startswith("tcp://"):
            return
        # A context of its own, terminated: the port is free again before classify binds it, and no
        # subscriber of this run can reach the probe (a CURVE handshake with it would fail for good).
        ctx = zmq.Context()
        probe_sock = ctx.socket(zmq.PUB)
        try:
            transport.bind(probe_sock, endpoint, what)
        finally:
            probe_sock.close(linger=0)
            ctx.term()

    def _plan(self, backend: str) -> None:
        """Every stage's options, from the run's: each stage is started with `to_argv` of its own dataclass."""
        o = self.options
        assert self.run_dir is not None
        ipc = f"ipc://{self.run_dir}"
        frames = o.frames_endpoint or f"{ipc}/frames"
        poses = o.poses_endpoint or f"{ipc}/poses"
        rendered = f"{ipc}/rendered"
        self.status_endpoint = status = f"{ipc}/status"
        common = {"status": status, "debug": o.debug, "curve_keys": o.curve_keys}

        def add(key: str, module: str, options: StageOptions, worker: int = 0) -> None:
            log = self.run_dir / f"{key}.log"
            stage_name = module.rsplit(".", 1)[1]
            self.stages.append(StageProcess(key, module, replace(options, worker=worker), log, (stage_name, worker)))

        classify = ClassifyOptions(threads=o.classify_threads, ema=o.ema, unknown_below=o.unknown_below, min_window_s=o.min_window)
        # Subscribers this run starts (itself, the sink, the viewer): classify waits for them after a (re)start.
        mqtt = o.mqtt()
        subscribers = 1 + bool(o.record or o.labels_out or o.keypoints_out) + bool(o.view) + bool(mqtt)
        add("classify", "stages.classify", ClassifyStageOptions(input=rendered, publish=o.publish, model=o.model,
                                                                pair_model=o.pair_model, pair_unknown_below=o.pair_unknown_below,
                                                                classify=classify, subscribers=subscribers, **common))
        wants_frames = bool(o.view or o.record or o.monitor)  # an explicit --monitor is for a remote viewer
        monitor = o.monitor or (f"{ipc}/monitor" if wants_frames or o.keypoints_out else None)
        live = o.realtime or any(parse_source(s, o.mhad_root).live for s in o.source)
        # A recording of a recorded source is lossless (the source waits for the recorder); of a live one, never in the way.
        record_feed = f"{ipc}/record" if (o.record or o.keypoints_out) and not live else None
        add("render", "stages.render", RenderOptions(
            input=poses, output=rendered, model=o.model, reorder_timeout=o.reorder_timeout, monitor=monitor,
            record_output=record_feed, **common,
            # ~90 MB of 640x480 frames, not ~1 GB, when whole frames travel with the keypoints
            reorder_capacity=REORDER_CAPACITY_WITH_FRAMES if wants_frames else REORDER_CAPACITY))
        self.labels_endpoint = labels = connectable(o.publish)
        local_monitor = connectable(monitor) if monitor else None  # where local subscribers reach a wildcard bind
        if o.record or o.labels_out or o.keypoints_out:
            add("sink", "stages.sink", SinkOptions(
                labels=labels, monitor=record_feed or local_monitor, lossless=record_feed is not None,
                record=o.record, labels_out=o.labels_out, keypoints_out=o.keypoints_out, **common))
        if o.view:
            add("view", "stages.view", ViewStageOptions(labels=labels, monitor=local_monitor, bind=o.view, pose=backend,
                                                        model=o.model, **common))
        if mqtt is not None:
            add("bridge", "stages.bridge", BridgeStageOptions(labels=labels, mqtt=mqtt, **common))
        # Live: at most about one frame waits per worker, so a label is never about an old frame.
        hwm = 1 if live else FRAMES_PER_WORKER
        # --max-people 0 (the default): by source kind, see engine.sources.spec.default_max_people
        max_people = o.max_people or default_max_people([parse_source(s, o.mhad_root) for s in o.source])
        pose = PoseStageOptions(input=frames, output=poses, pose=backend, max_people=max_people,
                                pose_threads=o.pose_threads, pose_weights=o.pose_weights, replay_file=o.replay_file,
                                forward_frames=wants_frames, hwm=hwm, **common)
        for i in range(o.workers()):
            add(f"pose.{i}", "stages.pose", pose, worker=i)
        add("capture", "stages.capture", CaptureOptions(
            output=frames, source=o.source, mhad_root=o.mhad_root, realtime=o.realtime,
            exit_on_source_loss=o.exit_on_source_loss, **common))

    # --- running -------------------------------------------------------------------------
    def run(self) -> int:
        backend, model_name = self._validate()
        self.backend, self.model_name = backend, model_name
        if self.options.metrics:
            self._serve_metrics()
        self.run_dir = Path(tempfile.mkdtemp(prefix="engine-run-"))
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        ctx = zmq.Context.instance()
        status_sock = ctx.socket(zmq.PULL)
        labels_sock = None
        try:
            self._plan(backend)
            transport.bind(status_sock, self.status_endpoint, "status")
            # Always subscribed, printing or not: the run's label count is what a subscriber received,
            # not what a classifier said in its last report before it was killed.
            labels_sock = ctx.socket(zmq.SUB)
            labels_sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
            labels_sock.setsockopt(zmq.SUBSCRIBE, hello_topic("supervisor"))  # after labels (schema.HELLO_PREFIX)
            labels_sock.setsockopt(zmq.RCVHWM, LABELS_HWM)
            transport.connect(labels_sock, self.labels_endpoint, "label counter", self.keys)
            for stage in self.stages:
                if stage.key == "capture":
                    self._wait_for_downstream(status_sock)
                stage.start()
            code = self._watch(status_sock, labels_sock)
            self._shutdown()
            self._take_last_labels(labels_sock)
            self._finish(status_sock)
            return code
        except EngineError as exc:
            self.failing = str(exc)
            raise
        finally:
            self._shutdown()
            status_sock.close(linger=0)
            if labels_sock is not None:
                labels_sock.close(linger=0)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _watch(self, status_sock: zmq.Socket, labels_sock: zmq.Socket | None) -> int:
        t0 = time.monotonic()
        next_status = t0 + STATUS_PERIOD_S
        poller = zmq.Poller()
        poller.register(status_sock, zmq.POLLIN)
        if labels_sock is not None:
            poller.register(labels_sock, zmq.POLLIN)
        while not self.stop_requested:
            self._publish_metrics()
            events = dict(poller.poll(100))
            if status_sock in events:
                self._drain_status(status_sock)
            if labels_sock is not None and labels_sock in events:
                self._take_labels(labels_sock)
            self._check_processes()
            now = time.monotonic()
            if self.options.duration and now - t0 >= self.options.duration:
                break
            if self._source_finished():
                self._drain_status(status_sock)
                break
            if now >= next_status:
                next_status = now + STATUS_PERIOD_S
                if not self.options.quiet:
                    print(self.status_line(now - t0), file=self.err, flush=True)
        self.elapsed_s = time.monotonic() - t0
        return 0

    def _finish(self, status_sock: zmq.Socket) -> None:
        """After the stages have stopped: their last reports, the final line, the summary file."""
        self._drain_status(status_sock)
        if not self.options.quiet:
            print(self.status_line(self.elapsed_s, final=True), file=self.err, flush=True)
        if self.labels_received == 0 and (not self.stop_requested or self.counters(("capture", 0)).get("frames", 0)):
            print(f"no labels: {self.why_no_labels()}", file=self.err, flush=True)
        self._publish_metrics(force=True)
        if self.options.summary:
            Path(self.options.summary).write_text(json.dumps(self.summary(), indent=2))

    def _drain_status(self, sock: zmq.Socket) -> None:
        while True:
            try:
                raw = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._take_report(raw)

    def _take_report(self, raw: bytes) -> None:
        """One status message: checked field by field (schema.STATUS_FIELDS); a bad one is counted and dropped."""
        try:
            report = decode_status(raw)
        except BadStatus:
            self.malformed_status += 1
            return
        key = (report["stage"], report["worker"])
        stage = self._by_report_key.get(key)
        if stage is None:
            self.malformed_status += 1  # no stage of this run has that name and worker number
            return
        if stage.proc is None or report["pid"] != stage.proc.pid:
            return  # sent by an incarnation that has since died
        stage.last_report = time.monotonic()
        self.first_reports.add(key)
        self.reports[key] = {**self.reports.get(key, {}), **report}
        if key[0] == "classify":
            self.ended.update(report.get("ended", []))
        if key == ("capture", 0):
            self._say_source_errors(report)
        for line in report.get("say", [])[:16]:  # a stage's one-off line for the user (viewer URL, unwritable file)
            print(line[:500], file=self.err, flush=True)

    def _say_source_errors(self, capture: dict) -> None:
        """Why a live source is reconnecting: once per source and reason, not with every status line."""
        errors = capture.get("source_errors")
        if errors is None:
            return
        for source, reason in errors.items():
            if self._said_errors.get(source) != reason and not self.options.quiet:
                print(f"source {source} lost: {reason[:500]}; reconnecting with back-off", file=self.err, flush=True)
            self._said_errors[source] = reason
        for source in set(self._said_errors) - set(errors):
            del self._said_errors[source]  # back: a later loss is news again

    def _take_labels(self, sock: zmq.Socket) -> None:
        """Count (and print, unless asked not to) every label waiting on the subscriber socket."""
        show = self.options.print_labels and not self.options.quiet
        while True:
            try:
                label = decode_label(sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            except BadLabel:
                continue  # not a label (another program publishing on this endpoint): skipped, as `listen` does
            self.labels_received += 1
            if self._latency is not None:
                self._latency.observe(max(0, label["t_publish_ns"] - label["t_capture_ns"]) / 1e9)
            if show:
                print(format_label(label), file=self.out, flush=True)

    def _take_last_labels(self, sock: zmq.Socket | None, quiet_s: float = 0.2, most_s: float = 2.0) -> None:
        """After the stages stopped: the labels still on their way, until none came for `quiet_s`
        (at most `most_s`: another publisher on the endpoint must not hold the exit)."""
        deadline = time.monotonic() + most_s
        while sock is not None and time.monotonic() < deadline and sock.poll(int(quiet_s * 1000)):
            self._take_labels(sock)

    def _source_finished(self) -> bool:
        capture = self.reports.get(("capture", 0), {})
        if not capture.get("done"):
            return False
        started = set(capture.get("started", []))
        return started <= self.ended and self._sink_done(started)

    def _wait_for_downstream(self, status_sock: zmq.Socket) -> None:
        """Start the source only once every other stage has reported (sockets bound, models loaded).

        The first frames are then not spent waiting on start-up, subscribers that connected early
        get the first labels, and a sink writing frames (--record/--keypoints-out), which reads
        render's monitor PUB that cannot wait for it, has subscribed before the first frame.
        """
        needs_sink = bool(self.options.record or self.options.keypoints_out)

        def ready(stage: StageProcess) -> bool:
            report = self.reports.get(stage.report_key)
            if report is None:
                return False
            return bool(report.get("ready")) if needs_sink and stage.report_key == ("sink", 0) else True

        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and not self.stop_requested:
            self._publish_metrics()
            if all(ready(s) for s in self.stages if s.key != "capture"):
                break
            if status_sock.poll(50):
                self._drain_status(status_sock)
            self._check_processes()
        time.sleep(SUBSCRIBE_GRACE_S)

    def _sink_done(self, started: set[str], stall_s: float = 3.0) -> bool:
        sink = self.reports.get(("sink", 0))
        if not (self.options.record or self.options.keypoints_out) or sink is None or started <= set(sink.get("ended", [])):
            return True
        progress = (sink.get("frames"), len(sink.get("ended", [])))
        if progress != self._sink_progress:
            self._sink_progress, self._sink_moved = progress, time.monotonic()
        return time.monotonic() - self._sink_moved > stall_s

    def _check_processes(self) -> None:
        now = time.monotonic()
        for stage in self.stages:
            if stage.proc is None:
                continue  # not started yet (the capture waits for the others)
            code = stage.proc.poll()
            if code is None and not self.stop_requested:
                self._check_heartbeat(stage, now)
            if code is None or self.stop_requested:
                continue
            if code in FATAL_EXIT_CODES:
                raise _fatal(code, f"{stage.last_error() or f'stage {stage.key} exited with code {code}'}")
            now = time.monotonic()
            stage.recent_crashes.append(now)
            while stage.recent_crashes and now - stage.recent_crashes[0] > RESTART_WINDOW_S:
                stage.recent_crashes.popleft()
            if len(stage.recent_crashes) > self.options.max_restarts:
                raise StageError(
                    f"stage {stage.key} crashed {len(stage.recent_crashes)} times in {RESTART_WINDOW_S:.0f} s, giving up; "
                    f"last error: {stage.last_error() or f'exit code {code}'}"
                )
            stage.restarts += 1
            if not self.options.quiet:
                print(f"restarting {stage.key} (exit code {code})", file=self.err, flush=True)
            last = self.reports.pop(stage.report_key, {})
            self._carry(stage, last)
            for stream, count in last.get("frames_by_stream", {}).items():
                stage.carried_streams[stream] = stage.carried_streams.get(stream, 0) + count
            if stage.report_key == ("classify", 0) and "subscriptions" in last:
                # Anyone's subscribers, not only the run's: the new classifier waits for them to come back.
                stage.options = replace(stage.options, label_subscriptions=last["subscriptions"])
            stage.start(self._resume(stage, last))

    def _carry(self, stage: StageProcess, last: dict) -> None:
        """Add a dead incarnation's counters to the run's: its exact frame count, none counted twice."""
        assert stage.proc is not None and self.run_dir is not None
        path = tally_path(self.status_endpoint, stage.report_key[0], stage.report_key[1], stage.proc.pid)
        tally = read_tally(path) if path is not None else None
        reported = last.get("frames", 0)
        for name in CARRIED:
            stage.carried[name] = stage.carried.get(name, 0) + last.get(name, 0)
        if stage.report_key == ("capture", 0) and not last.get("live"):
            # The new capture re-sends RESUME_MARGIN frames before each stream's reported position,
            # and every frame after it: the dead one's count up to where the new one resumes.
            position = last.get("position", {})
            stage.carried["frames"] -= sum(min(RESUME_MARGIN, max(0, n - stage.resumed_at.get(s, 0)))
                                           for s, n in position.items())
        elif tally is not None and tally > reported:
            stage.carried["frames"] += tally - reported  # handled after its last report, before it died
            stage.unreported += tally - reported

    def _check_heartbeat(self, stage: StageProcess, now: float) -> None:
        """Kill a stage that is alive but silent (stopped reading, deadlocked); it is then restarted."""
        silent = now - (stage.last_report or stage.started_at)
        if silent > (HANG_S if stage.last_report else STARTUP_S):
            stage.hung += 1
            if not self.options.quiet:
                print(f"stage {stage.key} sent no heartbeat for {silent:.1f} s: killing it", file=self.err, flush=True)
            stage.proc.kill()
            stage.proc.wait()

    def _resume(self, stage: StageProcess, last: dict) -> str | None:
        """A restarted capture continues where it was: a recorded source from its frame, a live one numbering on."""
        if stage.report_key != ("capture", 0) or not last.get("position") and not last.get("ended"):
            return None
        # Lossless: re-send the frames that sat in the dead capture's queue. Live: number on (those are gone).
        margin = 0 if last.get("live") else RESUME_MARGIN
        position = {s: max(0, int(n) - margin) for s, n in last.get("position", {}).items()}
        stage.resumed_at = position
        return json.dumps({"ended": last.get("ended", []), "next": position})

    def counters(self, key: tuple[str, int]) -> dict:
        """A stage's last report with the counters of its earlier incarnations added."""
        report = dict(self.reports.get(key, {}))
        stage = self._by_report_key.get(key)
        if stage is not None:
            for name, value in stage.carried.items():
                report[name] = report.get(name, 0) + value
        return report

    def _shutdown(self) -> None:
        """SIGTERM every stage, SIGKILL what is left after the grace period: never an orphan.

        The MQTT bridge goes last, once the classifier's final labels are out, with time to hand
        what it holds to the broker.
        """
        first = [s.proc for s in self.stages if s.key != "bridge"]
        last = [s.proc for s in self.stages if s.key == "bridge"]
        _stop_processes(first, SHUTDOWN_GRACE_S)
        _stop_processes(last, BRIDGE_GRACE_S)

    # --- metrics (--metrics) -----------------------------------------------------------------
    def _serve_metrics(self) -> None:
        """Bind --metrics before any stage starts: a bad address exits 2, a port in use 4."""
        from engine.framework.metrics import RUN_METRICS, STAGE_METRICS, MetricsServer  # prometheus_client: only here

        self.metrics = MetricsServer(self.options.metrics, self._healthy, self._ready, {**STAGE_METRICS, **RUN_METRICS})
        self._latency = self.metrics.histogram(
            "capture_to_label_seconds", "capture-to-label latency of each label received (t_publish_ns - t_capture_ns)")
        self.metrics.start()

    def _healthy(self) -> tuple[bool, str]:
        assert self.metrics is not None
        if self.failing:
            return False, f"failing: {self.failing}"
        if not self.metrics.loop_alive():
            return False, "the supervisor's loop is stalled"
        now = time.monotonic()
        hung = [s.key for s in self.stages if s.silent(now)]
        if hung:
            return False, f"no heartbeat from {', '.join(hung)}"
        dead = [s.key for s in self.stages if s.proc is not None and s.proc.poll() is not None]
        if dead and not self.stop_requested:
            return False, f"restarting {', '.join(dead)}"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        waiting = [s.key for s in self.stages if s.report_key not in self.first_reports]
        if not self.stages or waiting:
            return False, f"waiting for {', '.join(waiting) or 'the stages to start'}"
        return True, "ok"

    def metric_values(self) -> dict[str, list[tuple[dict, float]]]:
        """Every figure /metrics serves (but the latency histogram), from the same counters as the summary."""
        now = time.monotonic()
        values: dict[str, list[tuple[dict, float]]] = {name: [] for name in (
            "frames_total", "fps", "busy_seconds_total", "ms_per_frame", "malformed_total", "restarts_total",
            "hangs_total", "up")}
        for stage in self.stages:
            stage_name, worker = stage.report_key
            labels = {"stage": stage_name, "worker": str(worker)} if stage_name == "pose" else {"stage": stage_name}
            report = self.reports.get(stage.report_key, {})
            counted = self.counters(stage.report_key)
            up = stage.proc is not None and stage.proc.poll() is None and stage.last_report is not None and not stage.silent(now)
            values["frames_total"].append((labels, counted.get("frames", 0)))
            values["fps"].append((labels, self._rate(stage.report_key)))
            values["ms_per_frame"].append((labels, report.get("ms_per_frame", 0.0)))
            values["busy_seconds_total"].append((labels, report.get("ms_per_frame", 0.0) * report.get("frames", 0) / 1e3))
            values["malformed_total"].append((labels, counted.get("malformed", 0)))
            values["restarts_total"].append((labels, stage.restarts))
            values["hangs_total"].append((labels, stage.hung))
            values["up"].append((labels, 1.0 if up else 0.0))
        values["queue_depth"] = [({"stage": "render"}, self.reports.get(("render", 0), {}).get("queue", 0))]
        values["dropped_total"] = [({"stage": "capture"}, self.counters(("capture", 0)).get("dropped", 0))]
        values["lost_total"] = [({}, self._lost())]
        values["labels_total"] = [({}, self.labels_received)]
        values["label_subscriptions"] = [({}, self.reports.get(("classify", 0), {}).get("subscriptions", 0))]
        values["malformed_status_total"] = [({}, self.malformed_status)]
        bridge = self._bridge_summary().get("bridge")
        if bridge is not None:
            values["mqtt_connected"] = [({}, 1.0 if bridge["connected"] else 0.0)]
            values["mqtt_labels_total"] = [({"outcome": name}, bridge.get(name, 0))
                                           for name in ("received", "published", "acknowledged", "dropped")]
            values["mqtt_buffered"] = [({}, bridge.get("buffered", 0))]
            values["mqtt_outages_total"] = [({}, bridge.get("outages", 0))]
        return values

    def _publish_metrics(self, force: bool = False) -> None:
        if self.metrics is None:
            return
        self.metrics.tick()
        now = time.monotonic()
        if force or now >= self._next_metrics:
            self._next_metrics = now + 0.25
            self.metrics.snapshot.set(self.metric_values())

    # --- reporting -----------------------------------------------------------------------
    def _lost(self) -> int:
        """Frames a stage held when it died: never a frame a live capture dropped (that is `dropped`).

        Render counts what dead pose workers and its own dead incarnations held (capture's notices);
        what a dead classifier held shows on the render-classify link: its sequence gaps, or for
        ended streams their length (frames render sent) less the frames classified, across
        classifier restarts, counting what a dead incarnation handled after its last report.
        """
        classify = self.counters(("classify", 0))
        stage = self._by_report_key.get(("classify", 0))
        current = self.reports.get(("classify", 0), {})
        seen = dict(current.get("frames_by_stream", {}))
        for stream, count in (stage.carried_streams if stage else {}).items():
            seen[stream] = seen.get(stream, 0) + count
        missing = sum(max(0, n - seen.get(stream, 0)) for stream, n in current.get("stream_lengths", {}).items())
        link = max(classify.get("gaps", 0), missing - (stage.unreported if stage else 0))
        return self.counters(("render", 0)).get("lost", 0) + max(0, link)

    def _is_silent(self, key: tuple[str, int]) -> bool:
        stage = self._by_report_key.get(key)
        return stage is not None and stage.silent(time.monotonic())

    def _rate(self, key: tuple[str, int], name: str = "rate") -> float:
        """A stage's last reported rate, or 0 while it is silent: a hung stage does no work."""
        return 0.0 if self._is_silent(key) else self.reports.get(key, {}).get(name, 0.0)

    def _hung_tag(self, key: tuple[str, int]) -> str:
        return " HUNG" if self._is_silent(key) else ""

    def _pose_workers(self) -> str:
        """`pose x2`, or `pose 2+1 remote` when capture says remote workers are connected."""
        workers = self.reports.get(("capture", 0), {}).get("workers")
        if workers is None:
            return f"pose x{sum(1 for key in self.reports if key[0] == 'pose')}"
        if workers["remote"]:
            return f"pose {workers['local']}+{workers['remote']} remote"
        return f"pose x{workers['local']}"

    def status_line(self, elapsed_s: float, final: bool = False) -> str:
        cap, ren, cls = self.counters(("capture", 0)), self.counters(("render", 0)), self.counters(("classify", 0))
        pose_keys = [key for key in self.reports if key[0] == "pose"]
        pose_rate = sum(self._rate(key) for key in pose_keys)
        pose_ms = max((self.reports[key].get("ms_per_frame", 0.0) for key in pose_keys), default=0.0)
        pose_hung = sum(1 for key in pose_keys if self._is_silent(key))
        in_flight = max(0, cap.get("frames", 0) - cls.get("frames", 0))
        lat = cls.get("latency_ms") or {}
        restarts = sum(s.restarts for s in self.stages)
        malformed = sum(self.counters(key).get("malformed", 0) for key in self.reports) + self.malformed_status
        reconnecting = cap.get("reconnecting") or []
        head = "done" if final else f"{elapsed_s:5.1f}s"
        capture, render, classify = ("capture", 0), ("render", 0), ("classify", 0)
        return (
            f"[{head}] capture {self._rate(capture):5.1f} fps{self._hung_tag(capture)} drop {cap.get('dropped', 0)}"
            + (f" RECONNECTING {', '.join(reconnecting)}" if reconnecting else "")
            + f" | {self._pose_workers()} {pose_rate:5.1f} fps {pose_ms:.1f} ms" + (f" {pose_hung} HUNG" if pose_hung else "")
            + f" | render {self._rate(render):5.1f} fps{self._hung_tag(render)} q {ren.get('queue', 0)}"
            f" | classify {self._rate(classify):5.1f} fps{self._hung_tag(classify)}"
            f" {self._rate(classify, 'label_rate'):4.1f} labels/s"
            f" | in flight {in_flight} | latency p50 {lat.get('p50', 0):.0f} p95 {lat.get('p95', 0):.0f} ms"
            f" | frames {cls.get('frames', 0)} labels {self.labels_received} lost {self._lost()}"
            f" | pose={self.backend} model={self.model_name} restarts {restarts}"
            + (f" malformed {malformed}" if malformed else "")
            + self._bridge_status()
        )

    def _bridge_status(self) -> str:
        """` | mqtt 120 sent 0 dropped`, `AWAY` while the broker is away; empty without --bridge."""
        report = self.reports.get(("bridge", 0))
        if report is None:
            return ""
        mqtt = report.get("mqtt", {})
        away = "" if report.get("connected") else " AWAY"
        return f" | mqtt{away}{self._hung_tag(('bridge', 0))} {mqtt.get('acknowledged', 0)} sent {mqtt.get('dropped', 0)} dropped"

    def summary(self) -> dict:
        """What a benchmark or a user's script wants after a run, from the stages' last reports.

        `labels` is what this supervisor received as a subscriber; `frames` and `lost` count
        across restarts (a dead incarnation's frames from its tally, not its last report).
        """

        def stage_fields(key: tuple[str, int]) -> dict:
            report = self.reports[key]  # the running incarnation's rate; frames of all of them
            span_s = (report.get("t_last_ns", 0) - report.get("t_first_ns", 0)) / 1e9
            frames = report.get("frames", 0)
            return {
                "frames": self.counters(key).get("frames", 0),
                "fps": (frames - 1) / span_s if frames > 1 and span_s > 0 else 0.0,
                "ms_per_frame": report.get("ms_per_frame", 0.0), "rate": self._rate(key), "hung": self._is_silent(key),
            }

        per_stage = {f"{stage}.{worker}" if stage == "pose" else stage: stage_fields((stage, worker))
                     for (stage, worker) in sorted(self.reports)}
        cls, cap, ren = self.counters(("classify", 0)), self.counters(("capture", 0)), self.counters(("render", 0))
        workers = cap.get("workers")
        return {
            "elapsed_s": self.elapsed_s, "backend": self.backend, "model": self.model_name,
            "pose_workers": self.options.workers(), "sources": list(self.options.source),
            "workers": dict(workers) if workers else {"local": self.options.workers(), "remote": 0},
            "frames": cls.get("frames", 0), "fps": per_stage.get("classify", {}).get("fps", 0.0),
            "labels": self.labels_received, "latency_ms": cls.get("latency_ms", {}),
            "frame_latency_ms": cls.get("frame_latency_ms", {}),
            "dropped": cap.get("dropped", 0), "lost": self._lost(), "late": ren.get("late", 0),
            "out_of_order": cls.get("out_of_order", 0),
            "malformed": sum(self.counters(key).get("malformed", 0) for key in self.reports),
            "malformed_status": self.malformed_status,
            "restarts": {s.key: s.restarts for s in self.stages if s.restarts},
            "hangs": {s.key: s.hung for s in self.stages if s.hung}, "per_stage": per_stage,
            **self._bridge_summary(),
        }

    def _bridge_summary(self) -> dict:
        """{"bridge": what the MQTT bridge did}, from its last report (its final one at exit); {} without --bridge."""
        report = self.reports.get(("bridge", 0))
        if report is None:
            return {}
        return {"bridge": {"received": report.get("frames", 0), "connected": bool(report.get("connected")),
                           **report.get("mqtt", {})}}

    # --- why a run made no labels ----------------------------------------------------------
    def why_no_labels(self) -> str:
        """One sentence from what the stages reported: no frames, too few for the model, or no person."""
        sources = ", ".join(self.options.source)
        capture = self.counters(("capture", 0))
        captured = capture.get("frames", 0)
        if captured == 0 and capture.get("read", 0) == 0:  # read: frames taken from the source, dropped ones too
            return (f"the source {sources} gave no frames (not a video, an empty file or folder, or a stream that never "
                    f"sent one): check that it plays, or point --source at another")
        published = self.counters(("classify", 0)).get("labels", 0)
        if published:
            return (f"the classifier published {published} labels on {self.labels_endpoint} but none arrived here: "
                    f"give --publish an address subscribers can connect to")
        longest = max(self._frames_per_stream().values(), default=0)
        needs = self._first_label_frames()
        if needs is not None and longest < needs[0]:
            frames, fps, contract = needs
            fix = self._shorter_window_fix(longest, fps, contract)
            what = "1 frame (a picture, not a video?)" if longest == 1 else f"{longest} frames"
            return (f"the longest stream of {sources} has {what} at {fps:g} fps, fewer than the {frames} model "
                    f"{self.model_name} needs for a first label ({contract.min_window} of its frames at {contract.fps:g} fps): "
                    f"use a longer clip, {fix}")
        found = self.counters(("render", 0)).get("people_frames")
        if found == 0:
            where = f"no person was found in any of the {captured} frames"
        else:  # found somewhere, or render does not say: tracks too short for a window
            where = f"no person was followed for {needs[0] if needs else 'enough'} frames in a row in the {captured} frames"
        return f"{where} of {sources}: make sure whole people are in view, or try another pose backend (--pose)"

    def _frames_per_stream(self) -> dict[str, int]:
        """Frames render passed on per stream (an ended stream's length), across classifier restarts."""
        stage = self._by_report_key.get(("classify", 0))
        report = self.reports.get(("classify", 0), {})
        seen = dict(report.get("frames_by_stream", {}))
        for stream, count in (stage.carried_streams if stage else {}).items():
            seen[stream] = seen.get(stream, 0) + count
        for stream, n in report.get("stream_lengths", {}).items():
            seen[stream] = max(seen.get(stream, 0), n)
        if not seen:  # nothing reached the classifier: what capture read
            return {"": self.counters(("capture", 0)).get("frames", 0)}
        return seen

    def _run_contract(self) -> Contract:
        contract = load_contract(self.options.model)
        return contract.with_min_window_s(self.options.min_window) if self.options.min_window else contract

    def _first_label_frames(self) -> tuple[int, float, Contract] | None:
        """(source frames a track needs for its first label, source fps, contract run), for the first recorded source."""
        contract = self._run_contract()
        fps = self._source_fps()
        if fps is None:
            return None
        return first_label_frames(contract, fps), fps, contract

    def _source_fps(self) -> float | None:
        """The frame rate of the first recorded source's first stream, as capture read it (None: all live)."""
        for text in self.options.source:
            spec = parse_source(text, self.options.mhad_root)
            if spec.live:
                continue
            readers = open_streams(spec)
            try:
                reader = next(readers, None)
                if reader is not None:
                    reader.close()
                    return float(reader.fps)
            except EngineError:
                continue
            finally:
                readers.close()
        return None

    def _shorter_window_fix(self, frames: int, fps: float, contract: Contract) -> str:
        """`--min-window S` when some shorter first window fits `frames`, else a model with a shorter window."""
        for model_frames in range(contract.min_window - 1, 0, -1):
            seconds = model_frames / contract.fps
            if first_label_frames(contract.with_min_window_s(seconds), fps) <= frames:
                return f"--min-window {seconds:.2f} (a first label after {seconds:.2f} s), or a model with a shorter window"
        return "or a model with a shorter window (even --min-window cannot make a first label from so few frames)"


def first_label_frames(contract: Contract, source_fps: float) -> int:
    """Source frames at `source_fps` a track needs before its first label: the classify stage's own windowing."""
    longest = int(math.ceil((contract.window + 1) / contract.fps * source_fps)) + 2
    keypoints = np.zeros((longest, 18, 3), np.float32)
    first = next(track_windows(contract, keypoints, source_fps), None)
    return first.seq_to + 1 if first is not None else longest + 1


def _fatal(code: int, message: str) -> EngineError:
    error = EngineError(message)
    error.exit_code = code
    return error


def run_engine(options: RunOptions) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return Supervisor(options).run()
