"""Classify stage: a sliding window per track through the ONNX model; labels out on PUB `labels`.

The window, stride, frame rate and labels come from the model's metadata (the model
contract), so this stage needs no other configuration.
"""
from __future__ import annotations

import time

import numpy as np
import zmq

from engine.framework import transport
from engine.classify.runtime import ClassifierRuntime, item_spec
from engine.framework.schema import encode_label
from engine.framework.options import parse_options
from engine.framework.stage_options import ClassifyStageOptions
from engine.framework.stagekit import LABELS_HWM, RollingStats, StageMeter, StatusReporter, Stop, bounded, curve_keys, run_stage

POLL_MS = 50
PUBLISH_GRACE_S = 0.5


class StreamAudit:
    """Checks the lossless promise as frames arrive: counts, order, duplicates per stream."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}  # frames classified per stream (each seq once)
        self.lengths: dict[str, int] = {}  # frames each ended stream had, from its end-of-stream marker
        self.last: dict[str, int] = {}
        self.out_of_order = 0
        self.gaps = 0  # frames missing between two that arrived: lost upstream (or dropped by a live capture)

    def see(self, stream: str, seq: int) -> None:
        last = self.last.get(stream)
        if last is not None and seq <= last:
            self.out_of_order += 1
            return
        if last is not None:
            self.gaps += seq - last - 1
        self.last[stream] = seq
        self.frames[stream] = self.frames.get(stream, 0) + 1


def main(argv: list[str] | None = None) -> int:
    args = parse_options(ClassifyStageOptions, argv, "engine stage classify", __doc__)

    stop = Stop()
    runtime = ClassifierRuntime(args.model, args.classify)
    model_name = runtime.model_name
    ctx = zmq.Context.instance()
    inbox = ctx.socket(zmq.PULL)
    bounded(inbox)
    transport.bind(inbox, args.input, "classify input")
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, LABELS_HWM)
    pub.setsockopt(zmq.LINGER, 500)
    transport.bind(pub, args.publish, "labels publisher", curve_keys(args))
    # Subscribers reconnect about every 100 ms; after a restart, give them time to subscribe again
    # before labels flow, or the first ones are published to nobody.
    time.sleep(PUBLISH_GRACE_S)
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
        }, force=force)

    while not stop:
        if inbox.poll(POLL_MS):
            try:
                msg = transport.recv(inbox)
                header = msg.header
                if not header.get("eos"):
                    # everything render sends here is per person: the model's items and the keypoints
                    people = transport.people_count(msg, tuple(dict.fromkeys((*runtime.keys, *msg.arrays))))
                    tracks = np.asarray(transport.header_ints(header, "tracks", people), dtype=np.int32)
                    fps = transport.header_number(header, "fps", runtime.contract.fps, 0.1, 1000.0)
                    for key in runtime.keys:
                        dtype, shape = item_spec(runtime.contract, key)
                        if msg.arrays[key].dtype != dtype or msg.arrays[key].shape[1:] != shape:
                            raise transport.MalformedMessage(f"{key} must be {dtype}[P, {shape}] for this model")
            except transport.MalformedMessage:
                malformed += 1
                continue
            if header.get("eos"):
                runtime.end_stream(msg.stream)
                ended.append(msg.stream)
                audit.lengths[msg.stream] = msg.seq
                lost += int(header.get("lost", 0))
                report(force=True)
                continue
            t0 = time.perf_counter_ns()
            audit.see(msg.stream, msg.seq)
            results = runtime.update(msg.stream, msg.seq, fps, tracks,
                                     msg.arrays, header["t_capture_ns"])
            for result in results:
                t_publish_ns = time.time_ns()
                pub.send_multipart(encode_label(result.as_dict(), t_publish_ns))
                labels += 1
                label_stats.add(t_publish_ns, (t_publish_ns - result.t_capture_ns) / 1e6)
            meter.count(t0, (time.time_ns() - header["t_capture_ns"]) / 1e6)
        report()
    report(force=True)
    inbox.close(linger=0)
    pub.close(linger=500)
    return 0


if __name__ == "__main__":
    run_stage(main)
