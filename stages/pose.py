"""Pose stage (one process per worker): frames in, COCO-18 keypoints out.

Workers share one PUSH socket upstream (ZeroMQ load-balances) and one render stage
downstream, which restores frame order; a worker therefore never needs to see every frame.
"""
from __future__ import annotations

import time

import numpy as np
import zmq

from engine.framework import transport
from engine.framework.options import parse_options
from engine.framework.stage_options import PoseStageOptions
from engine.framework.stagekit import StageMeter, StatusReporter, Stop, MAX_MESSAGE_BYTES, bounded, curve_keys, run_stage
from pose import PoseOptions, create_backend

POLL_MS = 100
# Keys a pose worker copies from the frame header to its output.
FORWARDED_KEYS = ("stream", "seq", "t_capture_ns", "fps", "size", "live", "dropped", "truth")


def main(argv: list[str] | None = None) -> int:
    args = parse_options(PoseStageOptions, argv, "engine stage pose", __doc__)

    stop = Stop()
    options = PoseOptions(
        backend=args.pose, max_people=args.max_people, threads=args.pose_threads,
        weights_dir=args.pose_weights, replay_file=args.replay_file,
    )
    backend = create_backend(options)

    ctx = zmq.Context.instance()
    inbox = ctx.socket(zmq.PULL)
    inbox.setsockopt(zmq.RCVHWM, args.hwm)
    inbox.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    keys = curve_keys(args)
    transport.connect(inbox, args.input, "pose input", keys)
    outbox = ctx.socket(zmq.PUSH)
    bounded(outbox)
    outbox.setsockopt(zmq.LINGER, 1000)
    transport.connect(outbox, args.output, "pose output", keys)
    status = StatusReporter(ctx, args.status, "pose", args.worker)
    meter = StageMeter()
    malformed = 0

    while not stop:
        if inbox.poll(POLL_MS):
            try:
                msg = transport.recv(inbox)
                frame = msg.arrays.get("frame") if not msg.header.get("eos") else None
                if not msg.header.get("eos"):
                    if frame is None or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
                        raise transport.MalformedMessage("frame message without a uint8[H, W, 3] 'frame' array")
                    if "keypoints_gt" in msg.arrays:
                        transport.check_keypoints(msg.arrays["keypoints_gt"], "keypoints_gt")
            except transport.MalformedMessage:
                malformed += 1
                continue
            header = {k: msg.header[k] for k in FORWARDED_KEYS if k in msg.header}
            if msg.header.get("eos"):
                transport.send(outbox, {**header, "eos": True})
                continue
            t0 = time.perf_counter_ns()
            people = backend.estimate(frame, msg.stream, msg.seq, msg.arrays.get("keypoints_gt"))
            arrays = {"keypoints": people.keypoints, "boxes": people.boxes}
            if args.forward_frames:
                arrays["frame"] = frame
            transport.send(outbox, {**header, "backend": backend.name}, arrays)
            meter.count(t0)
        status.send({**meter.fields(), "malformed": malformed, "backend": backend.name})
    status.send({**meter.fields(), "malformed": malformed, "backend": backend.name}, force=True)
    backend.close()
    inbox.close(linger=0)
    outbox.close(linger=200)
    return 0


if __name__ == "__main__":
    run_stage(main)
