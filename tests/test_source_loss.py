"""A live network source that drops out: the engine reconnects and labels resume, or it exits if asked.

A real MJPEG-over-HTTP server (tests/stream_server.py) serves frames of a synthetic person;
`engine run --source http://127.0.0.1:PORT/stream.mjpg --pose blazepose` reads it through
OpenCV's FFmpeg backend and a real subscriber collects the labels. The server then closes
every connection and refuses new ones for a few seconds, and comes back.
"""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.sources.synthetic import ACTIONS
from pipeline_helpers import REPO, Subscriber, engine_cmd, free_port, synthetic_frames
from stream_server import MjpegServer
from tiny_models import build_tiny_model

FPS = 10.0
SIZE = (320, 240)  # small frames: the test also passes on a loaded 2-core machine
DOWN_S = 3.0
# Back-off retries at 0.5, 1.5, 3.5 s after the loss, so the source is back < 1 s after it listens
# again; a few frames later the first window is full. How soon is benchmarks' business: the tests
# wait for labels with a generous deadline. Frames before the loss: PRE_LOSS_S worth, so a stream
# whose numbering restarted at 0 would stay silent about that long (render drops frames numbered
# below what it already passed), and the numbering test would see no label after the loss.
RESUME_DEADLINE_S = 60.0
PRE_LOSS_S = 10.0


@dataclass
class Timed:
    """Lines of a process's stderr with the monotonic time each was read."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def between(self, t0: float, t1: float) -> list[str]:
        return [line for t, line in self.lines if t0 <= t <= t1]


def _read_lines(stream, sink: Timed) -> None:
    for line in iter(stream.readline, ""):
        sink.lines.append((time.monotonic(), line.rstrip("\n")))


class LiveEngine:
    """`engine run` on a live source with a subscriber, stderr read as it comes."""

    def __init__(self, url: str, model: Path, *extra: str) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.subscriber = Subscriber(self.endpoint)
        self.subscriber.start()
        self.subscriber.ready.wait(5)
        self.stderr = Timed()
        self.proc = subprocess.Popen(
            engine_cmd("run", "--source", url, "--pose", "blazepose", "--model", str(model), "--pose-workers", "1",
                       "--publish", self.endpoint, "--no-print-labels", "--duration", "120", *extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        self._reader = threading.Thread(target=_read_lines, args=(self.proc.stderr, self.stderr), daemon=True)
        self._reader.start()

    def labels_since(self, t0: float) -> list[dict]:
        """Labels received at or after monotonic time t0."""
        received = list(zip(self.subscriber.times, self.subscriber.labels))  # a copy: the subscriber appends meanwhile
        return [label for t, label in received if t >= t0]

    def wait_labels(self, count: int, timeout_s: float, since: float = 0.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if len(self.labels_since(since)) >= count:
                return True
            time.sleep(0.02)
        return len(self.labels_since(since)) >= count

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        self.subscriber.stop()
        return code


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("loss") / "live.onnx", "keypoint_sequence", list(ACTIONS),
                            window=8, stride=4, fps=FPS)


@pytest.fixture(scope="module")
def frames() -> list:
    images, _ = synthetic_frames(60, action=5, size=SIZE)
    return images


@dataclass
class LossRun:
    code: int
    before: list[dict]
    after: list[dict]
    alive_while_down: bool
    status_while_down: list[str]
    connections: int


@pytest.fixture(scope="module")
def loss_run(model: Path, frames: list) -> LossRun:
    """One engine run through a 3 s outage of its source; the tests below read what happened."""
    with MjpegServer(frames, fps=FPS, max_seconds=150) as server:
        engine = LiveEngine(server.url, model)
        try:
            assert engine.wait_labels(3, 90), "no label from the live stream: " + "\n".join(l for _, l in engine.stderr.lines[-5:])
            # Run long enough that a stream whose frame numbers restart at 0 is visibly stuck afterwards.
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and max(lab["seq_to"] for lab in engine.subscriber.labels) < PRE_LOSS_S * FPS:
                time.sleep(0.1)
            before = list(engine.labels_since(0))
            t_down = time.monotonic()
            server.go_down()
            time.sleep(DOWN_S)
            alive = engine.proc.poll() is None
            t_up = time.monotonic()
            server.come_back()
            engine.wait_labels(3, RESUME_DEADLINE_S, since=t_up)
            after = engine.labels_since(t_up)
        finally:
            code = engine.stop()
        status = [line for line in engine.stderr.between(t_down + 1.0, t_up + 0.5) if line.startswith("[")]
        return LossRun(code, before, after, alive, status, server.connections)


def test_engine_survives_the_outage_and_labels_resume(loss_run: LossRun) -> None:
    assert loss_run.alive_while_down, "the engine exited when its live source went away"
    assert loss_run.connections >= 2, "the capture stage never reconnected"
    assert loss_run.after, "no label after the source came back"
    assert loss_run.code == 0


def test_labels_resume_with_frame_numbers_that_continue(loss_run: LossRun) -> None:
    assert len(loss_run.after) >= 3, "labels did not resume after the source came back"
    last_before = max(label["seq_to"] for label in loss_run.before)
    assert min(label["seq_to"] for label in loss_run.after) > last_before  # one stream, numbered on


def test_status_line_says_reconnecting(loss_run: LossRun) -> None:
    assert loss_run.status_while_down, "no status line while the source was down"
    assert all("reconnecting" in line.lower() for line in loss_run.status_while_down), loss_run.status_while_down[-1]


def test_exit_on_source_loss_names_the_source(model: Path, frames: list) -> None:
    with MjpegServer(frames, fps=FPS, max_seconds=90) as server:
        engine = LiveEngine(server.url, model, "--exit-on-source-loss", "--quiet")
        try:
            assert engine.wait_labels(1, 60), "no label from the live stream"
            server.go_down()
            code = engine.proc.wait(timeout=RESUME_DEADLINE_S)
        finally:
            engine.stop()
    lines = [line for _, line in engine.stderr.lines]
    assert code == 2  # SourceError's exit code, relayed by the supervisor
    assert lines == [f"error: source {server.url} was lost and --exit-on-source-loss is set"]


def test_exit_on_source_loss_when_the_source_never_answers(model: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"  # nobody listens there
    # --duration bounds a run that kept retrying: it would end with code 0, not 2.
    result = subprocess.run(engine_cmd("run", "--source", url, "--pose", "blazepose", "--model", str(model),
                                       "--pose-workers", "1", "--publish", f"tcp://127.0.0.1:{free_port()}",
                                       "--exit-on-source-loss", "--quiet", "--duration", "30"),
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: ") and url in lines[0], result.stderr


def test_stream_frame_rate_is_what_the_server_sends(loss_run: LossRun) -> None:
    """The model runs at the stream's own 10 fps with stride 4: one label every 4 frames.

    The first labels are left out: a rate measured from arrival times needs a few frames.
    """
    ends = [label["seq_to"] for label in loss_run.before][5:]
    steps = {b - a for a, b in zip(ends, ends[1:])}
    assert steps == {4}, sorted(steps)
