"""`--metrics HOST:PORT`: Prometheus figures and health endpoints, scraped over HTTP like Prometheus would.

The figures are checked against the run's own `--summary`: during a run (every counter at most
its final value, /healthz and /readyz 200) and, with the supervisor in this process so its
server outlives `run()`, exactly at the end.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.framework.config import build_options
from engine.framework.supervisor import Supervisor
from pipeline_helpers import REPO, child_stage, engine_cmd, free_port, get, run_cli, scrape, taken_port


def stage_labels(key: str) -> frozenset:
    """Summary's per-stage key ('pose.1', 'render') -> the metric's labels."""
    stage, _, worker = key.partition(".")
    return frozenset({("stage", stage), ("worker", worker)} if worker else {("stage", stage)})


def check_against(samples: dict, summary: dict, exact: bool) -> None:
    """Every counter equals (exact) or is at most (during the run) the summary's figure."""
    def same(metric: float, final: float, what: str) -> None:
        if exact:
            assert metric == final, f"{what}: /metrics {metric} != summary {final}"
        else:
            assert metric <= final, f"{what}: /metrics {metric} > final {final}"

    def value(name: str, labels: frozenset = frozenset()) -> float:
        return samples[(name, labels)] if exact else samples.get((name, labels), 0.0)  # before the stages start: none

    for key, fields in summary["per_stage"].items():
        same(value("har_engine_frames_total", stage_labels(key)), fields["frames"], f"frames of {key}")
    same(value("har_engine_labels_total"), summary["labels"], "labels")
    same(value("har_engine_capture_to_label_seconds_count"), summary["labels"], "latency count")
    same(value("har_engine_dropped_total", frozenset({("stage", "capture")})), summary["dropped"], "dropped")
    same(value("har_engine_lost_total"), summary["lost"], "lost")
    restarts = sum(v for (name, _), v in samples.items() if name == "har_engine_restarts_total")
    same(restarts, sum(summary["restarts"].values()), "restarts")
    malformed = sum(v for (name, _), v in samples.items() if name == "har_engine_malformed_total")
    same(malformed, summary["malformed"], "malformed")


def test_figures_at_the_end_of_a_run_equal_the_summary(tmp_path: Path) -> None:
    port = free_port()
    summary_path = tmp_path / "s.json"
    options = build_options(None, {"source": ("synthetic:A05?loops=1",), "pose": "replay", "pose_workers": 2,
                                   "metrics": f"127.0.0.1:{port}", "summary": str(summary_path), "quiet": True})
    supervisor = Supervisor(options)
    seen: dict[str, set[int]] = {"/healthz": set(), "/readyz": set()}
    during: list[dict] = []
    halt = threading.Event()

    def poll() -> None:
        while not halt.is_set():
            try:
                for path in seen:
                    seen[path].add(get(port, path, 1.0)[0])
                during.append(scrape(port))
            except (OSError, AssertionError):
                pass  # not bound yet
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        assert supervisor.run() == 0
        halt.set()
        poller.join(5)
        summary = json.loads(summary_path.read_text())
        final = scrape(port)  # the server outlives run(): the figures the summary was written from
        check_against(final, summary, exact=True)
        assert summary["labels"] > 0 and summary["per_stage"]["classify"]["frames"] > 800
        assert final[("har_engine_label_subscriptions", frozenset())] == 1  # the supervisor's; nobody else's
        buckets = [v for (name, _), v in final.items() if name == "har_engine_capture_to_label_seconds_bucket"]
        assert buckets == sorted(buckets) and max(buckets) == summary["labels"]
        assert 200 in seen["/healthz"] and 200 in seen["/readyz"], seen
        assert during, "no scrape while the engine ran"
        for samples in during:
            check_against(samples, summary, exact=False)
        assert get(port, "/readyz")[0] == 200
        assert get(port, "/nothing")[0] == 404
    finally:
        halt.set()
        if supervisor.metrics is not None:
            supervisor.metrics.close()


