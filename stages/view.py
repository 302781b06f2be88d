"""View stage: the live web page of a running engine (`engine run --view [HOST:]PORT`).

It subscribes to the labels PUB and render's monitor PUB with small buffers, so it never
slows the pipeline: a busy viewer shows fewer frames. aiohttp is imported only when the page starts.
"""
from __future__ import annotations

import sys
from pathlib import Path

import zmq

from engine.classify.contract import load_contract
from engine.framework.options import parse_options
from engine.framework.stage_options import ViewStageOptions
from engine.framework.stagekit import StatusReporter, Stop, run_stage
from engine.framework.endpoints import connectable
from engine.viewer.feed import ViewerOptions, parse_bind
from engine.viewer.launch import serve_viewer


def main(argv: list[str] | None = None) -> int:
    args = parse_options(ViewStageOptions, argv, "engine stage view", __doc__)

    stop = Stop()
    host, port = parse_bind(args.bind)
    options = ViewerOptions(
        labels=connectable(args.labels), monitor=connectable(args.monitor) if args.monitor else None,
        host=host, port=port, backend=args.pose, model=Path(args.model).stem if args.model else "", max_fps=args.max_fps,
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
