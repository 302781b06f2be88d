"""Sink stage: writes what the engine saw and said to files (annotated video, labels, keypoints).

It subscribes to the labels PUB and to render's monitor PUB, so it never slows the
pipeline. A thread takes frames off the socket as they come and holds up to
`--max-backlog-mb` of them while the writers catch up (drawing and encoding a frame takes
3-4 ms); frames past that budget are missing from the files, and counted. With `--lossless`
(render's record feed, a recorded source) nothing is dropped: the video's frames wait for
their labels, and the source waits for the video.
"""
from __future__ import annotations

import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from engine.framework import transport
from engine.framework.schema import LABELS_TOPIC, PROGRESS_TOPIC, decode_progress, hello_topic
from engine.framework.options import parse_options
from engine.framework.stage_options import SinkOptions
from engine.framework.stagekit import RECORD_FEED_HWM, RollingStats, StatusReporter, Stop, curve_keys, run_stage
from engine.viewer.backlog import Backlog
from engine.framework.schema import BadLabel, decode_label
from stages.sink_writers import KeypointsOutput, LabelsFile, SeqGaps, VideoRecorder
from engine.viewer.overlay import people_of

POLL_MS = 20
CONNECT_WAIT_S = 10.0
STOP_DRAIN_S = 0.3  # of the 1 s a stage has to exit: frames already received; closing the files comes first
# How long a recorded frame may wait for its labels, and how many may wait (memory: ~0.9 MB each at 640x480).
# Live: short, the video keeps up. Lossless: long enough for the classifier's first label (its
# window), and the source waits when they are all taken: a frame drawn early is a different video.
LIVE_DELAY = (30, 0.5)
LOSSLESS_DELAY = (128, 2.0)


