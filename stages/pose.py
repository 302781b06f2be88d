"""Pose stage (one process per worker): frames in, COCO-18 keypoints out.

A worker connects a DEALER to capture's ROUTER and takes frames by credit
(engine.framework.dispatch); render, downstream, restores frame order, so a worker never
needs to see every frame. A frame marked `fresh` starts a chunk: the worker forgets the
stream's tracking state first, so its output depends on the chunk's frames only.
End-of-stream and lost-frame notices are passed on to render as they are.

Run alone on another host (`engine stage pose`, no `--status`), the worker says when it
reaches the engine, when the engine goes quiet, and exits when the engine ends (with `--stay`,
waits for the next one).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import zmq

from engine.framework import transport
from engine.framework.dispatch import BadControl, EngineLink, is_control, unpack_control
from engine.framework.options import parse_options
from engine.framework.stage_options import PoseStageOptions
from engine.framework.stagekit import StageMeter, StatusReporter, Stop, MAX_MESSAGE_BYTES, bounded, curve_keys, run_stage
from engine.sources.spec import REAL_MEDIA_MAX_PEOPLE
from pose import PoseOptions, create_backend
from pose.tracking import appearance_descriptors

POLL_MS = 100
CONTROL_ROOM = 64
# Keys a pose worker copies from the frame header to its output.
FORWARDED_KEYS = ("stream", "seq", "prev", "t_capture_ns", "fps", "size", "live", "dropped", "truth")


def main(argv: list[str] | None = None) -> int:
    args = parse_options(PoseStageOptions, argv, "engine stage pose", __doc__)

    stop = Stop()
    metrics = None
    if args.metrics:  # bound first: a port in use fails before the model loads (exit 4)
        from engine.framework.metrics import pose_metrics
        metrics = pose_metrics(args.metrics)
    options = PoseOptions(
        # 0: a worker started alone (`engine stage pose`) does not know its sources: real media's default
        backend=args.pose, max_people=args.max_people or REAL_MEDIA_MAX_PEOPLE, threads=args.pose_threads,
        weights_dir=args.pose_weights, replay_file=args.replay_file,
    )
    backend = create_backend(options)

    ctx = zmq.Context.instance()
    inbox = ctx.socket(zmq.DEALER)
    # Capture's credit bounds the frames queued here; the rest is room for its pings and notices,
    # and a bound on what a flood from a hostile peer can make this process hold.
    inbox.setsockopt(zmq.RCVHWM, max(1, args.hwm) + CONTROL_ROOM)
    inbox.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    inbox.setsockopt(zmq.LINGER, 0)
    keys = curve_keys(args)
    transport.connect(inbox, args.input, "pose input", keys)
    outbox = ctx.socket(zmq.PUSH)
    bounded(outbox)
    outbox.setsockopt(zmq.LINGER, 1000)
    transport.connect(outbox, args.output, "pose output", keys)
    remote = args.status is None
    link = EngineLink(inbox, max(1, args.hwm), args.worker, remote)
    say = (lambda line: print(f"pose worker: {line}", file=sys.stderr, flush=True)) if remote else (lambda line: None)
    say(f"waiting for the engine at {args.input} (frames) and {args.output} (poses)")
    status = StatusReporter(ctx, args.status, "pose", args.worker)
    meter = StageMeter()
    malformed = 0
    engine_quiet = False

    while not stop and not (remote and link.ended and not args.stay):
        if remote and link.ended:  # --stay
            say("the engine ended; waiting for the next one")
            backend.reset()
            link.wait_for_the_next()
            continue
        now = time.monotonic()
        link.report(now)
        if metrics is not None:
            metrics.update(meter, malformed, args.worker, connected=link.last_ping is not None and not link.silent(now))
        if link.silent(now) and not engine_quiet:
            engine_quiet = True
            say(f"no word from the engine at {args.input} for a few seconds; waiting for it (Ctrl-C to stop)")
        if inbox.poll(POLL_MS):
            parts = inbox.recv_multipart(copy=False)
            if is_control(parts):
                try:
                    line = link.heard(unpack_control(parts), time.monotonic())
                except BadControl:
                    malformed += 1
                    continue
                if engine_quiet or line:
                    say(line or "the engine is back")
                    engine_quiet = False
                continue
            try:
                msg = transport.decode(parts)
                frame = msg.arrays.get("frame") if not is_notice(msg.header) else None
                if not is_notice(msg.header):
                    if frame is None or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
                        raise transport.MalformedMessage("frame message without a uint8[H, W, 3] 'frame' array")
                    if "keypoints_gt" in msg.arrays:
                        transport.check_keypoints(msg.arrays["keypoints_gt"], "keypoints_gt")
            except transport.MalformedMessage:
                malformed += 1
                continue
            if is_notice(msg.header):
                transport.send(outbox, msg.header)  # render checks and counts it
                continue
            header = {k: msg.header[k] for k in FORWARDED_KEYS if k in msg.header}
            if msg.header.get("fresh"):
                backend.reset(msg.stream)
            t0 = time.perf_counter_ns()
            people = backend.estimate(frame, msg.stream, msg.seq, msg.arrays.get("keypoints_gt"))
            # Torso colours for render's tracker, read here where the frame is (a few bytes a person).
            arrays = {"keypoints": people.keypoints, "boxes": people.boxes,
                      "appearance": appearance_descriptors(frame, people.keypoints)}
            if args.forward_frames:
                arrays["frame"] = frame
            transport.send(outbox, {**header, "backend": backend.name}, arrays)
            link.finished_one(time.monotonic())
            meter.count(t0)
        status.send({**meter.fields(), "malformed": malformed, "backend": backend.name, "remote": remote})
    if remote and link.ended:
        say("the engine ended; exiting")
    status.send({**meter.fields(), "malformed": malformed, "backend": backend.name, "remote": remote}, force=True)
    if metrics is not None:
        metrics.close()
    backend.close()
    inbox.close(linger=0)
    outbox.close(linger=1000 if remote else 200)
    return 0


def is_notice(header: dict) -> bool:
    """End-of-stream or lost-frame notice: no frame, passed on to render."""
    return bool(header.get("eos")) or "lost_frames" in header


if __name__ == "__main__":
    run_stage(main)
