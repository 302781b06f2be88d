"""Throughput with pose workers on other hosts: network namespaces linked by a bridge, tcp with CURVE.

The pipeline runs in one namespace (with one local pose worker: `--pose-workers 0` means one per
core, so `engine run` always has at least one), 0, 1 or 2 remote workers each in a namespace of its
own. Each run is lossless (not `--realtime`), so its fps is what the workers can do together.
Root only (`ip netns add`). The outage figures (cut, lost, rejoin) come from tests/test_multihost.py
(`pytest tests/test_multihost.py -s` prints them).

    .venv/bin/python benchmarks/multihost.py                       # blazepose, 209 frames, 0/1/2 remote
    .venv/bin/python benchmarks/multihost.py --pose replay --source 'synthetic:?loops=1&subjects=8'
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pipeline_helpers import run_cli  # noqa: E402
from test_multihost import Proc, engine_args, hosts, netns_permitted, worker_args  # noqa: E402


def one_run(net, keys: Path, folder: Path, remote: int, pose: str, source: str) -> dict:
    summary = folder / f"summary_{remote}.json"
    # Workers first: they wait for the engine, so every one is there from the first frame.
    workers = [Proc.start(net.workers[i], *worker_args(keys, pose)) for i in range(remote)]
    t0 = time.monotonic()
    engine = Proc.start(net.pipe, *engine_args(keys, summary, "--source", source, "--pose", pose, "--quiet"))
    try:
        engine.popen.wait(timeout=600)
        for w in workers:
            w.popen.wait(timeout=30)
    finally:
        for proc in (engine, *workers):
            proc.stop()
    if engine.popen.returncode != 0:
        raise SystemExit("engine failed:\n" + "\n".join(line for _, line in engine.err[-20:]))
    run = json.loads(summary.read_text())
    return {"remote": remote, "workers": run["workers"], "frames": run["frames"], "fps": round(run["fps"], 1),
            "lost": run["lost"], "wall_s": round(time.monotonic() - t0, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pose", default="blazepose")
    parser.add_argument("--source", default="synthetic:A05?loops=1&subjects=8")
    parser.add_argument("--remote", default="0,1,2", help="remote worker counts to run (comma separated, at most 2)")
    args = parser.parse_args()
    if (reason := netns_permitted()) is not None:
        raise SystemExit(reason)
    counts = [int(n) for n in args.remote.split(",")]
    with tempfile.TemporaryDirectory(prefix="multihost-") as tmp:
        folder = Path(tmp)
        keys = folder / "keys"
        result = run_cli("keys", "generate", str(keys))
        if result.returncode != 0:
            raise SystemExit(result.stderr)
        with hosts(max(counts + [1])) as net:
            for remote in counts:
                print(json.dumps({"pose": args.pose, "source": args.source, **one_run(net, keys, folder, remote, args.pose, args.source)}),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
