"""Render stage: restores frame order, gives people stable track ids, draws skeleton images.

Frames arrive chained (`prev`, see engine.classify.reorder); lost-frame notices from capture
are counted at once; what goes on to classify is numbered per stream (`index`), so classify
can tell a frame lost on its own link from one dropped or lost upstream.

What it sends per frame is exactly what the classifier's model needs (keypoints, and
skeleton images at the model's size for image models), built by the same
`frame_items` that evaluation uses.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import zmq

from engine.framework import transport
from engine.classify.runtime import frame_items
from engine.classify.contract import load_contract
from engine.classify.reorder import ReorderBuffer
from engine.framework.options import parse_options
from engine.framework.stage_options import RenderOptions
from engine.framework.stagekit import RECORD_FEED_HWM, StageMeter, StatusReporter, Stop, bounded, curve_keys, run_stage, send_when_ready
from pose.base import People
from pose.tracking import APPEARANCE_BINS, Tracker, appearance_descriptors

POLL_MS = 50
FORWARDED_KEYS = ("stream", "seq", "t_capture_ns", "fps", "size", "live", "dropped", "truth", "backend")
# Bounds on what a frame header may say about its place in the stream.
MAX_SEQ = 1 << 62
MAX_LOST_NOTICE = 4096


@dataclass
class StreamState:
    buffer: ReorderBuffer
    tracker: Tracker = field(default_factory=Tracker)
    ended: bool = False
    sent: int = 0  # frames sent on to classify


def chain_fields(header: dict) -> tuple[int, int]:
    """(prev, dropped) of a frame or end-of-stream header, checked: prev in [-1, seq), dropped >= 0."""
    prev = header.get("prev", header["seq"] - 1)
    dropped = header.get("dropped", 0)
    if isinstance(prev, bool) or not isinstance(prev, int) or not -1 <= prev < header["seq"]:
        raise transport.MalformedMessage(f"header prev={prev!r} must be an integer in [-1, seq)")
    if isinstance(dropped, bool) or not isinstance(dropped, int) or not 0 <= dropped <= MAX_SEQ:
        raise transport.MalformedMessage(f"header dropped={dropped!r} must be a non-negative integer")
    return prev, dropped


def lost_frames(header: dict) -> list[tuple[int, int]]:
    """The (seq, prev) pairs of a lost-frame notice, checked."""
    frames = header["lost_frames"]
    if not isinstance(frames, list) or not 0 < len(frames) <= MAX_LOST_NOTICE:
        raise transport.MalformedMessage("lost_frames must be a non-empty list")
    pairs = []
    for pair in frames:
        if (not isinstance(pair, list) or len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)
                or not 0 <= pair[0] <= MAX_SEQ or not -1 <= pair[1] < pair[0]):
            raise transport.MalformedMessage(f"lost_frames entry {pair!r} is not [seq, prev] with -1 <= prev < seq")
        pairs.append((pair[0], pair[1]))
    return pairs


def appearance_of(msg: transport.Message) -> np.ndarray | None:
    """The people's torso colours for the tracker: as the pose worker sent them (`appearance`),
    else from a forwarded frame, else None (motion alone). Pose workers send them so that the
    ids are the same whether or not frames are forwarded to a viewer."""
    if "appearance" in msg.arrays:
        return msg.arrays["appearance"]
    frame = msg.arrays.get("frame")
    if frame is None or len(msg.arrays["keypoints"]) == 0:
        return None
    return appearance_descriptors(frame, msg.arrays["keypoints"])


def check_appearance(msg: transport.Message, people: int) -> None:
    """What the tracker reads colours from: a pose worker's `appearance`, float32[P, APPEARANCE_BINS]
    of finite, non-negative histograms, and a forwarded `frame`, uint8[H, W, 3]."""
    frame = msg.arrays.get("frame")
    if frame is not None and (frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3):
        raise transport.MalformedMessage("frame must be uint8[H, W, 3]")
    hist = msg.arrays.get("appearance")
    if hist is not None and (hist.dtype != np.float32 or hist.shape != (people, APPEARANCE_BINS)
                             or not np.isfinite(hist).all() or (hist < 0).any()):
        raise transport.MalformedMessage(f"appearance must be finite, non-negative float32[P, {APPEARANCE_BINS}]")


def main(argv: list[str] | None = None) -> int:
    args = parse_options(RenderOptions, argv, "engine stage render", __doc__)

    stop = Stop()
    contract = load_contract(args.model)
    ctx = zmq.Context.instance()
    inbox = ctx.socket(zmq.PULL)
    bounded(inbox)
    keys = curve_keys(args)
    transport.bind(inbox, args.input, "render input", keys)
    outbox = ctx.socket(zmq.PUSH)
    bounded(outbox)
    outbox.setsockopt(zmq.LINGER, 1000)
    transport.connect(outbox, args.output, "render output")
    monitor = None
    if args.monitor:
        # PUB drops for slow subscribers: a viewer or recorder never holds the pipeline back.
        monitor = ctx.socket(zmq.PUB)
        monitor.setsockopt(zmq.SNDHWM, 64)
        monitor.setsockopt(zmq.LINGER, 0)
        transport.bind(monitor, args.monitor, "render monitor", keys)
    record_out = None
    if args.record_output:
        # Backpressure, not drops: a recording of a recorded source gets every frame, and the
        # source slows down to the recorder's pace.
        record_out = bounded(ctx.socket(zmq.PUSH), hwm=RECORD_FEED_HWM)
        record_out.setsockopt(zmq.LINGER, 1000)
        transport.bind(record_out, args.record_output, "render record output", keys)
    status = StatusReporter(ctx, args.status, "render", args.worker)
    meter = StageMeter()
    streams: dict[str, StreamState] = {}
    ended_streams: deque[str] = deque(maxlen=1024)
    malformed = lost_total = late = people_frames = 0  # people_frames: frames with someone in them

    def emit(state: StreamState, msg: transport.Message) -> None:
        nonlocal people_frames
        t0 = time.perf_counter_ns()
        header = {k: msg.header[k] for k in FORWARDED_KEYS if k in msg.header}
        if msg.header.get("eos"):
            transport.send(outbox, {**header, "eos": True, "lost": state.buffer.lost})
            if monitor is not None:
                transport.send(monitor, {**header, "eos": True})
            if record_out is not None:
                send_when_ready(record_out, {**header, "eos": True}, None, stop)
            state.ended = True
            return
        size = msg.header.get("size") or [0, 0]
        people = state.tracker.update(People(msg.arrays["keypoints"], msg.arrays["boxes"]), tuple(size),
                                      appearance=appearance_of(msg))
        if len(people):
            people_frames += 1
        items = frame_items(contract, people.keypoints)
        header.update(tracks=[int(t) for t in people.tracks], lost=state.buffer.lost, index=state.sent)
        transport.send(outbox, header, items)
        state.sent += 1
        if monitor is not None or record_out is not None:
            shown = {"keypoints": people.keypoints, "boxes": people.boxes}
            if "frame" in msg.arrays:
                shown["frame"] = msg.arrays["frame"]
            if monitor is not None:
                transport.send(monitor, header, shown)
            if record_out is not None:
                send_when_ready(record_out, header, shown, stop)
        meter.count(t0)

    def report(force: bool = False) -> None:
        status.send({
            **meter.fields(), "malformed": malformed,
            "queue": int(sum(len(s.buffer) for s in streams.values())),
            "lost": lost_total + sum(s.buffer.lost for s in streams.values()),
            "late": late + sum(s.buffer.late for s in streams.values()),
            "people_frames": people_frames,
        }, force=force)

    while not stop:
        now = time.monotonic()
        if inbox.poll(POLL_MS):
            try:
                msg = transport.recv(inbox)
                notice = lost_frames(msg.header) if "lost_frames" in msg.header else None
                prev, dropped = chain_fields(msg.header) if notice is None else (0, 0)
                if notice is None and not msg.header.get("eos"):
                    people = transport.people_count(msg, ("keypoints", "boxes"))
                    check_appearance(msg, people)
                    boxes = msg.arrays["boxes"]
                    if boxes.ndim != 2 or boxes.shape[1] != 4:
                        raise transport.MalformedMessage("boxes must be [P, 4]")
                    transport.header_ints(msg.header, "size", 2, 0, 1 << 16)
            except transport.MalformedMessage:
                malformed += 1
                continue
            if msg.stream in ended_streams:
                late += 1 if notice is None else 0  # a frame given up on before its stream ended
                continue
            state = streams.get(msg.stream)
            if (state is not None and notice is None and state.buffer.last is not None
                    and msg.seq + args.reorder_capacity < state.buffer.last):
                state = None  # far behind what came before: the stream started over (a source restarted elsewhere)
            if state is None:
                # A stream that starts over goes on with its ids: a new person never takes an old id.
                first_id = streams[msg.stream].tracker.next_id if msg.stream in streams else 0
                state = streams[msg.stream] = StreamState(ReorderBuffer(args.reorder_capacity, args.reorder_timeout),
                                                          Tracker(first_id=first_id))
            if notice is not None:
                ready = [r for seq, prev in notice for r in state.buffer.mark_lost(seq, prev, now)]
            else:
                ready = state.buffer.push(msg.seq, msg, now, prev, dropped)
            for _, item in ready:
                emit(state, item)
        for name, state in list(streams.items()):
            for _, ready in state.buffer.poll(now):
                emit(state, ready)
            if state.ended:
                lost_total += state.buffer.lost
                late += state.buffer.late
                ended_streams.append(name)
                del streams[name]
        report()
    report(force=True)
    inbox.close(linger=0)
    outbox.close(linger=200)
    for sock in (monitor, record_out):
        if sock is not None:
            sock.close(linger=0)
    return 0


if __name__ == "__main__":
    run_stage(main)
