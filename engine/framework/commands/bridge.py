"""`engine bridge --to mqtt://HOST:PORT/TOPIC`: republish the engine's labels to an MQTT broker.

Subscribes to the labels PUB like `engine listen`, decodes each message with the one label codec
(a bad one is counted, never a crash), and hands the labels to engine.bridge.mqtt, which publishes
them as JSON with QoS 1 on `TOPIC/<stream>/<track>` (engine.bridge.topics: the stream id escaped).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from engine.errors import ConfigError
from engine.framework.schema import DEFAULT_PUBLISH, LABELS_TOPIC, BadLabel, decode_label

DRAIN_TIMEOUT_S = 5.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bridge", help="republish labels to an MQTT broker (QoS 1, TOPIC/<stream>/<track>)")
    p.add_argument("--to", required=True, metavar="URL",
                   help="broker and base topic: mqtt://HOST[:1883]/TOPIC, or mqtts://HOST[:8883]/TOPIC for TLS")
    p.add_argument("--connect", default=DEFAULT_PUBLISH, help=f"the engine's labels endpoint (default {DEFAULT_PUBLISH})")
    p.add_argument("--curve-keys", default=None, help="CURVE key folder, when the engine runs with --curve-keys")
    p.add_argument("--buffer", type=int, default=10000,
                   help="labels held while the broker is away; beyond, the oldest are dropped and counted (default 10000)")
    p.add_argument("--client-id", default="", help="MQTT client id (default engine-bridge-HOST-PID)")
    p.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive, seconds (default 30)")
    p.add_argument("--username", default=None, help="MQTT user name")
    p.add_argument("--password-env", default=None, metavar="VAR",
                   help="name of the environment variable holding the MQTT password (never printed)")
    p.add_argument("--tls-ca", default=None, metavar="FILE", help="CA certificates to check the broker with (mqtts; default: the system's)")
    p.add_argument("--tls-cert", default=None, metavar="FILE", help="client certificate (with --tls-key)")
    p.add_argument("--tls-key", default=None, metavar="FILE", help="client certificate's key")
    p.add_argument("--tls-insecure", action="store_true", help="do not check the broker's host name against its certificate")
    p.add_argument("--reconnect-max", type=float, default=30.0,
                   help="longest wait between reconnection attempts, seconds (back-off from 0.5 s doubles up to it; default 30)")
    p.add_argument("--summary", default=None, metavar="FILE", help="write the counts as JSON at exit")
    p.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds (default: run until Ctrl-C/SIGTERM)")


def _password(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise ConfigError(f"--password-env {var}: no such environment variable")
    return value


def run(args: argparse.Namespace) -> int:
    import zmq

    from engine.bridge.mqtt import Bridge, BridgeOptions, parse_broker_url, resolve
    from engine.framework import transport
    from engine.framework.commands.waiting import check_resolves
    from engine.framework.security import load_keys
    from engine.paths import write_atomically

    url = parse_broker_url(args.to)
    options = BridgeOptions(url=url, client_id=args.client_id, keepalive=args.keepalive, username=args.username,
                            password=_password(args.password_env), tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                            tls_key=args.tls_key, tls_insecure=args.tls_insecure, buffer=args.buffer,
                            reconnect_max=args.reconnect_max)
    if args.summary and not Path(args.summary).resolve().parent.is_dir():
        raise ConfigError(f"--summary {args.summary}: its folder does not exist")
    resolve(url)
    check_resolves(args.connect, "--connect")
    keys = load_keys(args.curve_keys) if args.curve_keys else None

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    bridge = Bridge(options, say)
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)  # a label is a few hundred bytes: refuse floods
    sock.setsockopt(zmq.RCVHWM, 100000)
    try:
        transport.connect(sock, args.connect, "bridge", keys)
        say(f"bridge: labels from {args.connect} to {url.scheme}://{url.address}/{url.topic}/<stream>/<track>")
        try:
            bridge.start()
        except ConfigError:
            bridge.abort()
            raise
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop and (deadline is None or time.monotonic() < deadline):
            busy = bridge.connected and bridge.buffered  # waiting on PUBACKs: look again soon
            if sock.poll(1 if busy else 20):
                for _ in range(1000):  # what has arrived, then publish
                    try:
                        parts = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        bridge.offer(decode_label(parts))
                    except BadLabel:
                        bridge.counts.malformed += 1
            try:
                bridge.service()
            except ConfigError:  # the broker refused these credentials or this client: retrying cannot help
                bridge.abort()
                raise
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