def wait_connected(events: zmq.Socket, stop: Stop, timeout_s: float) -> bool:
    """Block until the monitored socket has completed a handshake (True), or stop/timeout (False).

    The supervisor starts the source only once the sink reports `ready`: a PUB sends
    nothing to a subscriber that is not connected yet, so the first frames would be lost.
    """
    deadline = time.monotonic() + timeout_s
    while not stop and time.monotonic() < deadline:
        if events.poll(POLL_MS) and recv_monitor_message(events)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_options(SinkOptions, argv, "engine stage sink", __doc__)

    stop = Stop()
    ctx = zmq.Context.instance()
    said: list[str] = []  # lines for the user, relayed by the supervisor with the next status report

    def error_line(message: str) -> None:
        line = f"warning: {message}"
        print(line, file=sys.stderr, flush=True)
        said.append(line)

    labels_sock = ctx.socket(zmq.SUB)
    labels_sock.setsockopt(zmq.RCVHWM, 100000)
    labels_sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    labels_sock.setsockopt(zmq.SUBSCRIBE, PROGRESS_TOPIC)  # classify's "labels up to frame N are out", for --record
    labels_sock.setsockopt(zmq.SUBSCRIBE, hello_topic("sink"))  # classify waits for it (schema.HELLO_PREFIX)
    keys = curve_keys(args)
    transport.connect(labels_sock, args.labels, "sink labels", keys)
    monitor = events = None
    if args.monitor and (args.record or args.keypoints_out):
        if args.lossless:
            monitor = ctx.socket(zmq.PULL)
            monitor.setsockopt(zmq.RCVHWM, RECORD_FEED_HWM)
        else:
            monitor = ctx.socket(zmq.SUB)
            # No limit here: ZeroMQ's own thread (no GIL) absorbs the moments our backlog thread is not
            # scheduled; that thread moves messages on and applies the budget in bytes.
            monitor.setsockopt(zmq.RCVHWM, 0)
            monitor.setsockopt(zmq.SUBSCRIBE, b"")
        monitor.setsockopt(zmq.RECONNECT_IVL, 10)  # render may bind a moment after this connect
        events = monitor.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)  # before connecting: no event missed
        transport.connect(monitor, args.monitor, "sink monitor", keys)
    elif args.record or args.keypoints_out:
        error_line("--record and --keypoints-out need --monitor (render's monitor endpoint); they are off")

    labels_file = LabelsFile(args.labels_out, error_line) if args.labels_out else None
    delay_frames, delay_s = LOSSLESS_DELAY if args.lossless else LIVE_DELAY
    recorder = VideoRecorder(args.record, error_line, delay_frames=delay_frames, delay_s=delay_s) \
        if args.record and monitor else None
    keypoints = KeypointsOutput(args.keypoints_out, error_line) if args.keypoints_out and monitor else None
    status = StatusReporter(ctx, args.status, "sink", args.worker)
    ready = events is None or wait_connected(events, stop, CONNECT_WAIT_S)
    backlog = None
    if monitor is not None:
        monitor.disable_monitor()
        events.close(linger=0)
        backlog = Backlog(monitor, int(args.max_backlog_mb * 2**20), lossless=args.lossless)
        backlog.start()
    stats = RollingStats()
    gaps = SeqGaps()
    ended: list[str] = []  # streams whose every frame is in the files
    ending: list[str] = []  # streams whose end came while the recorder still holds frames of them
    labels = malformed = 0

    def take_labels() -> None:
        """Every label and progress message waiting, in the order classify published them."""
        nonlocal labels, malformed
        while True:
            try:
                parts = labels_sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if parts and parts[0] == PROGRESS_TOPIC:
                progress = decode_progress(parts)
                if progress is None:
                    malformed += 1
                elif recorder is not None:
                    recorder.passed(*progress)
                continue
            try:
                label = decode_label(parts)
            except BadLabel:
                malformed += 1
                continue
            labels += 1
            if recorder is not None:
                recorder.label(label)
            if labels_file is not None:
                labels_file.write(label)

    def note_ended() -> None:
        for stream in [s for s in ending if recorder is None or recorder.complete(s)]:
            ending.remove(stream)
            ended.append(stream)

    def take_frames(limit: int) -> int:
        """Write up to `limit` monitor messages already received; returns how many were taken."""
        nonlocal malformed
        taken = 0
        for parts in backlog.take(limit) if limit > 0 else []:
            try:
                msg = transport.decode(parts)
            except transport.MalformedMessage:
                malformed += 1
                continue
            taken += 1
            if msg.header.get("eos"):
                ending.append(msg.stream)
                if recorder is not None:
                    recorder.end(msg.stream)  # its last frames still wait for their labels
                continue
            gaps.see(msg.stream, msg.seq)
            stats.add(time.time_ns())
            people = people_of(msg.arrays, msg.header.get("tracks", []))
            if keypoints is not None:
                keypoints.write(msg.stream, msg.seq, people)
            frame = msg.arrays.get("frame")
            if recorder is not None and frame is not None and frame.ndim == 3 and frame.shape[2] == 3:
                recorder.add(msg.stream, msg.seq, float(msg.header.get("fps") or 0), people, frame, time.monotonic())
        return taken

    def report(force: bool = False) -> None:
        status.send({"frames": gaps.seen, "rate": stats.rate(time.time_ns()), "missed": gaps.missed, "labels": labels,
                     "backlog_mb": round(backlog.bytes / 2**20, 1) if backlog else 0.0,
                     "malformed": malformed, "ready": ready, "ended": ended[-256:], "say": said[:]}, force=force or bool(said))
        said.clear()

    try:
        report(force=True)
        while not stop:
            can_take = backlog is not None and len(backlog) and (recorder is None or not args.lossless or recorder.room())
            if labels_sock.poll(0 if can_take else POLL_MS):
                take_labels()  # labels first: the recorder draws frames with the labels known so far
            if backlog is not None:
                # bounded, so labels and the stop flag are looked at often; lossless: no more than the recorder holds
                take_frames(min(64, recorder.room()) if recorder is not None and args.lossless else 64)
            if recorder is not None:
                recorder.flush(time.monotonic())
            note_ended()
            report()
        # Stopped: write what has already arrived, within the time a stage has to exit.
        deadline = time.monotonic() + STOP_DRAIN_S
        if backlog is not None:
            backlog.stop()
            while time.monotonic() < deadline and take_frames(8):
                take_labels()
    finally:
        # The shutdown path finishes every file: a SIGTERM leaves a playable video and a whole npz.
        take_labels()
        for output in (recorder, keypoints, labels_file):
            if output is not None:
                output.close()
        ended.extend(ending)  # closing wrote every frame held
        ending.clear()
        labels_sock.close(linger=0)
        if backlog is not None:
            backlog.stop()
    if gaps.missed:
        overflowed = backlog.overflowed if backlog else 0
        error_line(f"sink missed {gaps.missed} of {gaps.seen + gaps.missed} frames ({overflowed} past its "
                   f"{args.max_backlog_mb:.0f} MiB backlog, the rest dropped by the publisher): the pipeline outran "
                   f"the writers; they are missing from --record/--keypoints-out")
    report(force=True)
    ctx.destroy(linger=200)  # the last report, with that line, reaches the supervisor before exit
    return 0


if __name__ == "__main__":
    run_stage(main)
