"""The summary's counts are what subscribers and output files saw, across a classifier restart,
and `lost` is only what a dead stage held. Real engines, real sockets, loopback only."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from pipeline_helpers import Engine, Subscriber, child_stage, free_port, wait_gone

LONG_SOURCE = "synthetic:?loops=1&subjects=8-10&seed=3"  # several thousand frames, one person in each
# What a SIGKILLed classifier still held in its ZeroMQ queues is gone with it: a few labels, more on a
# loaded machine, and a different few for each subscriber's connection (seen: the sink got the dead
# classifier's last label, the supervisor and another subscriber did not).
QUEUED_AT_KILL = 10


def test_classify_killed_mid_run_summary_counts_what_subscribers_received(tmp_path: Path, per_frame_model: Path) -> None:
    summary, labels_out = tmp_path / "summary.json", tmp_path / "labels.jsonl"
    engine = Engine("--source", LONG_SOURCE, "--pose", "replay", "--model", str(per_frame_model), "--pose-workers", "1",
                    "--summary", str(summary), "--labels-out", str(labels_out))
    try:
        assert engine.subscriber.wait_for(300, timeout=60), "no labels before the kill"
        os.kill(child_stage(engine.proc.pid, "stages.classify"), signal.SIGKILL)  # mid-run: labels flowing
    finally:
        code, _, err = engine.wait(timeout=180)
    assert code == 0, err
    result = json.loads(summary.read_text())
    assert result["restarts"] == {"classify": 1}
    received = engine.labels
    in_file = labels_out.read_text().splitlines()
    # Three subscribers: the supervisor (the summary's count), the sink (the file) and this test's. They
    # differ only by what the dead classifier held for each; a count taken from classify's own reports
    # (every 0.5 s) would be off by every label since its last one, up to hundreds here.
    assert abs(result["labels"] - len(received)) <= QUEUED_AT_KILL, (result["labels"], len(received))
    assert abs(len(in_file) - len(received)) <= QUEUED_AT_KILL, (len(in_file), len(received))
    # One label per frame classified (window 1, one person per frame), none twice; a kill may fall
    # between a frame's label going out and the frame being counted, or catch labels still queued.
    labelled = {(label["stream"], label["seq_to"]) for label in received}
    assert len(labelled) == len(received), "a label came twice"
    assert abs(result["frames"] - len(labelled)) <= QUEUED_AT_KILL, (result["frames"], len(labelled))
    # Every frame read was classified or held by the dead classifier: none counted twice, none vanished.
    read = result["per_stage"]["capture"]["frames"]
    assert result["frames"] + result["lost"] == read
    assert abs(result["lost"] - (read - len(labelled))) <= QUEUED_AT_KILL


def test_a_subscriber_slow_to_reconnect_gets_every_label_after_a_classifier_restart(
        tmp_path: Path, per_frame_model: Path) -> None:
    """Anyone's subscriber, not only the run's own: one that retries its connection every 1.5-3 s
    (ZeroMQ's default is 0.1 s) is still there for the restarted classifier's first label, and
    from then on gets exactly what the run's own subscribers get."""
    summary, labels_out = tmp_path / "summary.json", tmp_path / "labels.jsonl"
    port = free_port()
    slow = Subscriber(f"tcp://127.0.0.1:{port}", reconnect_ivl_ms=1500)
    slow.start()
    slow.ready.wait(5)
    engine = Engine("--source", LONG_SOURCE, "--pose", "replay", "--model", str(per_frame_model), "--pose-workers", "1",
                    "--summary", str(summary), "--labels-out", str(labels_out), port=port)
    try:
        assert slow.wait_for(300, timeout=60), "no labels before the kill"
        classify = child_stage(engine.proc.pid, "stages.classify")
        os.kill(classify, signal.SIGKILL)
        wait_gone(classify)
        child_stage(engine.proc.pid, "stages.classify")  # the new one: it publishes nothing in its first 0.5 s
        restarted_ns = time.time_ns()
    finally:
        code, _, err = engine.wait(timeout=180)
        slow.stop()
    assert code == 0, err
    assert json.loads(summary.read_text())["restarts"] == {"classify": 1}
    # Only the new classifier's labels: the dead one's last few may have reached one subscriber and not another.
    after = [json.loads(line) for line in labels_out.read_text().splitlines()]
    after = [(lab["stream"], lab["track"], lab["seq_to"]) for lab in after if lab["t_publish_ns"] > restarted_ns]
    assert len(after) > 100, "the restarted classifier published too little to tell"
    got = {(lab["stream"], lab["track"], lab["seq_to"]) for lab in slow.labels}
    missed = [key for key in after if key not in got]
    assert not missed, f"{len(missed)} of the restarted classifier's {len(after)} labels missed, from {missed[0]}"
    new_ones = {(lab["stream"], lab["track"], lab["seq_to"]) for lab in slow.labels if lab["t_publish_ns"] > restarted_ns}
    assert new_ones == set(after)  # and nothing the sink did not get


def test_a_live_run_with_heavy_drops_and_no_restart_loses_nothing(tmp_path: Path, per_frame_model: Path) -> None:
    """Frames a live capture drops are `dropped`, once; `lost` is 0 without a restart."""
    summary = tmp_path / "summary.json"
    # Three streams paced live at 240 fps into one pose worker that cannot keep up: many frames are dropped.
    sources = [arg for seed in (1, 2, 3) for arg in ("--source", f"synthetic:A05?fps=240&seed={seed}")]
    engine = Engine(*sources, "--realtime", "--pose", "replay", "--model", str(per_frame_model),
                    "--pose-workers", "1", "--duration", "6", "--summary", str(summary))
    code, _, err = engine.wait(timeout=120)
    assert code == 0, err
    result = json.loads(summary.read_text())
    assert result["restarts"] == {}
    assert result["dropped"] > 0, "the run dropped nothing: no test of drops"
    assert result["lost"] == 0, result


def test_classify_knows_the_engines_own_subscribers_from_others() -> None:
    """After a restart classify waits for the run's own subscribers by name (their hello), so another
    subscriber (`engine listen`, a test) connecting first cannot make it publish to nobody."""
    import zmq

    from engine.framework.schema import LABELS_TOPIC, hello_topic
    from stages.classify import Subscriptions

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_VERBOSER, 1)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub.bind(endpoint)
    socks = []

    def subscriber(*topics: bytes) -> None:
        sock = ctx.socket(zmq.SUB)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.connect(endpoint)
        socks.append(sock)

    seen = Subscriptions()

    def heard(seconds: float = 0.5) -> set[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if pub.poll(20):
                seen.read(pub)
        return seen.hellos

    try:
        subscriber(LABELS_TOPIC)  # someone else's: not one of the run's
        assert heard() == set() and seen.to_labels == 1
        subscriber(LABELS_TOPIC, hello_topic("supervisor"))
        subscriber(LABELS_TOPIC, hello_topic("sink"))
        subscriber(b"progress")  # a recorder's other topic: not a subscription to labels
        assert heard() == {"supervisor", "sink"} and seen.to_labels == 3
        socks.pop(0).close(linger=0)  # a subscriber leaving is counted out
        heard()
        assert seen.to_labels == 2
    finally:
        for sock in (*socks, pub):
            sock.close(linger=0)
