"""`engine listen` and `engine view` with no engine to hear: they say what they wait for,
then what to check, instead of waiting in silence; a host that does not resolve ends them
at once in one line (issue 13). No engine runs here: a free port is the true edge."""
from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from engine.framework.endpoints import free_port
from pipeline_helpers import REPO, engine_cmd, run_cli


def test_listen_without_an_engine_says_what_it_waits_for_then_what_to_check() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    result = run_cli("listen", "--connect", endpoint, "--timeout", "10", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"listen: waiting for labels on {endpoint}",
        f"listen: nothing received from {endpoint} in 5 s: is the engine running, started with --publish {endpoint} "
        "(or a wildcard bind on that port), and with no --curve-keys (this command has none)?",
    ]


def test_view_without_an_engine_gives_the_hint_on_stderr() -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(engine_cmd("view", "--connect", endpoint, "--bind", str(free_port())), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90  # generous: the hint is due after 5 s
        while time.monotonic() < deadline and proc.poll() is None:
            if any(line.startswith("view: nothing received") for line in lines):
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
    hints = [line for line in lines if line.startswith("view: nothing received")]
    assert lines[0] == f"view: waiting for labels and frames on {endpoint} and tcp://127.0.0.1:{port + 1}", lines
    assert len(hints) == 1 and hints[0].startswith(f"view: nothing received from {endpoint} in 5 s: is the engine running"), lines


@pytest.mark.parametrize("command", ["listen", "view"])
def test_a_host_that_does_not_resolve_is_one_line_and_exit_2(command: str) -> None:
    endpoint = "tcp://no-such-host.invalid:5560"
    result = run_cli(command, "--connect", endpoint, timeout=60)  # before: waited for ever
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: --connect {endpoint}: host 'no-such-host.invalid' does not resolve (")


def test_listen_started_with_sigint_ignored_still_stops_on_sigint() -> None:
    """As a script's background job starts it (`engine listen ... &`: SIGINT ignored, which exec
    keeps); Python would never raise KeyboardInterrupt, and listen would run until killed."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(engine_cmd("listen", "--connect", endpoint), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stderr.readline().startswith("listen: waiting for labels"), "listen did not start"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
