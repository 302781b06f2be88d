"""Faults: killed, hung and crash-looping stages, and CURVE on tcp. Real processes, loopback only."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import zmq

from engine.framework.schema import LABELS_TOPIC, decode_label
from engine.framework.security import generate_keys
from engine.sources.synthetic import ACTIONS
from pipeline_helpers import REPO, Engine, Subscriber, child_stage, children_of, engine_cmd, free_port, wait_gone

LONG_SOURCE = "synthetic:?loops=1&subjects=8-10&seed=3"


def child(engine: Engine, module: str) -> int:
    return child_stage(engine.proc.pid, module)


def test_each_stage_killed_in_turn_during_a_lossless_run(tmp_path: Path, per_frame_model: Path) -> None:
    baseline = Engine("--source", LONG_SOURCE, "--pose", "replay", "--model", str(per_frame_model), "--pose-workers", "2")
    code, _, err = baseline.wait(timeout=180)
    assert code == 0, err
    expected = {lab["seq_to"]: lab["label"] for lab in baseline.labels}
    total = len(expected)
    assert sorted(expected) == list(range(total))

    summary = tmp_path / "summary.json"
    faulted = Engine("--source", LONG_SOURCE, "--pose", "replay", "--model", str(per_frame_model), "--pose-workers", "2",
                     "--summary", str(summary))
    try:
        for module, worker in (("stages.capture", 0), ("stages.pose", 1), ("stages.render", 0), ("stages.classify", 0)):
            before = len(faulted.labels)
            assert faulted.subscriber.wait_for(before + 300, timeout=60), f"no progress before killing {module}"
            os.kill(child_stage(faulted.proc.pid, module, worker=worker), signal.SIGKILL)
    finally:
        code, _, err = faulted.wait(timeout=180)
    assert code == 0, err
    got = [(lab["seq_to"], lab["label"]) for lab in faulted.labels]
    seqs = [s for s, _ in got]
    assert seqs == sorted(seqs), "frames came out of order"
    unique = sorted(set(seqs))
    missing_seqs = set(range(total)) - set(unique)
    for seq in {s for s in seqs if seqs.count(s) > 1}:
        # The classifier keeps time: a short gap is filled with the nearest frames, never with new ones.
        assert {seq - 1, seq + 1} & missing_seqs, f"frame {seq} labelled twice with no gap beside it"
    assert all(expected[s] == label for s, label in got)  # same labels as the undisturbed run
    missing = total - len(unique)
    result = json.loads(summary.read_text())
    assert result["restarts"] == {"capture": 1, "pose.1": 1, "render": 1, "classify": 1}
    # Frames in flight in a killed stage are not re-sent: they are lost, and the run says how many.
    assert missing <= result["lost"] + 10  # (a few labels can also miss the subscriber while it reconnects)
    assert result["lost"] < 0.5 * total


def test_hung_stage_is_detected_and_restarted(per_frame_model: Path) -> None:
    engine = Engine("--source", "synthetic:", "--pose", "replay", "--model", str(per_frame_model), "--duration", "60")
    try:
        assert engine.subscriber.wait_for(50, timeout=30)
        render = child(engine, "stages.render")
        os.kill(render, signal.SIGSTOP)  # alive, but no longer reading or reporting
        wait_gone(render)  # the supervisor kills it (how soon is a benchmark's business, not a test's)
        before = len(engine.labels)
        assert engine.subscriber.wait_for(before + 50, timeout=60), "labels did not resume"
    finally:
        engine.signal(signal.SIGTERM)
        code, _, err = engine.wait(timeout=60)
    assert code == 0, err
    assert "stage render sent no heartbeat" in err
    # While it hung, the status line showed no rate for it: a stopped stage does no work.
    before_kill = err.split("stage render sent no heartbeat")[0].splitlines()
    assert any("| render   0.0 fps HUNG q" in line for line in before_kill), before_kill[-6:]


def test_crash_loop_gives_up_with_one_line(per_frame_model: Path) -> None:
    engine = Engine("--source", "synthetic:", "--pose", "replay", "--model", str(per_frame_model), "--max-restarts", "2",
                    "--duration", "60")
    try:
        for _ in range(3):
            render = child(engine, "stages.render")  # the restarted one, after the first kill
            os.kill(render, signal.SIGKILL)
            wait_gone(render)
        code, _, err = engine.wait(timeout=60)
    finally:
        if engine.proc.poll() is None:
            engine.proc.kill()
    assert code == 5
    assert err.strip().splitlines()[-1] == "error: stage render crashed 3 times in 60 s, giving up; last error: exit code -9"
    assert not children_of(engine.proc.pid)


def test_startup_error_in_a_stage_stops_the_run_without_restarts(per_frame_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(engine_cmd("run", "--source", "synthetic:", "--pose", "openpose",
                                       "--pose-weights", str(tmp_path), "--model", str(per_frame_model), "--quiet",
                                       "--publish", f"tcp://127.0.0.1:{free_port()}"),
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pose_deploy_linevec.prototxt" in lines[0]


def test_curve_keys_admit_only_authorized_subscribers(tmp_path: Path, per_frame_model: Path) -> None:
    keys = generate_keys(tmp_path / "keys")
    stranger = generate_keys(tmp_path / "stranger")  # a valid key pair the engine does not know
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    plain = Subscriber(endpoint)
    plain.start()
    ctx = zmq.Context.instance()

    def curve_sub(folder: Path) -> zmq.Socket:
        from engine.framework.security import load_keys, secure_client

        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
        secure_client(sock, endpoint, load_keys(folder))
        sock.connect(endpoint)
        return sock

    good, bad = curve_sub(keys), curve_sub(stranger)
    engine = subprocess.Popen(engine_cmd("run", "--source", "synthetic:", "--pose", "replay", "--model", str(per_frame_model),
                                         "--publish", endpoint, "--curve-keys", str(keys), "--quiet", "--duration", "8"),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert good.poll(20000), "the authorized subscriber received nothing"
        label = decode_label(good.recv_multipart())
        assert label["label"] in ACTIONS
        listen = subprocess.run(engine_cmd("listen", "--connect", endpoint, "--curve-keys", str(keys), "--json", "--count", "3",
                                           "--timeout", "10"), capture_output=True, text=True, timeout=30, cwd=REPO)
        assert len(listen.stdout.strip().splitlines()) == 3
        assert not bad.poll(1000), "a subscriber with an unknown key received labels"
        assert plain.labels == [], "a subscriber without keys received labels"
    finally:
        engine.wait(timeout=30)
        plain.stop()
        good.close(linger=0)
        bad.close(linger=0)
    assert engine.returncode == 0, engine.stderr.read()


def test_wide_bind_without_keys_warns(per_frame_model: Path) -> None:
    port = free_port()
    result = subprocess.run(engine_cmd("run", "--source", "synthetic:", "--pose", "replay", "--model", str(per_frame_model),
                                       "--publish", f"tcp://0.0.0.0:{port}", "--duration", "2", "--quiet"),
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert f"warning: labels publisher tcp://0.0.0.0:{port} is reachable from other machines without encryption" in result.stderr
    assert "--curve-keys" in result.stderr
