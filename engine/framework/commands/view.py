"""`engine view`: the live web page for an engine running elsewhere (or here, started without --view).

It subscribes to the engine's labels endpoint (`--connect`) and to its monitor endpoint
(`--monitor`), which the engine exposes when run with `--monitor tcp://HOST:PORT`. By
convention the monitor is the labels port + 1 on the same host, so
`engine run --publish tcp://0.0.0.0:5560 --monitor tcp://0.0.0.0:5561` on the engine's
machine pairs with `engine view --connect tcp://ENGINE:5560` anywhere. Without a monitor
the page shows labels, timeline and rates, but no video.
"""
from __future__ import annotations

import argparse
import re

from engine.errors import ConfigError
from engine.framework.schema import DEFAULT_PUBLISH


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="serve a live web page of an engine running elsewhere",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", default=DEFAULT_PUBLISH, help=f"the engine's labels endpoint (default {DEFAULT_PUBLISH})")
    p.add_argument("--monitor", default=None,
                   help="the engine's monitor endpoint (default: the --connect host, port + 1); 'none' for labels only")
    p.add_argument("--bind", default="8080", metavar="[HOST:]PORT", help="where to serve the page (default 127.0.0.1:8080)")
    p.add_argument("--curve-keys", default=None, help="CURVE key folder, when the engine runs with --curve-keys")
    p.add_argument("--max-fps", type=float, default=15.0, help="frames sent to browsers per second at most (default 15)")


def default_monitor(labels_endpoint: str) -> str:
    """tcp://HOST:P -> tcp://HOST:P+1 (the documented convention)."""
    match = re.fullmatch(r"tcp://(.+):(\d+)", labels_endpoint)
    if not match:
        raise ConfigError(f"cannot derive a monitor endpoint from {labels_endpoint!r}: give --monitor tcp://HOST:PORT (or none)")
    return f"tcp://{match.group(1)}:{int(match.group(2)) + 1}"


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.framework.stagekit import Stop
    from engine.viewer.feed import ViewerOptions, connectable, parse_bind
    from engine.viewer.launch import serve_viewer

    monitor = None if (args.monitor or "").lower() == "none" else (args.monitor or default_monitor(args.connect))
    host, port = parse_bind(args.bind)
    options = ViewerOptions(labels=connectable(args.connect), monitor=connectable(monitor) if monitor else None,
                            host=host, port=port, max_fps=args.max_fps, curve_keys=args.curve_keys)
    stop = Stop()
    serve_viewer(options, lambda: bool(stop), lambda line: print(line, file=sys.stderr, flush=True))
    return 0