def test_engine_run_serves_health_and_figures_while_it_runs(tmp_path: Path) -> None:
    port = free_port()
    summary_path = tmp_path / "s.json"
    engine = subprocess.Popen(engine_cmd("run", "--source", "synthetic:A05?loops=1", "--realtime", "--pose", "replay",
                                         "--pose-workers", "1", "--duration", "6", "--quiet", "--metrics", str(port),
                                         "--summary", str(summary_path)),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if get(port, "/readyz", 1.0)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("/readyz never answered 200")
        time.sleep(1.5)  # frames flowing, labels coming
        assert get(port, "/healthz")[0] == 200
        during = scrape(port)
        assert during[("har_engine_frames_total", frozenset({("stage", "classify")}))] > 0
        assert during[("har_engine_up", frozenset({("stage", "pose"), ("worker", "0")}))] == 1
        assert during[("har_engine_fps", frozenset({("stage", "capture")}))] > 10  # paced at 30 fps
        out, err = engine.communicate(timeout=60)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode == 0, err
    check_against(during, json.loads(summary_path.read_text()), exact=False)


def wait_for(port: int, path: str, code: int, timeout: float, engine: subprocess.Popen) -> float:
    """Poll `path` until it answers `code`; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(port, path, 1.0)[0] == code:
                return time.monotonic()
        except OSError:
            pass
        assert time.monotonic() < deadline and engine.poll() is None, f"{path} never answered {code}"
        time.sleep(0.05)


def test_healthz_says_503_while_a_stage_hangs_and_counts_its_restart(tmp_path: Path) -> None:
    port = free_port()
    summary_path = tmp_path / "s.json"
    engine = subprocess.Popen(engine_cmd("run", "--source", "synthetic:A05?loops=1", "--realtime", "--pose", "replay",
                                         "--pose-workers", "1", "--duration", "14", "--quiet", "--metrics", str(port),
                                         "--summary", str(summary_path)),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(port, "/readyz", 200, 40, engine)
        time.sleep(1.0)
        render = child_stage(engine.pid, "stages.render")
        stopped = time.monotonic()
        os.kill(render, signal.SIGSTOP)  # alive, but no longer reporting
        unhealthy = wait_for(port, "/healthz", 503, 10, engine)
        assert unhealthy - stopped < 4.0  # silent for 1.5 s: hung, before the supervisor kills it at 4 s
        render_labels = frozenset({("stage", "render")})
        deadline = time.monotonic() + 30
        while scrape(port).get(("har_engine_restarts_total", render_labels)) != 1:  # killed at 4 s, restarted
            assert time.monotonic() < deadline and engine.poll() is None, "no restart of render on /metrics"
            time.sleep(0.05)
        wait_for(port, "/healthz", 200, 30, engine)  # restarted
        while (after := scrape(port))[("har_engine_up", render_labels)] != 1:  # and reporting again
            assert time.monotonic() < deadline and engine.poll() is None, "render never reported after its restart"
            time.sleep(0.05)
        assert after[("har_engine_hangs_total", render_labels)] == 1
        out, err = engine.communicate(timeout=60)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode == 0, err
    summary = json.loads(summary_path.read_text())
    assert summary["restarts"] == {"render": 1} and summary["hangs"] == {"render": 1}
    check_against(after, summary, exact=False)


def test_a_bad_metrics_address_is_one_line_and_exit_2() -> None:
    for value in ("nope", "127.0.0.1:70000"):
        result = run_cli("run", "--source", "synthetic:A05?loops=1", "--metrics", value, "--quiet")
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "--metrics" in result.stderr, result.stderr


def test_a_metrics_port_in_use_exits_4() -> None:
    with taken_port() as port:
        result = run_cli("run", "--source", "synthetic:A05?loops=1", "--metrics", f"127.0.0.1:{port}", "--quiet")
        assert result.returncode == 4, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and str(port) in result.stderr, result.stderr
        result = run_cli("stage", "pose", "--input", "tcp://127.0.0.1:1", "--output", "tcp://127.0.0.1:2",
                         "--pose", "replay", "--metrics", str(port))
        assert result.returncode == 4, result.stderr


def test_a_remote_pose_worker_is_ready_once_it_hears_the_engine(tmp_path: Path) -> None:
    port, frames, poses = free_port(), free_port(), free_port()
    worker = subprocess.Popen(engine_cmd("stage", "pose", "--input", f"tcp://127.0.0.1:{frames}",
                                         "--output", f"tcp://127.0.0.1:{poses}", "--pose", "replay", "--metrics", str(port)),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = None
    try:
        deadline = time.monotonic() + 30
        while True:  # serving, but no engine yet: alive, not ready
            try:
                health, ready = get(port, "/healthz", 1.0)[0], get(port, "/readyz", 1.0)[0]
                break
            except OSError:
                assert time.monotonic() < deadline and worker.poll() is None, "the worker never served --metrics"
                time.sleep(0.1)
        time.sleep(0.5)
        assert (health, get(port, "/readyz")[0]) == (200, 503), ready
        summary_path = tmp_path / "s.json"
        engine = subprocess.Popen(engine_cmd("run", "--source", "synthetic:A05?loops=1", "--pose", "replay",
                                             "--pose-workers", "1", "--quiet", "--summary", str(summary_path),
                                             "--frames-endpoint", f"tcp://127.0.0.1:{frames}",
                                             "--poses-endpoint", f"tcp://127.0.0.1:{poses}"),
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 40
        while get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline and engine.poll() is None, "the worker never became ready"
            time.sleep(0.05)
        assert get(port, "/healthz")[0] == 200
        frames_done = 0.0
        while engine.poll() is None and worker.poll() is None:
            try:
                frames_done = scrape(port)[("har_engine_frames_total", frozenset({("stage", "pose"), ("worker", "0")}))]
            except OSError:
                break  # the worker exited with the engine
            time.sleep(0.1)
        assert engine.wait(60) == 0
        assert frames_done > 0
        worker.wait(30)  # the engine said goodbye
    finally:
        for proc in (engine, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_cli_does_not_import_prometheus_without_metrics() -> None:
    code = ("import sys, engine.framework.cli, engine.framework.supervisor, engine.framework.config; "
            "print('prometheus_client' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
    assert "--metrics" in run_cli("run", "--help").stdout
