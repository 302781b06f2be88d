"""Classify stage: a sliding window per track through the ONNX model; labels out on PUB `labels`.

The window, stride, frame rate and labels come from the model's metadata (the model
contract), so this stage needs no other configuration. With `--pair-model`, a two-person
model runs beside it on the pairs of tracks that are close together (engine.classify.pairing),
and its labels go out on the same topic with `kind: "pair"` and both track ids in `tracks`.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import zmq

from engine.errors import ModelError
from engine.framework import transport
from engine.classify.pairing import PairRuntime
from engine.classify.runtime import ClassifierRuntime, item_spec
from engine.framework.schema import LABELS_TOPIC, encode_label, encode_progress, hello_name
from engine.framework.options import parse_options
from engine.framework.stage_options import ClassifyStageOptions
from engine.framework.stagekit import LABELS_HWM, RollingStats, StageMeter, StatusReporter, Stop, bounded, curve_keys, run_stage

POLL_MS = 50
PUBLISH_GRACE_S = 0.5
SUBSCRIBERS_WAIT_S = 5.0


class StreamAudit:
    """Checks the lossless promise as frames arrive: counts, order, duplicates per stream.

    Render numbers what it sends per stream (`index`), so a gap here is a frame lost on the
    render-classify link, never one a live capture dropped or one render already counted lost.
    """

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}  # frames classified per stream (each seq once)
        self.lengths: dict[str, int] = {}  # frames each ended stream sent on (its length less live drops)
        self.last: dict[str, tuple[int, int]] = {}  # (seq, index) of the last frame per stream
        self.out_of_order = 0
        self.gaps = 0

    def see(self, stream: str, seq: int, index: int | None) -> None:
        last = self.last.get(stream)
        if last is not None and seq <= last[0]:
            self.out_of_order += 1
            return
        if last is not None and index is not None and index > last[1]:
            self.gaps += index - last[1] - 1
        self.last[stream] = (seq, index if index is not None else (last[1] + 1 if last else 0))
        self.frames[stream] = self.frames.get(stream, 0) + 1


def end_of_stream(header: dict) -> tuple[int, int]:
    """(frames the stream sent on, frames lost upstream) of an end-of-stream marker, checked.

    The stream's `seq` is its length; a live capture says how many of those it dropped on purpose.
    """
    dropped = transport.header_number(header, "dropped", 0, 0, header["seq"])
    lost = transport.header_number(header, "lost", 0, 0, header["seq"])
    if not dropped.is_integer() or not lost.is_integer():
        raise transport.MalformedMessage("end-of-stream dropped and lost must be integers")
    return header["seq"] - int(dropped), int(lost)


class Subscriptions:
    """What classify's XPUB has heard (XPUB_VERBOSER: every subscription and every unsubscription,
    a subscriber's leaving included): the engine's own subscribers by their hellos, and how many
    subscriptions to labels are live, anyone's (`engine listen`, a user's program). A restarted
    classifier waits for as many of those as its previous incarnation had, so a subscriber slow
    to reconnect still gets the first labels after the restart."""

    def __init__(self) -> None:
        self.hellos: set[str] = set()
        self.to_labels = 0

    def read(self, pub: zmq.Socket) -> None:
        """Take the (un)subscription messages waiting on the XPUB."""
        while True:
            try:
                message = pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            name = hello_name(message)
            if name is not None:
                self.hellos.add(name)
            elif message[:1] in (b"\x00", b"\x01") and LABELS_TOPIC.startswith(message[1:]):
                self.to_labels = max(0, self.to_labels + (1 if message[:1] == b"\x01" else -1))


def wait_for_subscribers(pub: zmq.Socket, own: int, to_labels: int = 0) -> Subscriptions:
    """What the XPUB heard within the grace, or longer (SUBSCRIBERS_WAIT_S at most) until `own` of
    the engine's subscribers (their hellos) and `to_labels` subscriptions to labels came."""
    start = time.monotonic()
    heard = Subscriptions()
    while True:
        elapsed = time.monotonic() - start
        if (elapsed >= SUBSCRIBERS_WAIT_S or elapsed >= PUBLISH_GRACE_S and len(heard.hellos) >= own
                and heard.to_labels >= to_labels):
            return heard
        if pub.poll(20):
            heard.read(pub)


