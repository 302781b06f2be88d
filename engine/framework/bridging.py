"""The MQTT bridge's loop and set-up, shared by `engine bridge` and the bridge stage of `engine run --bridge`.

It reads labels from a SUB socket, decodes each with the one label codec (a bad one is
counted, never a crash), offers them to engine.bridge.mqtt's Bridge and lets it publish, until
told to stop. Here, not in engine/bridge, because it joins the bridge to the framework's
sockets, label codec and flags (engine/bridge knows nothing of them).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

import zmq

from engine.bridge.mqtt import Bridge, BridgeOptions, parse_broker_url, resolve
from engine.bridge.status import StreamStatuses
from engine.errors import ConfigError
from engine.framework import transport
from engine.framework.schema import LABELS_TOPIC, PROGRESS_TOPIC, BadLabel, decode_label, decode_progress, hello_topic
from engine.framework.security import CurveKeys
from engine.framework.stage_options import MqttOptions

BATCH = 1000  # labels taken from the socket before the bridge publishes
MAX_LABEL_BYTES = 1 << 20  # a label is a few hundred bytes: refuse floods
RECEIVE_HWM = 100000  # labels queued while paho is busy; the bridge's own buffer bounds the rest


def labels_socket(ctx: zmq.Context, endpoint: str, keys: CurveKeys | None, progress: bool = False,
                  hello: str | None = None) -> zmq.Socket:
    """A SUB socket on the engine's labels topic (and classify's `progress`, for stream status), connected to
    `endpoint`; `hello` names it to classify as one of the run's own subscribers (the bridge stage)."""
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, LABELS_TOPIC)
    if progress:
        sock.setsockopt(zmq.SUBSCRIBE, PROGRESS_TOPIC)
    if hello is not None:
        sock.setsockopt(zmq.SUBSCRIBE, hello_topic(hello))
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_LABEL_BYTES)
    sock.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
    try:
        transport.connect(sock, endpoint, "bridge", keys)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock


def start(bridge: Bridge) -> None:
    """Connect to the broker; a refusal retrying cannot fix (ConfigError) stops paho's thread first."""
    try:
        bridge.start()
    except ConfigError:
        bridge.abort()
        raise


def relay(sock: zmq.Socket, bridge: Bridge, should_stop: Callable[[], bool]) -> None:
    """Move labels from `sock` to `bridge` until `should_stop()`; ConfigError when the broker refuses us.

    Labels already queued on the socket when it stops are taken too, for the caller's close to send.
    With the bridge's stream_status, progress messages and labels also feed each stream's status.
    """
    statuses = StreamStatuses() if bridge.options.stream_status else None
    while not should_stop():
        busy = bridge.connected and bridge.buffered  # waiting on PUBACKs: look again soon
        if sock.poll(1 if busy else 20):
            _take_queued(sock, bridge, statuses, BATCH)
        if statuses is not None:
            for status in statuses.due(time.monotonic()):
                bridge.offer_status(status)
        try:
            bridge.service()
        except ConfigError:  # the broker refused these credentials or this client: retrying cannot help
            bridge.abort()
            raise
    _take_queued(sock, bridge, statuses, RECEIVE_HWM)
    if statuses is not None:
        for status in statuses.due(time.monotonic()):  # an end just heard is due at once
            bridge.offer_status(status)


def _take_queued(sock: zmq.Socket, bridge: Bridge, statuses: StreamStatuses | None, at_most: int) -> None:
    now = time.monotonic()
    for _ in range(at_most):
        try:
            parts = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        if statuses is not None and len(parts) == 2 and parts[0] == PROGRESS_TOPIC:
            progress = decode_progress(parts)
            if progress is not None:
                statuses.progress(progress[0], progress[1], now)
            continue
        try:
            label = decode_label(parts)
        except BadLabel:
            bridge.counts.malformed += 1
            continue
        bridge.offer(label)
        if statuses is not None:
            statuses.label(label, now)


def bridge_options(flags: MqttOptions) -> BridgeOptions:
    """BridgeOptions from the flags `engine bridge` and the bridge stage share, checked.

    The password comes from the environment variable `password_env` names: never a flag, so it is
    never in a process list or a log.
    """
    password = None
    if flags.password_env is not None:
        password = os.environ.get(flags.password_env)
        if password is None:
            raise ConfigError(f"--password-env {flags.password_env}: no such environment variable")
    options = BridgeOptions(url=parse_broker_url(flags.to), client_id=flags.client_id, keepalive=flags.keepalive,
                            username=flags.username, password=password, tls_ca=flags.tls_ca, tls_cert=flags.tls_cert,
                            tls_key=flags.tls_key, tls_insecure=flags.tls_insecure, buffer=flags.buffer,
                            reconnect_max=flags.reconnect_max, stream_status=flags.stream_status)
    options.check()
    return options


def open_bridge(flags: MqttOptions, say: Callable[[str], None]) -> Bridge:
    """A Bridge for these flags, its broker's host resolved (paho would retry a bad name forever)."""
    options = bridge_options(flags)
    resolve(options.url)
    return Bridge(options, say)
