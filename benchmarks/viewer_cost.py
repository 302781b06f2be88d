"""What the live viewer costs the pipeline, in frames per second, measured in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/viewer_cost.py [--seconds 12] [--repeats 2] [--json out.json]

The engine runs on the synthetic source with the replay backend (the fastest pipeline, so
the viewer's share shows most), full speed (not paced), in four set-ups, interleaved
`--repeats` times so a busy neighbour hurts them alike:

- baseline: no viewer;
- frames forwarded: `--monitor` only (pose workers send frames on, render publishes them);
- view: `--view PORT`, nobody watching (frames forwarded, the view stage subscribed);
- view + client: `--view PORT` and a browser-less client pulling the WebSocket (aiohttp),
  so the view stage draws and JPEG-encodes up to 15 frames a second and sends them.

Throughput is the classify stage's frames per second from `engine run --summary`. CPU is the
stage processes' user + system time between a 3 s warm-up and the end, in % of one core
(all stages, and the view stage alone): with `--realtime` the fps cannot move, so the cost
shows there. Model:
models/default.onnx when it exists, else the tiny keypoint model of tests/tiny_models.py.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine.framework.endpoints import free_port  # noqa: E402
from engine.paths import default_model  # noqa: E402
from engine.sources.synthetic import ACTIONS  # noqa: E402

SETUPS = ("baseline", "frames forwarded", "view", "view + client")


class Client(threading.Thread):
    """Pulls the viewer's WebSocket like a browser would, counting JPEG frames."""

    def __init__(self, port: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.frames = self.bytes = 0
        self.first_s: float | None = None
        self.last_s = 0.0

    def run(self) -> None:
        asyncio.run(self._pull())

    async def _pull(self) -> None:
        import aiohttp

        deadline = time.monotonic() + self.seconds
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:  # the page is up once the engine has started the view stage
                try:
                    async with http.ws_connect(f"http://127.0.0.1:{self.port}/ws") as ws:
                        while time.monotonic() < deadline:
                            msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                            if msg.type == aiohttp.WSMsgType.BINARY:
                                now = time.monotonic()
                                self.first_s = self.first_s or now
                                self.last_s = now
                                self.frames += 1
                                self.bytes += len(msg.data)
                            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                                break
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    await asyncio.sleep(0.2)

    def fps(self) -> float:
        if self.first_s is None or self.frames < 2 or self.last_s <= self.first_s:
            return 0.0
        return (self.frames - 1) / (self.last_s - self.first_s)


def stage_cpu_ticks(engine_pid: int) -> dict[str, int]:
    """utime + stime (clock ticks) of each stage process the engine started, by module name."""
    ticks: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != engine_pid or b"-m" not in cmd:
            continue
        module = cmd[cmd.index(b"-m") + 1].decode()
        ticks[module] = ticks.get(module, 0) + int(fields[11]) + int(fields[12])
    return ticks


def steady_cpu(engine: subprocess.Popen, seconds: float, warmup_s: float = 3.0) -> dict[str, float]:
    """Per-stage CPU (% of one core) between warm-up and the end of the run: start-up left out."""
    time.sleep(warmup_s)
    t0, first = time.monotonic(), stage_cpu_ticks(engine.pid)
    time.sleep(max(1.0, seconds - warmup_s - 1.0))
    t1, last = time.monotonic(), stage_cpu_ticks(engine.pid)
    hz = os.sysconf("SC_CLK_TCK")
    return {m: 100 * (last[m] - first.get(m, 0)) / hz / (t1 - t0) for m in last}


def run_once(setup: str, model: Path, seconds: float, workdir: Path, realtime: bool) -> dict:
    summary = workdir / f"summary-{time.monotonic_ns()}.json"
    args = [sys.executable, "-m", "engine.framework.cli", "run", "--source", "synthetic:", "--pose", "replay", "--model", str(model),
            "--publish", f"tcp://127.0.0.1:{free_port()}", "--duration", str(seconds), "--quiet", "--summary", str(summary)]
    if realtime:
        args.append("--realtime")
    port = free_port()
    if setup == "frames forwarded":
        args += ["--monitor", f"ipc://{workdir}/monitor-{port}"]
    elif setup.startswith("view"):
        args += ["--view", str(port)]
    client = Client(port, seconds + 5) if setup == "view + client" else None
    engine = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if client is not None:
        client.start()
    cpu = steady_cpu(engine, seconds)
    _, err = engine.communicate(timeout=seconds + 60)
    if engine.returncode != 0:
        raise SystemExit(f"engine run ({setup}) failed with code {engine.returncode}: {err.strip()[-500:]}")
    if client is not None:
        client.join(timeout=10)
    result = json.loads(summary.read_text())
    return {"setup": setup, "fps": result["fps"], "frames": result["frames"],
            "latency_p50_ms": result.get("latency_ms", {}).get("p50", 0.0),
            "cpu_pct": sum(cpu.values()), "view_cpu_pct": cpu.get("stages.view", 0.0),
            "client_fps": client.fps() if client else None,
            "client_kb_per_frame": client.bytes / client.frames / 1024 if client and client.frames else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each engine run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the four set-ups, interleaved")
    parser.add_argument("--model", default=None, help="classifier .onnx (default: models/default.onnx or a tiny model)")
    parser.add_argument("--realtime", action="store_true",
                        help="pace the source at 30 fps like a camera: then the cost shows in CPU ms per frame")
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="viewer-cost-") as tmp:
        workdir = Path(tmp)
        model = Path(args.model) if args.model else default_model()
        if not model.exists():
            from tiny_models import build_tiny_model

            model = build_tiny_model(workdir / "tiny.onnx", "keypoint_sequence", list(ACTIONS), window=8, stride=4, fps=30)
        runs = []
        for round_ in range(args.repeats):
            for setup in SETUPS:
                run = run_once(setup, model, args.seconds, workdir, args.realtime)
                runs.append(run)
                client = f", client got {run['client_fps']:.1f} fps" if run["client_fps"] is not None else ""
                print(f"round {round_ + 1} {setup:<17} {run['fps']:7.1f} fps{client}", file=sys.stderr, flush=True)

    base = statistics.median(r["fps"] for r in runs if r["setup"] == "baseline")
    pace = "paced at 30 fps" if args.realtime else "full speed"
    print(f"\nengine fps, synthetic source ({pace}), replay backend, model {model.name}, {args.seconds:.0f} s x {args.repeats} per set-up "
          f"(median; cost vs baseline in the same run)")
    print(f"{'set-up':<18}{'fps':>8}{'cost fps':>10}{'cost %':>8}{'stages cpu %':>14}{'view cpu %':>12}{'p50 ms':>8}{'client fps':>12}")
    table = []
    for setup in SETUPS:
        mine = [r for r in runs if r["setup"] == setup]
        fps = statistics.median(r["fps"] for r in mine)
        client = [r["client_fps"] for r in mine if r["client_fps"] is not None]
        row = {"setup": setup, "fps": fps, "cost_fps": base - fps, "cost_pct": 100 * (base - fps) / base if base else 0.0,
               "latency_p50_ms": statistics.median(r["latency_p50_ms"] for r in mine),
               "cpu_pct": statistics.median(r["cpu_pct"] for r in mine),
               "view_cpu_pct": statistics.median(r["view_cpu_pct"] for r in mine),
               "client_fps": statistics.median(client) if client else None, "runs": [r["fps"] for r in mine]}
        table.append(row)
        client_text = f"{row['client_fps']:.1f}" if row["client_fps"] is not None else "-"
        print(f"{setup:<18}{fps:8.1f}{row['cost_fps']:10.1f}{row['cost_pct']:8.1f}{row['cpu_pct']:14.0f}{row['view_cpu_pct']:12.1f}"
              f"{row['latency_p50_ms']:8.0f}{client_text:>12}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(model), "seconds": args.seconds, "repeats": args.repeats,
                                               "realtime": args.realtime,
                                               "setups": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
