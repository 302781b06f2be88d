"""`engine bridge --to mqtt://HOST:PORT/TOPIC`: republish the engine's labels to an MQTT broker.

Subscribes to the labels PUB like `engine listen`, decodes each message with the one label codec
(a bad one is counted, never a crash), and hands the labels to engine.bridge.mqtt, which publishes
them as JSON with QoS 1 on `TOPIC/<stream>/<track>` (engine.bridge.topics: the stream id escaped).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from engine.errors import ConfigError
from engine.framework.options import add_options, from_args
from engine.framework.schema import DEFAULT_PUBLISH
from engine.framework.stage_options import MqttOptions

DRAIN_TIMEOUT_S = 5.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bridge", help="republish labels to an MQTT broker (QoS 1, TOPIC/<stream>/<track>)")
    p.add_argument("--connect", default=DEFAULT_PUBLISH, help=f"the engine's labels endpoint (default {DEFAULT_PUBLISH})")
    p.add_argument("--curve-keys", default=None, help="CURVE key folder, when the engine runs with --curve-keys")
    add_options(p, MqttOptions)
    p.add_argument("--summary", default=None, metavar="FILE", help="write the counts as JSON at exit")
    p.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds (default: run until Ctrl-C/SIGTERM)")


def run(args: argparse.Namespace) -> int:
    import zmq

    from engine.framework.bridging import labels_socket, open_bridge, relay, start
    from engine.framework.commands.waiting import check_resolves
    from engine.framework.security import load_keys
    from engine.paths import write_atomically

    flags = from_args(MqttOptions, args)
    if args.summary and not Path(args.summary).resolve().parent.is_dir():
        raise ConfigError(f"--summary {args.summary}: its folder does not exist")
    check_resolves(args.connect, "--connect")
    keys = load_keys(args.curve_keys) if args.curve_keys else None

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    bridge = open_bridge(flags, say)
    url = bridge.options.url
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    sock = labels_socket(zmq.Context.instance(), args.connect, keys, progress=flags.stream_status)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"bridge: labels from {args.connect} to {url.scheme}://{url.address}/{url.topic}/<stream>/<track>")
        start(bridge)
        deadline = time.monotonic() + args.duration if args.duration else None
        relay(sock, bridge, lambda: stop or (deadline is not None and time.monotonic() >= deadline))
        counts = bridge.close(DRAIN_TIMEOUT_S)
    finally:
        sock.close(linger=0)
        for s, handler in previous.items():
            signal.signal(s, handler)
    say(counts.line())
    if args.summary:
        text = json.dumps(counts.as_dict(), indent=2) + "\n"
        write_atomically(args.summary, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return 0

