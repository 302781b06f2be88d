"""Bridge stage: `engine run --bridge mqtt://HOST:PORT/TOPIC` republishes labels to an MQTT broker.

The same relay as `engine bridge`, run as a stage so the supervisor restarts it when it dies,
sees it hang and counts what it did. It is stopped last, after the classifier's final labels
were published, and then has DRAIN_TIMEOUT_S to hand what it buffered to the broker.
"""
from __future__ import annotations

import sys

import zmq

from engine.framework.bridging import labels_socket, open_bridge, relay, start
from engine.framework.options import parse_options
from engine.framework.stage_options import BridgeStageOptions
from engine.framework.stagekit import StatusReporter, Stop, curve_keys, run_stage

DRAIN_TIMEOUT_S = 5.0


def main(argv: list[str] | None = None) -> int:
    args = parse_options(BridgeStageOptions, argv, "engine stage bridge", __doc__)
    stop = Stop()
    status = StatusReporter(zmq.Context.instance(), args.status, "bridge", args.worker)
    said: list[str] = []  # the bridge's lines (broker away, back), relayed by the supervisor

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        said.append(line)

    bridge = open_bridge(args.mqtt, say)

    def report(force: bool = False) -> None:
        counts = bridge.counts
        status.send({"frames": counts.received, "connected": bridge.connected, "say": said[:],
                     "mqtt": {"published": counts.published, "acknowledged": counts.acknowledged,
                              "dropped": counts.dropped, "malformed": counts.malformed, "unsent": counts.unsent,
                              "outages": counts.outages, "buffered": bridge.buffered,
                              "status_published": counts.status_published}},
                    force=force or bool(said))
        said.clear()

    def should_stop() -> bool:
        report()
        return bool(stop)

    sock = labels_socket(zmq.Context.instance(), args.labels, curve_keys(args), progress=args.mqtt.stream_status,
                         hello="bridge")
    try:
        start(bridge)
        relay(sock, bridge, should_stop)
        bridge.close(DRAIN_TIMEOUT_S)
    finally:
        sock.close(linger=0)
    say(bridge.counts.line())
    report(force=True)
    return 0


if __name__ == "__main__":
    run_stage(main)
