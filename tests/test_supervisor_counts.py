"""The summary's counts are what subscribers and output files saw, across a classifier restart,
and `lost` is only what a dead stage held. Real engines, real sockets, loopback only."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from pipeline_helpers import Engine, child_stage

LONG_SOURCE = "synthetic:?loops=1&subjects=8-10&seed=3"  # several thousand frames, one person in each


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
    assert result["labels"] == len(received) == len(in_file)
    # One label per frame classified (window 1, one person per frame); a kill may fall between a
    # frame's label going out and the frame being counted, or catch labels still queued in the
    # killed process's ZeroMQ send queue (gone with it: a few, more on a loaded machine).
    labelled = {(label["stream"], label["seq_to"]) for label in received}
    assert abs(result["frames"] - len(labelled)) <= 10, (result["frames"], len(labelled))
    # Every frame read was classified or held by the dead classifier: none counted twice, none vanished.
    read = result["per_stage"]["capture"]["frames"]
    assert result["frames"] + result["lost"] == read
    assert abs(result["lost"] - (read - len(labelled))) <= 10


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
    import time

    import zmq

    from engine.framework.schema import LABELS_TOPIC, hello_topic
    from pipeline_helpers import free_port
    from stages.classify import subscriptions

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub.bind(endpoint)
    socks = []

    def subscriber(*topics: bytes) -> None:
        sock = ctx.socket(zmq.SUB)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        sock.connect(endpoint)
        socks.append(sock)

    def heard(seconds: float = 0.5) -> set[str]:
        names: set[str] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if pub.poll(20):
                names |= subscriptions(pub)
        return names

    try:
        subscriber(LABELS_TOPIC)  # someone else's: not one of the run's
        assert heard() == set()
        subscriber(LABELS_TOPIC, hello_topic("supervisor"))
        subscriber(LABELS_TOPIC, hello_topic("sink"))
        assert heard() == {"supervisor", "sink"}
    finally:
        for sock in (*socks, pub):
            sock.close(linger=0)
