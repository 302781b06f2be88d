"""Live mode when pose falls behind, and a pose worker on another host: real processes, loopback only.

Before frames were chained (`prev`), render waited its timeout for every frame a live capture
had dropped, then counted it lost: at 240 fps render ran at 1 fps and no label came in 10 s.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline_helpers import REPO, engine_cmd, free_port, run_cli


def test_a_live_source_faster_than_pose_drops_frames_once_and_loses_none(tmp_path: Path) -> None:
    summary, labels = tmp_path / "summary.json", tmp_path / "labels.jsonl"
    result = run_cli(
        "run", "--source", "synthetic:A05?loops=1&fps=240", "--realtime", "--pose", "blazepose", "--pose-workers", "1",
        "--quiet", "--no-print-labels", "--summary", str(summary), "--labels-out", str(labels), timeout=180,
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(summary.read_text())
    stages = run["per_stage"]
    assert run["dropped"] > 0, "the source did not outrun pose: the test proves nothing"
    assert run["lost"] == 0 and run["late"] == 0
    # every frame capture sent reached the classifier; the others were dropped, counted once
    assert stages["classify"]["frames"] == stages["capture"]["frames"]
    assert labels.read_text().count("\n") == run["labels"] > 0


def run_with_a_remote_worker(tmp_path: Path, *run_args: str) -> tuple[dict, str]:
    """An engine on tcp endpoints and one `engine stage pose` connecting to it: (summary, the worker's stderr)."""
    frames, poses = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    summary = tmp_path / "summary.json"
    engine = subprocess.Popen(
        engine_cmd("run", "--source", "synthetic:?loops=1&subjects=8-9", "--pose", "replay", *run_args,
                   "--frames-endpoint", frames, "--poses-endpoint", poses, "--quiet", "--no-print-labels",
                   "--publish", f"tcp://127.0.0.1:{free_port()}", "--summary", str(summary)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    remote = subprocess.Popen(
        [sys.executable, "-m", "engine.framework.cli", "stage", "pose", "--input", frames, "--output", poses,
         "--pose", "replay"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _, engine_err = engine.communicate(timeout=180)
        _, remote_err = remote.communicate(timeout=30)  # it ends with the engine, unasked
    finally:
        for proc in (engine, remote):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert engine.returncode == 0, engine_err
    assert remote.returncode == 0, remote_err
    assert f"waiting for the engine at {frames}" in remote_err
    return json.loads(summary.read_text()), remote_err


def test_a_remote_pose_worker_says_when_it_joins_and_leaves_with_the_engine(tmp_path: Path) -> None:
    run, remote_err = run_with_a_remote_worker(tmp_path, "--pose-workers", "1")
    assert "connected to the engine" in remote_err
    assert "the engine ended; exiting" in remote_err
    assert run["workers"] == {"local": 1, "remote": 1}
    assert run["lost"] == 0


def test_remote_pose_only_runs_every_frame_through_the_remote_worker(tmp_path: Path) -> None:
    """The pipeline without a local pose worker (a Kubernetes pipeline pod): every frame goes to the remote one."""
    run, _ = run_with_a_remote_worker(tmp_path, "--remote-pose-only")
    assert run["workers"] == {"local": 0, "remote": 1}
    assert run["pose_workers"] == 0
    assert run["lost"] == 0 and run["labels"] > 0
    stages = run["per_stage"]
    assert "pose.0" not in stages  # no local worker reported
    assert stages["classify"]["frames"] == stages["capture"]["frames"] > 0


def test_a_remote_worker_with_stay_serves_one_engine_after_another(tmp_path: Path) -> None:
    """Under Kubernetes the pipeline restarts (a rollout, a new config): a worker started with --stay
    is still there for the next engine on the same endpoints, and says so."""
    frames, poses = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    remote = subprocess.Popen(
        [sys.executable, "-m", "engine.framework.cli", "stage", "pose", "--input", frames, "--output", poses,
         "--pose", "replay", "--stay"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for n in range(2):
            summary = tmp_path / f"summary{n}.json"
            run = subprocess.run(
                engine_cmd("run", "--source", "synthetic:A05?loops=1", "--pose", "replay", "--remote-pose-only",
                           "--frames-endpoint", frames, "--poses-endpoint", poses, "--quiet", "--no-print-labels",
                           "--publish", f"tcp://127.0.0.1:{free_port()}", "--summary", str(summary)),
                cwd=REPO, capture_output=True, text=True, timeout=180)
            assert run.returncode == 0, run.stderr
            result = json.loads(summary.read_text())
            assert result["workers"] == {"local": 0, "remote": 1} and result["lost"] == 0 and result["labels"] > 0
            assert remote.poll() is None, "the worker left with the engine"
    finally:
        remote.terminate()
        _, remote_err = remote.communicate(timeout=30)
    assert remote.returncode == 0, remote_err
    assert remote_err.count("connected to the engine") == 2, remote_err
    assert remote_err.count("the engine ended; waiting for the next one") == 2, remote_err
