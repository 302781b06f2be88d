"""View stage: the live web page of a running engine (`engine run --view [HOST:]PORT`).

It subscribes to the labels PUB and render's monitor PUB with small buffers, so it never
slows the pipeline: a busy viewer shows fewer frames. aiohttp is imported only when the page starts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import zmq

from engine.classify.contract import load_contract
from engine.framework.stagekit import StatusReporter, Stop, add_common_args, run_stage
from engine.viewer.feed import ViewerOptions, connectable, parse_bind
from engine.viewer.launch import serve_viewer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="engine stage view", description=__doc__)
    parser.add_argument("--labels", required=True, help="the labels PUB endpoint to connect to")
    parser.add_argument("--monitor", default=None, help="render's monitor PUB endpoint (frames, keypoints, tracks)")
    parser.add_argument("--bind", default="8080", help="[HOST:]PORT to serve the page on (host default 127.0.0.1)")
    parser.add_argument("--backend", default="", help="pose backend name, shown on the page")
    parser.add_argument("--model", default="", help="classifier path, its name is shown on the page")
    parser.add_argument("--max-fps", type=float, default=15.0, help="frames encoded per second at most (default 15)")
    add_common_args(parser)
    args = parser.parse_args(argv)

    stop = Stop()
    host, port = parse_bind(args.bind)
    options = ViewerOptions(
        labels=connectable(args.labels), monitor=connectable(args.monitor) if args.monitor else None,
        host=host, port=port, backend=args.backend, model=Path(args.model).stem if args.model else "", max_fps=args.max_fps,
        label_names=load_contract(args.model).labels if args.model else (), curve_keys=args.curve_keys,
    )
    status = StatusReporter(zmq.Context.instance(), args.status, "view", args.worker)
    said: list[str] = []  # lines for the user (the page's address, warnings), relayed by the supervisor

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        said.append(line)

    def should_stop() -> bool:
        status.send({"url": f"http://{host}:{port}/", "say": said[:]}, force=bool(said))
        said.clear()
        return bool(stop)

    serve_viewer(options, should_stop, say)
    return 0


if __name__ == "__main__":
    run_stage(main)
