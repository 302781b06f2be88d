"""Soak: the engine on the synthetic source for N minutes while a fault injector kills stages.

    python benchmarks/soak.py --minutes 60 --json soak.json --png soak.png
    python benchmarks/soak.py --minutes 2 --kill-every 20          # what CI runs (tests/test_soak.py)

`engine run --source synthetic: --pose replay` runs as users start it, with a label subscriber
here. Every `--kill-every` seconds one stage process (a child of the engine: capture, a pose
worker, render or classify) gets SIGKILL; a seeded RNG shuffles the roles, and each role is
killed once per round, so a short run still kills every kind of stage. Every `--sample-every`
seconds the resident memory (VmRSS) of each stage is read by role, across restarts.

Reported: frames processed, restarts, labels published, lost frames, per-stage memory growth
(median of the first minute against the last, leaving out each process's first seconds of
warm-up), whether labels ever stopped for more than `--stuck-after` seconds, and whether every
kill was followed by a restarted stage and labels within `--recover-within` seconds. Writes
JSON and a PNG of memory over time per stage (drawn with OpenCV). Exit code 0 when every
check passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import msgpack
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine.framework.endpoints import free_port  # noqa: E402
from engine.paths import default_model  # noqa: E402
from pipeline_helpers import children_of  # noqa: E402
from engine.framework.schema import LABELS_TOPIC  # noqa: E402

WARM_UP_S = 5.0  # a (re)started process's first seconds: imports and buffers, not growth
ROLE_COLOURS = {"capture": (200, 120, 0), "render": (0, 160, 0), "classify": (0, 0, 220)}


# ------------------------------------------------------------------------------ processes


def stage_role(pid: int) -> str | None:
    """'capture', 'pose.1', 'render', 'classify' from a stage's command line; None for others."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "-m" not in argv:
        return None
    module = argv[argv.index("-m") + 1]
    if not module.startswith("stages."):
        return None
    role = module.split(".", 1)[1]
    if role == "pose" and "--worker" in argv:
        role += "." + argv[argv.index("--worker") + 1]
    return role


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class LabelCounter(threading.Thread):
    """A subscriber like any user's: the monotonic time of every label received."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.times = endpoint, []
        self.halt, self.ready = threading.Event(), threading.Event()

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
        sock.setsockopt(zmq.RCVHWM, 100000)
        sock.connect(self.endpoint)
        self.ready.set()
        try:
            while not self.halt.is_set():
                if sock.poll(50):
                    _, payload = sock.recv_multipart()
                    msgpack.unpackb(payload, raw=False)
                    self.times.append(time.monotonic())
        finally:
            sock.close(linger=0)


class StatusReader(threading.Thread):
    """Reads the engine's stderr: status lines and restart notices, each with its time."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[tuple[float, str]] = []

    def run(self) -> None:
        for line in iter(self.stream.readline, ""):
            self.lines.append((time.monotonic(), line.rstrip("\n")))


class Accumulator:
    """A counter that restarts at 0 with its stage: the sum over the stage's lives."""

    def __init__(self) -> None:
        self.done, self.last = 0, 0

    def see(self, value: int) -> None:
        if value < self.last:
            self.done += self.last
        self.last = value

    @property
    def total(self) -> int:
        return self.done + self.last


# ------------------------------------------------------------------------------ the run


@dataclass
class Kill:
    t_s: float
    role: str
    pid: int
    restarted_after_s: float | None = None
    labels_after_s: float | None = None

    def recovered(self, within_s: float) -> bool:
        return self.restarted_after_s is not None and self.labels_after_s is not None and self.labels_after_s <= within_s


@dataclass
class Samples:
    t_s: list[float] = field(default_factory=list)
    rss_kb: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)  # role -> (t, kB, pid)
    pid_started: dict[int, float] = field(default_factory=dict)


def _model(path: str | None, workdir: Path) -> Path:
    if path:
        return Path(path)
    if default_model().is_file():
        return default_model()
    sys.path.insert(0, str(ROOT / "tests"))
    from engine.sources.synthetic import ACTIONS
    from tiny_models import build_tiny_model

    return build_tiny_model(workdir / "soak_tiny.onnx", "keypoint_sequence", list(ACTIONS), window=8, stride=4)


