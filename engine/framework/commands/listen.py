"""`engine listen`: a plain subscriber to the labels topic, as any other program would write one."""
from __future__ import annotations

import argparse
import json
import sys
import time

from engine.framework.schema import DEFAULT_PUBLISH, LABELS_TOPIC, BadLabel, decode_label, format_label


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="print labels published by a running engine")
    p.add_argument("--connect", default=DEFAULT_PUBLISH, help=f"labels endpoint (default {DEFAULT_PUBLISH})")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--curve-keys", default=None, help="CURVE key folder, when the engine runs with --curve-keys")
    p.add_argument("--count", type=int, default=0, help="exit after this many labels")
    p.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds")


def run(args: argparse.Namespace) -> int:
    import zmq

    from engine.framework import transport
    from engine.framework.security import load_keys

    from engine.framework.commands.waiting import SILENCE_HINT_S, check_resolves, silence_hint, waiting_line

    check_resolves(args.connect, "--connect")
    keys = load_keys(args.curve_keys) if args.curve_keys else None
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)  # a label is a few hundred bytes: refuse floods
    transport.connect(sock, args.connect, "listen", keys)
    start = time.monotonic()
    deadline = start + args.timeout if args.timeout else None
    received = bad = 0
    hinted = False
    try:  # from the first line on, Ctrl-C is a normal end (exit 0), whenever it comes
        print(waiting_line("listen", "labels", [args.connect]), file=sys.stderr, flush=True)
        while (not args.count or received < args.count) and (deadline is None or time.monotonic() < deadline):
            if not sock.poll(100):
                if not (hinted or received or bad) and time.monotonic() - start >= SILENCE_HINT_S:
                    print(silence_hint("listen", args.connect, args.curve_keys), file=sys.stderr, flush=True)
                    hinted = True
                continue
            try:
                label = decode_label(sock.recv_multipart())
            except BadLabel:
                bad += 1
                continue
            received += 1
            if args.json:
                print(json.dumps(label), flush=True)
            else:
                print(format_label(label), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(linger=0)
    if bad:
        print(f"ignored {bad} malformed messages", file=sys.stderr)
    return 0
