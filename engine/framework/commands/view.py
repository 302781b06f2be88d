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
from dataclasses import dataclass

from engine.errors import ConfigError
from engine.framework.options import add_options, from_args, option, same_as
from engine.framework.schema import DEFAULT_PUBLISH
from engine.framework.stage_options import ViewStageOptions


@dataclass(frozen=True)
class ViewCommandOptions:
    """`engine view`'s options; those of the view stage (`engine run --view`) keep its flags and defaults."""

    connect: str = option(DEFAULT_PUBLISH, flag="--connect", metavar="ENDPOINT", help="the engine's labels endpoint")
    monitor: str | None = option(None, flag="--monitor", metavar="ENDPOINT",
                                 help="the engine's monitor endpoint (default: the --connect host, port + 1); 'none' for labels only")
    bind: str = same_as(ViewStageOptions, "bind")
    curve_keys: str | None = same_as(ViewStageOptions, "curve_keys", metadata={
        "help": "CURVE key folder, when the engine runs with --curve-keys"})
    max_fps: float = same_as(ViewStageOptions, "max_fps")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="serve a live web page of an engine running elsewhere",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p, ViewCommandOptions)


def default_monitor(labels_endpoint: str) -> str:
    """tcp://HOST:P -> tcp://HOST:P+1 (the documented convention)."""
    match = re.fullmatch(r"tcp://(.+):(\d+)", labels_endpoint)
    if not match:
        raise ConfigError(f"cannot derive a monitor endpoint from {labels_endpoint!r}: give --monitor tcp://HOST:PORT (or none)")
    return f"tcp://{match.group(1)}:{int(match.group(2)) + 1}"


def run(namespace: argparse.Namespace) -> int:
    import sys

    from engine.framework.stagekit import Stop
    from engine.framework.endpoints import connectable
    from engine.viewer.feed import ViewerOptions, parse_bind
    from engine.viewer.launch import serve_viewer

    from engine.framework.commands.waiting import check_resolves, silence_hint, waiting_line

    args = from_args(ViewCommandOptions, namespace)
    monitor = None if (args.monitor or "").lower() == "none" else (args.monitor or default_monitor(args.connect))
    host, port = parse_bind(args.bind)
    labels = connectable(args.connect)
    monitor = connectable(monitor) if monitor else None
    check_resolves(labels, "--connect")
    if monitor:
        check_resolves(monitor, "--monitor")
    options = ViewerOptions(labels=labels, monitor=monitor, host=host, port=port, max_fps=args.max_fps,
                            curve_keys=args.curve_keys, silence_hint=silence_hint("view", labels, args.curve_keys))
    print(waiting_line("view", "labels and frames" if monitor else "labels", [e for e in (labels, monitor) if e]),
          file=sys.stderr, flush=True)
    stop = Stop()
    serve_viewer(options, lambda: bool(stop), lambda line: print(line, file=sys.stderr, flush=True))
    return 0
