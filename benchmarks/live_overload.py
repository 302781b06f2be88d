"""A live camera faster than pose: does the output keep up, stay fresh, and count what it dropped?

    python benchmarks/live_overload.py                  # 1x, 2x and 4x the pose rate, 15 s each
    python benchmarks/live_overload.py --seconds 30 --json out.json

The camera is an MJPEG stream over HTTP on 127.0.0.1 (what many IP cameras serve; the tests'
stream server), showing a real BlazePose-detectable person drawn by engine.sources.synthetic.
First the pose rate P of the same frames is measured in the engine itself (a lossless run of a
clip of those frames); then the stream is served at 1x, 2x and 4x P and the engine runs on it
live with BlazePose. Goals at each load:
- output keeps up with pose: the classifier's frame rate is at least 95% of the pose rate;
- p95 capture-to-label latency under 100 ms;
- drops counted once: frames served = frames sent on + frames dropped (within the few frames in
  flight when the run stops), and lost = 0.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' stream server and synthetic frames

from engine.framework.endpoints import free_port  # noqa: E402
from pipeline_helpers import synthetic_frames  # noqa: E402
from stream_server import MjpegServer  # noqa: E402

LOADS = (1, 2, 4)
LATENCY_GOAL_MS = 100.0
KEEP_UP = 0.95
# Frames that may be in flight (read, not yet counted) when a timed run stops.
IN_FLIGHT = 8


def engine(source: str, seconds: float, workers: int, live: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "engine.framework.cli", "run", "--source", source, "--pose", "blazepose",
               "--pose-workers", str(workers), "--quiet", "--no-print-labels", "--summary", str(summary),
               "--publish", f"tcp://127.0.0.1:{free_port()}"]
        if live:
            cmd += ["--duration", str(seconds)]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=seconds + 120)
        if result.returncode != 0:
            raise RuntimeError(f"engine run failed ({result.returncode}): {result.stderr.strip()[-500:]}")
        return json.loads(summary.read_text())


def pose_rate(frames: list, workers: int, tmp: Path) -> float:
    """Frames per second the engine's pose stage manages on these frames, lossless (never waiting for input)."""
    clip = tmp / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, frames[0].shape[1::-1])
    for _ in range(3):
        for frame in frames:
            writer.write(frame)
    writer.release()
    run = engine(str(clip), 60.0, workers, live=False)
    return sum(s["fps"] for k, s in run["per_stage"].items() if k.startswith("pose"))


def overload(frames: list, fps: float, seconds: float, workers: int) -> dict:
    with MjpegServer(frames, fps=fps, max_seconds=seconds + 120) as server:
        run = engine(server.url, seconds, workers, live=True)
        served = server.frames_sent
    stages = run["per_stage"]
    pose_fps = sum(s["fps"] for k, s in stages.items() if k.startswith("pose"))
    sent, dropped = stages["capture"]["frames"], run["dropped"]
    return {
        "served_fps": fps, "served": served, "sent": sent, "dropped": dropped, "lost": run["lost"],
        "pose_fps": round(pose_fps, 1), "classify_fps": round(stages["classify"]["fps"], 1),
        "latency_p95_ms": round(run["latency_ms"]["p95"], 1), "frame_latency_p95_ms": round(run["frame_latency_ms"]["p95"], 1),
        "labels": run["labels"],
    }


def goals(row: dict) -> dict[str, bool]:
    return {
        "keeps_up": row["classify_fps"] >= KEEP_UP * row["pose_fps"],
        "latency": row["latency_p95_ms"] < LATENCY_GOAL_MS,
        "drops_counted_once": row["lost"] == 0 and abs(row["served"] - row["sent"] - row["dropped"]) <= IN_FLIGHT,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each live run")
    parser.add_argument("--workers", type=int, default=1, help="pose workers")
    parser.add_argument("--json", type=Path, help="write the results here as well")
    args = parser.parse_args(argv)

    frames, _ = synthetic_frames(90, action=4)  # 3 s of jumping jacks at 640x480
    with tempfile.TemporaryDirectory() as tmp:
        rate = pose_rate(frames, args.workers, Path(tmp))
    print(f"pose rate in the engine, lossless: {rate:.1f} fps ({args.workers} worker(s))")
    rows = []
    for load in LOADS:
        row = {"load": load, **overload(frames, load * rate, args.seconds, args.workers)}
        row["goals"] = goals(row)
        rows.append(row)
        print(f"{load}x: served {row['served_fps']:.0f} fps ({row['served']} frames), sent on {row['sent']}, "
              f"dropped {row['dropped']}, lost {row['lost']}; pose {row['pose_fps']} fps, classify {row['classify_fps']} fps; "
              f"label latency p95 {row['latency_p95_ms']} ms; goals {row['goals']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"pose_rate_fps": rate, "runs": rows}, indent=2))
    return 0 if all(all(r["goals"].values()) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
