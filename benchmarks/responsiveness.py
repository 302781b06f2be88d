"""How fast the engine reacts: Ctrl-C, a hung stage, a bad model file, a live source lost.

    python benchmarks/responsiveness.py                 # 3 repeats of each
    python benchmarks/responsiveness.py --repeats 5 --json out.json

The tests wait for these events with generous deadlines; the timing goals live here:
- SIGINT to the supervisor's exit with every stage process gone < 3 s;
- a stage stopped with SIGSTOP reported by the supervisor ("sent no heartbeat") < 5 s;
- `engine run --model <bad file>` exits with its one-line error < 3 s;
- a live MJPEG stream (served here on 127.0.0.1) down for 3 s: labels again < 6 s after it is back;
- the same loss with `--exit-on-source-loss`: the engine exits < 10 s after the stream went down.
The engine is started as users start it (`engine run ...`, real processes, real sockets, 127.0.0.1
only); each figure is the median and the max over the repeats. Every wait is bounded, and every
process started here is killed on the way out, even after an error.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' helpers: a stream server, process lookup

from engine.framework.endpoints import free_port  # noqa: E402
from engine.framework.schema import LABELS_TOPIC  # noqa: E402
from engine.paths import default_model  # noqa: E402
from pipeline_helpers import children_of, synthetic_frames  # noqa: E402
from stream_server import MjpegServer  # noqa: E402

SOURCE = "synthetic:"
READY_S = 90.0  # first label after start, on a loaded machine
GIVE_UP_S = 30.0  # any one measured event: well past its goal, so a miss is reported, not waited for

GOALS_S = {"sigint_to_exit": 3.0, "hung_stage_detected": 5.0, "bad_model_exit": 3.0,
           "labels_after_source_back": 6.0, "exit_on_source_loss": 10.0}
STREAM_FPS = 10.0
STREAM_SIZE = (320, 240)  # small frames: blazepose keeps up on a loaded 2-core machine
DOWN_S = 3.0


def engine_cmd(*args: str) -> list[str]:
    """`engine ...` as a user types it: the venv's script when it exists, else the module."""
    script = Path(sys.executable).with_name("engine")
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "engine.framework.cli", *args]


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stage_pid(engine_pid: int, module: str) -> int | None:
    for pid in children_of(engine_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if module in argv:
            return pid
    return None


class Engine:
    """`engine run` with a label subscriber and its stderr read line by line, each line timed."""

    def __init__(self, *args: str) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.labels = 0
        self.lines: list[tuple[float, str]] = []
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._sub = threading.Thread(target=self._subscribe, daemon=True)
        self._sub.start()
        self._ready.wait(5)
        self.proc = subprocess.Popen(engine_cmd("run", "--publish", self.endpoint, "--no-print-labels", *args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.stages: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _subscribe(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
        sock.connect(self.endpoint)
        self._ready.set()
        try:
            while not self._halt.is_set():
                if sock.poll(50):
                    sock.recv_multipart()
                    self.labels += 1
        finally:
            sock.close(linger=0)

    def _read(self) -> None:
        for line in iter(self.proc.stderr.readline, ""):
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_labels(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.labels < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no {count} labels within {timeout_s:.0f} s: " + " | ".join(l for _, l in self.lines[-3:]))
            self.stages.update(children_of(self.proc.pid))
            time.sleep(0.05)
        self.stages.update(children_of(self.proc.pid))

    def close(self) -> None:
        """Kill the supervisor and every stage it started, whatever state they are in."""
        self.stages.update(children_of(self.proc.pid) if self.proc.poll() is None else [])
        if self.proc.poll() is None:
            self.proc.kill()
        for pid in self.stages:
            if is_running(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._halt.set()
        self._sub.join(timeout=5)
        self._reader.join(timeout=5)


def sigint_to_exit(model: str) -> float:
    """Seconds from SIGINT to the supervisor's exit with all its stage processes gone."""
    engine = Engine("--source", SOURCE, "--pose", "replay", "--model", model, "--duration", "120")
    try:
        engine.wait_labels(3, READY_S)
        stages = children_of(engine.proc.pid)
        engine.stages.update(stages)
        t0 = time.monotonic()
        engine.proc.send_signal(signal.SIGINT)
        engine.proc.wait(timeout=GIVE_UP_S)
        while any(is_running(pid) for pid in stages):
            if time.monotonic() - t0 > GIVE_UP_S:
                raise RuntimeError("stage processes still running after the supervisor exited")
            time.sleep(0.005)
        return time.monotonic() - t0
    finally:
        engine.close()


def hung_stage_detected(model: str) -> float:
    """Seconds from SIGSTOP of the render stage to the supervisor's "sent no heartbeat" line."""
    engine = Engine("--source", SOURCE, "--pose", "replay", "--model", model, "--duration", "120")
    try:
        engine.wait_labels(3, READY_S)
        render = stage_pid(engine.proc.pid, "stages.render")
        if render is None:
            raise RuntimeError("no render stage under the engine")
        t0 = time.monotonic()
        os.kill(render, signal.SIGSTOP)  # alive, but no longer reading or reporting
        while time.monotonic() - t0 < GIVE_UP_S:
            for t, line in list(engine.lines):
                if t >= t0 and "stage render sent no heartbeat" in line:
                    return t - t0
            time.sleep(0.01)
        raise RuntimeError(f"hung render stage not reported within {GIVE_UP_S:.0f} s")
    finally:
        engine.close()


def bad_model_exit(tmp: Path) -> float:
    """Seconds for `engine run --model <random bytes>` to exit with one `error: ` line."""
    path = tmp / "bad.onnx"
    path.write_bytes(os.urandom(4096))
    t0 = time.monotonic()
    result = subprocess.run(engine_cmd("run", "--model", str(path), "--source", SOURCE,
                                       "--publish", f"tcp://127.0.0.1:{free_port()}", "--duration", "10", "--quiet"),
                            capture_output=True, text=True, timeout=GIVE_UP_S, cwd=ROOT)
    elapsed = time.monotonic() - t0
    lines = result.stderr.strip().splitlines()
    if result.returncode == 0 or len(lines) != 1 or not lines[0].startswith("error: "):
        raise RuntimeError(f"bad model not refused with one line (exit {result.returncode}): {result.stderr.strip()[-300:]}")
    return elapsed


def labels_after_source_back(model: str, stream: MjpegServer) -> float:
    """Seconds from the stream listening again (after DOWN_S down) to the next label."""
    stream.come_back()
    engine = Engine("--source", stream.url, "--pose", "blazepose", "--pose-workers", "1", "--model", model, "--duration", "120")
    try:
        engine.wait_labels(3, READY_S)
        stream.go_down()
        time.sleep(DOWN_S)
        if engine.proc.poll() is not None:
            raise RuntimeError("the engine exited while its live source was down")
        before = engine.labels
        t_up = time.monotonic()
        stream.come_back()
        while engine.labels <= before:
            if time.monotonic() - t_up > GIVE_UP_S:
                raise RuntimeError(f"no label within {GIVE_UP_S:.0f} s of the source coming back")
            time.sleep(0.01)
        return time.monotonic() - t_up
    finally:
        stream.go_down()
        engine.close()


def exit_on_source_loss(model: str, stream: MjpegServer) -> float:
    """Seconds from the stream going down to the exit of `engine run --exit-on-source-loss`."""
    stream.come_back()
    engine = Engine("--source", stream.url, "--pose", "blazepose", "--pose-workers", "1", "--model", model, "--duration", "120",
                    "--exit-on-source-loss", "--quiet")
    try:
        engine.wait_labels(1, READY_S)
        t0 = time.monotonic()
        stream.go_down()
        engine.proc.wait(timeout=GIVE_UP_S)
        elapsed = time.monotonic() - t0
        if engine.proc.returncode != 2:
            raise RuntimeError(f"--exit-on-source-loss ended with code {engine.proc.returncode}, not 2")
        return elapsed
    finally:
        stream.go_down()
        engine.close()


def run(repeats: int, model: str) -> dict:
    times: dict[str, list[float]] = {name: [] for name in GOALS_S}
    images, _ = synthetic_frames(60, action=5, size=STREAM_SIZE)
    stream = MjpegServer(images, fps=STREAM_FPS, max_seconds=3600.0)  # a live camera of a waving person that can be cut
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            for name, measure in (("sigint_to_exit", lambda: sigint_to_exit(model)),
                                  ("hung_stage_detected", lambda: hung_stage_detected(model)),
                                  ("bad_model_exit", lambda: bad_model_exit(Path(tmp))),
                                  ("labels_after_source_back", lambda: labels_after_source_back(model, stream)),
                                  ("exit_on_source_loss", lambda: exit_on_source_loss(model, stream))):
                print(f"\r{i + 1}/{repeats} {name:<26}", end="", file=sys.stderr, flush=True)
                times[name].append(measure())
    print(file=sys.stderr)
    out: dict = {"cores": os.cpu_count(), "model": Path(model).stem, "source": SOURCE, "repeats": repeats, "seconds": times}
    out["goals"] = {name: {"value": max(values), "goal_below": GOALS_S[name], "met": max(values) < GOALS_S[name]}
                    for name, values in times.items()}
    return out


def table(out: dict) -> str:
    lines = [f"machine: {out['cores']} cores; model {out['model']}, {out['repeats']} repeats; source {out['source']} with pose replay,",
             f"  a live MJPEG stream ({STREAM_SIZE[0]}x{STREAM_SIZE[1]} at {STREAM_FPS:.0f} fps, down {DOWN_S:.0f} s) with blazepose",
             "", f"{'event':<28}{'median s':>10}{'max s':>10}"]
    for name, values in out["seconds"].items():
        lines.append(f"{name:<28}{statistics.median(values):10.2f}{max(values):10.2f}")
    lines += ["", "goals (max over the repeats):"]
    for name, g in out["goals"].items():
        lines.append(f"  {'met ' if g['met'] else 'MISS'} {name}: {g['value']:.2f} (goal < {g['goal_below']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each event")
    parser.add_argument("--model", default=str(default_model()), help="classifier .onnx for the running engines")
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    out = run(max(1, args.repeats), args.model)
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