def main(argv: list[str] | None = None) -> int:
    args = parse_options(ClassifyStageOptions, argv, "engine stage classify", __doc__)

    stop = Stop()
    runtime = ClassifierRuntime(args.model, args.classify)
    if runtime.contract.input_kind == "pair":
        raise ModelError(f"{args.model}: a two-person model (input_kind 'pair') labels pairs of people; "
                         "pass it as --pair-model beside a one-person --model")
    pair_options = args.classify if args.pair_unknown_below is None else replace(args.classify, unknown_below=args.pair_unknown_below)
    pairs = PairRuntime(args.pair_model, pair_options) if args.pair_model else None
    model_name = runtime.model_name
    needed = tuple(dict.fromkeys((*runtime.keys, *(("keypoints",) if pairs else ()))))
    ctx = zmq.Context.instance()
    inbox = ctx.socket(zmq.PULL)
    bounded(inbox)
    transport.bind(inbox, args.input, "classify input")
    # XPUB: a PUB that hears each subscription, so it can wait for the engine's own subscribers.
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_VERBOSER, 1)  # every subscriber's (un)subscription, not only a topic's first and last
    pub.setsockopt(zmq.SNDHWM, LABELS_HWM)
    pub.setsockopt(zmq.LINGER, 500)
    transport.bind(pub, args.publish, "labels publisher", curve_keys(args))
    # Subscribers reconnect about every 100 ms; after a restart, give them time to subscribe again
    # before labels flow, or the first ones are published to nobody. The supervisor says how many
    # subscribers it started (itself, the sink, the viewer, the bridge), each known by its hello
    # (engine.framework.schema.hello_topic): those are waited for, a few seconds at most, and
    # after a restart as many subscriptions to labels as the previous classifier last reported.
    heard = wait_for_subscribers(pub, args.subscribers, args.label_subscriptions)
    status = StatusReporter(ctx, args.status, "classify", args.worker)
    meter, label_stats = StageMeter(), RollingStats()
    audit = StreamAudit()
    ended: list[str] = []
    labels = malformed = lost = 0

    def report(force: bool = False) -> None:
        now_ns = time.time_ns()
        status.send({
            **meter.fields(), "labels": labels, "label_rate": label_stats.rate(now_ns),
            "latency_ms": label_stats.latency(), "frame_latency_ms": meter.rolling.latency(), "malformed": malformed,
            "ended": ended[-256:], "frames_by_stream": dict(list(audit.frames.items())[-256:]),
            "stream_lengths": dict(list(audit.lengths.items())[-256:]),
            "out_of_order": audit.out_of_order, "gaps": audit.gaps, "lost": lost, "model": model_name,
            "subscriptions": heard.to_labels,
        }, force=force)

    while not stop:
        if inbox.poll(POLL_MS):
            try:
                msg = transport.recv(inbox)
                header = msg.header
                if header.get("eos"):
                    stream_frames, stream_lost = end_of_stream(header)
                else:
                    index = transport.header_number(header, "index", 0, 0, header["seq"]) if "index" in header else None
                    # everything render sends here is per person: the model's items and the keypoints
                    people = transport.people_count(msg, tuple(dict.fromkeys((*runtime.keys, *msg.arrays))))
                    tracks = np.asarray(transport.header_ints(header, "tracks", people), dtype=np.int32)
                    fps = transport.header_number(header, "fps", runtime.contract.fps, 0.1, 1000.0)
                    for key in needed:
                        if key not in msg.arrays:
                            raise transport.MalformedMessage(f"{key} is missing: this model needs it")
                        dtype, shape = item_spec(runtime.contract, key)
                        if msg.arrays[key].dtype != dtype or msg.arrays[key].shape[1:] != shape:
                            raise transport.MalformedMessage(f"{key} must be {dtype}[P, {shape}] for this model")
            except transport.MalformedMessage:
                malformed += 1
                continue
            if header.get("eos"):
                runtime.end_stream(msg.stream)
                if pairs is not None:
                    pairs.end_stream(msg.stream)
                pub.send_multipart(encode_progress(msg.stream, None))
                ended.append(msg.stream)
                audit.lengths[msg.stream] = stream_frames
                lost += stream_lost
                report(force=True)
                continue
            t0 = time.perf_counter_ns()
            audit.see(msg.stream, msg.seq, None if index is None else int(index))
            results = runtime.update(msg.stream, msg.seq, fps, tracks,
                                     msg.arrays, header["t_capture_ns"])
            if pairs is not None:
                results += pairs.update(msg.stream, msg.seq, fps, tracks, msg.arrays["keypoints"], header["t_capture_ns"])
            for result in results:
                t_publish_ns = time.time_ns()
                pub.send_multipart(encode_label(result.as_dict(), t_publish_ns))
                labels += 1
                label_stats.add(t_publish_ns, (t_publish_ns - result.t_capture_ns) / 1e6)
            pub.send_multipart(encode_progress(msg.stream, msg.seq))  # this frame's labels are all out
            meter.count(t0, (time.time_ns() - header["t_capture_ns"]) / 1e6)
        subscribed = heard.to_labels
        heard.read(pub)  # later (un)subscriptions: counted, and read so they never pile up
        report(force=heard.to_labels != subscribed)  # the supervisor knows whom a restart should wait for
    report(force=True)
    inbox.close(linger=0)
    pub.close(linger=500)
    return 0


if __name__ == "__main__":
    run_stage(main)