def soak(args: argparse.Namespace) -> dict:
    duration_s = args.minutes * 60.0
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    model = _model(args.model, workdir)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    summary_path = workdir / "summary.json"
    counter = LabelCounter(endpoint)
    counter.start()
    counter.ready.wait(5)
    cmd = [sys.executable, "-m", "engine.framework.cli", "run", "--source", args.source, "--pose", "replay", "--model", str(model),
           "--publish", endpoint, "--no-print-labels", "--summary", str(summary_path), "--duration", str(duration_s),
           *(["--pose-workers", str(args.pose_workers)] if args.pose_workers else []),
           *(["--realtime"] if args.realtime else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    status = StatusReader(proc.stderr)
    status.start()
    rng = random.Random(args.seed)
    samples, kills = Samples(), []
    frames, lost = Accumulator(), Accumulator()
    t0 = time.monotonic()
    next_sample, next_kill = t0, t0 + args.kill_every
    seen_lines = 0
    deck: list[str] = []
    try:
        while proc.poll() is None and time.monotonic() - t0 < duration_s + 30:
            now = time.monotonic()
            roles = {}
            for pid in children_of(proc.pid):
                role = stage_role(pid)
                if role:
                    roles[role] = pid
                    samples.pid_started.setdefault(pid, now - t0)
            if now >= next_sample:
                next_sample += args.sample_every
                samples.t_s.append(now - t0)
                for role, pid in roles.items():
                    kb = rss_kb(pid)
                    if kb:
                        samples.rss_kb.setdefault(role, []).append((now - t0, kb, pid))
            if now >= next_kill and roles and now - t0 < duration_s - args.recover_within:
                next_kill += args.kill_every
                if not deck:  # every role once per round, in a random order
                    deck = rng.sample(sorted(roles), len(roles))
                role = deck.pop()
                if role not in roles:
                    continue
                try:
                    os.kill(roles[role], signal.SIGKILL)
                    kills.append(Kill(now - t0, role, roles[role]))
                except ProcessLookupError:
                    pass
            for kill in kills:  # when the killed role got a new process
                if kill.restarted_after_s is None and role_pid_changed(roles, kill):
                    kill.restarted_after_s = now - t0 - kill.t_s
            for _, line in status.lines[seen_lines:]:
                parse_status(line, frames, lost)
            seen_lines = len(status.lines)
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        status.join(timeout=5)
        time.sleep(0.3)
        counter.halt.set()
        counter.join(timeout=5)
    for _, line in status.lines[seen_lines:]:
        parse_status(line, frames, lost)
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return report(args, proc.returncode, t0, counter.times, samples, kills, frames, lost, summary, status.lines)


def role_pid_changed(roles: dict[str, int], kill: Kill) -> bool:
    pid = roles.get(kill.role)
    return pid is not None and pid != kill.pid


_STATUS = re.compile(r"frames (\d+) labels (\d+)")
_LOST = re.compile(r"lost (\d+)")


def parse_status(line: str, frames: Accumulator, lost: Accumulator) -> None:
    if not line.startswith("["):
        return
    if (m := _STATUS.search(line)) is not None:
        frames.see(int(m.group(1)))
    if (m := _LOST.search(line)) is not None:
        lost.see(int(m.group(1)))


# ------------------------------------------------------------------------------ report


def memory_growth(series: list[tuple[float, int, int]], pid_started: dict[int, float], end_s: float) -> dict:
    """Median RSS of the first minute against the last (each process's warm-up left out)."""
    settled = [(t, kb) for t, kb, pid in series if t - pid_started.get(pid, 0.0) >= WARM_UP_S]
    if not settled:
        return {"first_kb": None, "last_kb": None, "growth_pct": None, "growth_kb": None, "growth_over_first_peak_kb": None}
    window = min(60.0, end_s / 2)
    first = [kb for t, kb in settled if t <= settled[0][0] + window]
    last = [kb for t, kb in settled if t >= end_s - window]
    if not first or not last:
        return {"first_kb": None, "last_kb": None, "growth_pct": None, "growth_kb": None, "growth_over_first_peak_kb": None}
    a, b = float(np.median(first)), float(np.median(last))
    # Bounded buffers (render's reorder buffer fills while a killed pose worker's frame is overdue)
    # raise RSS once to a high-water mark the allocator keeps; a leak goes on past it.
    return {"first_kb": a, "last_kb": b, "growth_kb": b - a, "growth_pct": 100.0 * (b - a) / a,
            "first_peak_kb": max(first), "growth_over_first_peak_kb": b - max(first), "max_kb": max(kb for _, kb in settled)}


def report(args, code, t0, label_times, samples, kills, frames, lost, summary, lines) -> dict:
    end_s = samples.t_s[-1] if samples.t_s else 0.0
    times = [t - t0 for t in label_times]
    # Labels stopped: the longest silence from the first label to the end of the run.
    gaps = np.diff([times[0], *times[1:], min(end_s, args.minutes * 60)]) if times else np.array([])
    longest_gap = float(gaps.max()) if len(gaps) else float("inf")
    for kill in kills:
        after = [t for t in times if t > kill.t_s + (kill.restarted_after_s or 0.0)]
        kill.labels_after_s = after[0] - kill.t_s if after else None
    memory = {role: memory_growth(series, samples.pid_started, end_s) for role, series in sorted(samples.rss_kb.items())}
    restarts_engine = sum((summary.get("restarts") or {}).values())
    result = {
        "minutes": args.minutes, "kill_every_s": args.kill_every, "source": args.source, "seed": args.seed,
        "engine_exit_code": code,
        "frames": frames.total, "labels": len(times), "lost": lost.total,
        "dropped": summary.get("dropped", 0), "restarts": restarts_engine, "restarts_by_stage": summary.get("restarts", {}),
        "kills": [vars(k) | {"recovered": k.recovered(args.recover_within)} for k in kills],
        "every_kill_recovered": all(k.recovered(args.recover_within) for k in kills),
        "longest_label_gap_s": longest_gap, "stuck": longest_gap > args.stuck_after,
        "memory": memory,
        "max_growth_pct": max((m["growth_pct"] for m in memory.values() if m["growth_pct"] is not None), default=None),
        "rss_series": {role: [[round(t, 2), kb] for t, kb, _ in series] for role, series in samples.rss_kb.items()},
        "last_status": next((line for _, line in reversed(lines) if line.startswith("[")), ""),
        "errors": [line for _, line in lines if line.startswith("error")],
    }
    result["passed"] = bool(
        code == 0 and result["labels"] > 0 and result["every_kill_recovered"] and not result["stuck"]
        and len(kills) == result["restarts"]
    )
    return result


def draw_png(result: dict, path: str, size: tuple[int, int] = (1000, 520)) -> None:
    """RSS (MB) over time, one line per stage role; kills as grey verticals."""
    w, h = size
    left, right, top, bottom = 70, 150, 30, 50
    img = np.full((h, w, 3), 255, np.uint8)
    series = result["rss_series"]
    t_max = max([p[0] for s in series.values() for p in s] + [1.0])
    mb = [p[1] / 1024 for s in series.values() for p in s] or [0.0]
    y_lo, y_hi = 0.0, max(mb) * 1.1 + 1

    def xy(t: float, v: float) -> tuple[int, int]:
        return (int(left + (w - left - right) * t / t_max), int(h - bottom - (h - top - bottom) * (v - y_lo) / (y_hi - y_lo)))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for i in range(6):
        v = y_lo + (y_hi - y_lo) * i / 5
        _, y = xy(0, v)
        cv2.line(img, (left - 4, y), (left, y), (0, 0, 0), 1)
        cv2.putText(img, f"{v:.0f}", (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        t = t_max * i / 5
        x, _ = xy(t, y_lo)
        cv2.line(img, (x, h - bottom), (x, h - bottom + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{t:.0f}", (x - 10, h - bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "RSS (MB)", (8, top - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "time (s)", (w // 2 - 30, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for kill in result["kills"]:
        x, _ = xy(kill["t_s"], y_lo)
        cv2.line(img, (x, top), (x, h - bottom), (190, 190, 190), 1)
        cv2.putText(img, kill["role"], (x + 2, top + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (120, 120, 120), 1, cv2.LINE_AA)
    for i, (role, points) in enumerate(sorted(series.items())):
        colour = ROLE_COLOURS.get(role, (60 + 60 * (i % 3), 0, 160 + 30 * (i % 3)))
        pts = np.array([xy(t, kb / 1024) for t, kb in points], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        y = top + 20 + 22 * i
        cv2.line(img, (w - right + 10, y), (w - right + 35, y), colour, 2)
        cv2.putText(img, role, (w - right + 40, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    title = f"soak {result['minutes']} min, kill every {result['kill_every_s']:.0f} s: {len(result['kills'])} kills"
    cv2.putText(img, title, (left + 90, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(path, img):
        raise OSError(f"cannot write {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between two SIGKILLs of a random stage")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--stuck-after", type=float, default=10.0, help="a label gap longer than this is a stuck stage")
    parser.add_argument("--recover-within", type=float, default=10.0, help="labels must resume this soon after a kill")
    parser.add_argument("--source", default="synthetic:")
    parser.add_argument("--model", default=None, help="classifier (default models/default.onnx, else a tiny test model)")
    parser.add_argument("--pose-workers", type=int, default=0, help="pose workers (default: the engine's, one per core)")
    parser.add_argument("--realtime", action="store_true", help="pace the source at its frame rate")
    parser.add_argument("--seed", type=int, default=0, help="which stage each kill picks")
    parser.add_argument("--json", default=None, help="write the full result here")
    parser.add_argument("--png", default=None, help="draw memory over time per stage here")
    args = parser.parse_args(argv)
    result = soak(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.png:
        draw_png(result, args.png)
    growth = ", ".join(f"{role} {m['growth_pct']:+.1f}% ({m['growth_kb'] / 1024:+.1f} MB, "
                       f"{m['growth_over_first_peak_kb'] / 1024:+.1f} MB over the first minute's peak)"
                       for role, m in result["memory"].items() if m["growth_pct"] is not None)
    print(f"soak {args.minutes:g} min: frames {result['frames']}, labels {result['labels']}, lost {result['lost']}, "
          f"restarts {result['restarts']} of {len(result['kills'])} kills, every kill recovered: {result['every_kill_recovered']}, "
          f"longest label gap {result['longest_label_gap_s']:.1f} s, stuck: {result['stuck']}")
    print(f"memory growth (first vs last minute): {growth}")
    for kill in result["kills"]:
        print(f"  kill {kill['role']} at {kill['t_s']:.0f} s: back after {kill['restarted_after_s']}, labels after "
              f"{kill['labels_after_s']}, recovered {kill['recovered']}")
    for line in result["errors"]:
        print(f"  engine: {line}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
