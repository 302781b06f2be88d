"""What the pipeline tests share: an engine started as a user would, a real label subscriber,
and fixtures built on disk (MHAD layout, keypoints files)."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import zmq

from engine.framework.endpoints import free_port  # noqa: F401 (the tests' one way to pick a port)
from engine.framework.schema import LABELS_TOPIC, decode_label, hello_topic
from engine.sources import synthetic
from pose.base import People
from pose.keypoints_file import KeypointsWriter

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on, for as long as the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@contextlib.contextmanager
def render_process(model: Path) -> Iterator[tuple[subprocess.Popen, zmq.Socket, zmq.Socket, zmq.Socket]]:
    """The render stage as a real process on tcp: (process, PUSH into it, PULL of its output, PULL of its status)."""
    ports = {name: free_port() for name in ("input", "output", "status")}
    ctx = zmq.Context.instance()
    out = ctx.socket(zmq.PULL)
    out.bind(f"tcp://127.0.0.1:{ports['output']}")
    status = ctx.socket(zmq.PULL)
    status.bind(f"tcp://127.0.0.1:{ports['status']}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.render", "--input", f"tcp://127.0.0.1:{ports['input']}",
         "--output", f"tcp://127.0.0.1:{ports['output']}", "--model", str(model),
         "--status", f"tcp://127.0.0.1:{ports['status']}"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{ports['input']}")
    try:
        yield proc, push, out, status
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        for sock in (push, out, status):
            sock.close(linger=0)


@contextlib.contextmanager
def classify_process(model: Path, *args: str) -> Iterator[tuple[subprocess.Popen, zmq.Socket, zmq.Socket]]:
    """The classify stage as a real process on tcp: (process, PUSH into it, SUB on its labels).

    The SUB says hello as one of the run's own subscribers and the stage waits for it
    (`--subscribers 1`), so no label goes out before it is subscribed. The process is stopped
    at the end; its stderr is the caller's to read (`proc.communicate()` after the block).
    """
    ctx = zmq.Context.instance()
    inp, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    sub.setsockopt(zmq.SUBSCRIBE, hello_topic("test"))
    sub.connect(pub)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDTIMEO, 5000)
    push.connect(inp)
    proc = subprocess.Popen([sys.executable, "-m", "stages.classify", "--input", inp, "--publish", pub,
                             "--model", str(model), "--subscribers", "1", *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, push, sub
    finally:
        if proc.poll() is None:
            proc.terminate()
        sub.close(linger=0)
        push.close(linger=0)


def engine_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.framework.cli", *args]


def run_cli(*args: str, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(engine_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


class Subscriber(threading.Thread):
    """Collects every label published on an endpoint, like any user's program would.

    `times[i]` is the monotonic time `labels[i]` was received (for benchmarks and outage tests).
    """

    def __init__(self, endpoint: str, reconnect_ivl_ms: int | None = None) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.reconnect_ivl_ms = endpoint, reconnect_ivl_ms
        self.labels: list[dict] = []
        self.times: list[float] = []
        self.ready = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
        sock.setsockopt(zmq.RCVHWM, 100000)
        if self.reconnect_ivl_ms is not None:  # ZeroMQ's default is 100 ms
            sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ivl_ms)
        sock.connect(self.endpoint)
        self.ready.set()
        try:
            while not self._halt.is_set():
                if sock.poll(50):
                    label = decode_label(sock.recv_multipart())  # what the engine publishes is a label
                    self.times.append(time.monotonic())
                    self.labels.append(label)
        finally:
            sock.close(linger=0)

    def stop(self) -> list[dict]:
        self._halt.set()
        self.join(timeout=5)
        return self.labels

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.labels) >= count:
                return True
            time.sleep(0.05)
        return False


class Engine:
    """`engine run ...` as a child process with its own labels port and a subscriber on it."""

    def __init__(self, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.subscriber = Subscriber(self.endpoint)
        self.subscriber.start()
        self.subscriber.ready.wait(5)
        self.proc = subprocess.Popen(
            engine_cmd("run", "--publish", self.endpoint, "--no-print-labels", *args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )

    def wait(self, timeout: float) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        time.sleep(0.2)
        self.subscriber.stop()
        return self.proc.returncode, out, err

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    @property
    def labels(self) -> list[dict]:
        return self.subscriber.labels


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc, no extra dependency)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.append(int(entry.name))
    return kids


def child_stage(engine_pid: int, module: str, timeout: float = 60, worker: int = 0) -> int:
    """pid of the engine's child process running `module` (pose: worker `worker`), waiting for it to (re)appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children_of(engine_pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if module in argv and "--worker" in argv and argv[argv.index("--worker") + 1] == str(worker):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no {module} process (worker {worker}) under the engine within {timeout:.0f} s")


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 60) -> None:
    """Wait until process `pid` has exited (a generous deadline: the tests run on loaded machines)."""
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still running after {timeout:.0f} s")
        time.sleep(0.05)


def synthetic_frames(n_frames: int, action: int = 1, subject_id: int = 9, size: tuple[int, int] = (640, 480)) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames drawn from the motion model, and their ground-truth keypoints float32[T, 18, 3]."""
    subject = synthetic.make_subject(subject_id)
    keypoints = synthetic.motion(action, subject, 1, fps=30.0, size=size)
    while len(keypoints) < n_frames:
        keypoints = np.concatenate([keypoints, keypoints])
    keypoints = keypoints[:n_frames]
    background = synthetic.background(size, seed=1)
    frames = []
    for kp in keypoints:
        frame = background.copy()
        synthetic.draw_person(frame, kp, subject)
        frames.append(frame)
    return frames, keypoints


def write_mhad_fixture(root: Path, sequences: dict[tuple[int, int, int], int], keypoints_out: Path | None = None) -> Path:
    """An MHAD-layout tree (Kinect/Kin01/SXX/AYY/RZZ/*.ppm) with frames of the motion model.

    With `keypoints_out`, also the ground truth as a keypoints file the replay backend reads.
    """
    writer = KeypointsWriter(keypoints_out) if keypoints_out else None
    for (s, a, r), n in sequences.items():
        seq_dir = root / "Kinect" / "Kin01" / f"S{s:02d}" / f"A{a:02d}" / f"R{r:02d}"
        seq_dir.mkdir(parents=True)
        frames, keypoints = synthetic_frames(n, action=a - 1, subject_id=s)
        for i, (frame, kp) in enumerate(zip(frames, keypoints)):
            cv2.imwrite(str(seq_dir / f"kin_k01_s{s:02d}_a{a:02d}_r{r:02d}_color_{i:05d}.ppm"), frame)
            if writer:
                writer.write(f"mhad:S{s:02d}/A{a:02d}/R{r:02d}", i, People(kp[None]))
    if writer:
        writer.close()
    return root


def write_clip_with_truth(folder: Path, n_frames: int, action: int = 4) -> tuple[Path, Path]:
    """A recorded video of one synthetic person (MJPG .avi, 30 fps) and its ground-truth keypoints file."""
    frames, keypoints = synthetic_frames(n_frames, action=action)
    video = folder / "waving.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    with KeypointsWriter(folder / "truth.npz") as truth:
        for seq, kp in enumerate(keypoints):
            truth.write(str(video), seq, People(kp[None]))
    return video, folder / "truth.npz"


def video_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video file as decoded by OpenCV, and the rate its container states."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


# --- /metrics, read as Prometheus would --------------------------------------------------------
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:PORT/PATH, an HTTP error's included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """{(metric name, frozenset of (label, value) without empty ones): value} of one /metrics page."""
    code, text = get(port, "/metrics")
    assert code == 200
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_RE.match(line)
        assert match, line
        labels = frozenset((k, v) for k, v in LABEL_RE.findall(match.group(2) or "") if v != "")
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples
