"""The MQTT side of `engine bridge`: the broker URL, the options, and a paho-mqtt client that
publishes labels with QoS 1, buffers them (bounded, drop-oldest, counted) while the broker is
away, reconnects with back-off and drains the buffer when it is back.

Threads: paho's network loop runs in its own thread (`loop_start`) and only counts PUBACKs and
queues connection events; the caller's thread offers labels, pumps the buffer into paho and
prints the lines the events call for (`Bridge.service`). Delivery is at least once: a label in
flight when the connection drops is sent again on reconnect (a subscriber may see it twice).
"""
from __future__ import annotations

import json
import os
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from engine.bridge.buffer import DropOldestBuffer
from engine.bridge.topics import check_base_topic, label_topic, status_topic
from engine.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
QOS = 1
# CONNACK refusals that retrying cannot fix (MQTT 5 reason codes; paho maps 3.1.1's onto them).
FATAL_CONNACK = {132: "the broker does not speak MQTT 3.1.1", 133: "the broker refused the client id (--client-id)",
                 134: "bad user name or password (--username, --password-env)",
                 135: "not authorized (--username, --password-env)", 138: "this client is banned",
                 140: "bad authentication method"}


@dataclass(frozen=True)
class BrokerURL:
    """`mqtt://HOST[:PORT]/TOPIC` or `mqtts://...` (TLS); the port defaults to 1883 / 8883."""

    scheme: str
    host: str
    port: int
    topic: str

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_broker_url(text: str) -> BrokerURL:
    """The broker URL of `--to`; ConfigError (exit 2) naming what is wrong."""
    shown = re.sub(r"^([^:/]*://)[^/@]*@", r"\1***@", text)  # a password in the URL is never echoed

    def bad(why: str) -> ConfigError:
        return ConfigError(f"--to {shown}: {why}")

    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise bad(f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad("the scheme must be mqtt:// or mqtts:// (TLS), e.g. mqtt://127.0.0.1:1883/har")
    if not parts.hostname:
        raise bad("no broker host, e.g. mqtt://127.0.0.1:1883/har")
    if parts.username or parts.password:
        raise bad("credentials do not belong in the URL: use --username and --password-env")
    try:
        port = parts.port
    except ValueError:
        raise bad("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise bad("the port must be a number from 1 to 65535")
    if parts.query or parts.fragment:
        raise bad("a topic may not hold '?' or '#'")
    topic = unquote(parts.path[1:]).rstrip("/")
    why = check_base_topic(topic)
    if why:
        raise bad(why)
    return BrokerURL(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], topic)


@dataclass(frozen=True)
class BridgeOptions:
    """Everything `engine bridge` needs on the MQTT side."""

    url: BrokerURL
    client_id: str = ""
    keepalive: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    buffer: int = 10000
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    inflight: int = 100  # labels handed to paho and not yet acknowledged, at most
    stream_status: bool = False  # also each stream's status, retained, on TOPIC/<stream>/status (engine.bridge.status)

    def check(self) -> None:
        if self.buffer < 1:
            raise ConfigError(f"--buffer {self.buffer}: give at least 1 label")
        if not 5 <= self.keepalive <= 65535:
            raise ConfigError(f"--keepalive {self.keepalive}: give 5 to 65535 seconds")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ConfigError(f"--reconnect-max {self.reconnect_max:g}: give at least {self.reconnect_min:g} seconds")
        tls_flags = [name for name, value in (("--tls-ca", self.tls_ca), ("--tls-cert", self.tls_cert),
                                              ("--tls-key", self.tls_key), ("--tls-insecure", self.tls_insecure)) if value]
        if tls_flags and not self.url.tls:
            raise ConfigError(f"{tls_flags[0]} needs TLS: use an mqtts:// URL in --to")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together (a client certificate and its key)")
        for flag, path in (("--tls-ca", self.tls_ca), ("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"{flag} {path}: no such file")
        if self.password is not None and not self.username:
            raise ConfigError("a password needs --username")


@dataclass
class Counts:
    """What the bridge did; `received == published + dropped + unsent` once it has stopped."""

    received: int = 0  # labels decoded from the engine
    published: int = 0  # handed to the MQTT client while connected (QoS 1: re-sent until acknowledged)
    acknowledged: int = 0  # PUBACKs from the broker
    dropped: int = 0  # oldest labels dropped from a full buffer (broker away, or slower than the engine)
    malformed: int = 0  # messages on the labels topic that were not labels (counted by the caller)
    unsent: int = 0  # still buffered when the bridge stopped (broker away at exit, or drain timed out)
    outages: int = 0  # times the broker went away
    outage_s: list[float] = field(default_factory=list)  # how long each outage lasted, seconds
    status_published: int = 0  # stream status snapshots published (--stream-status; not labels, not in the sums above)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (f"bridge: received {self.received}, published {self.published}, acknowledged {self.acknowledged}, "
                f"dropped {self.dropped}, malformed {self.malformed}"
                + (f", unsent {self.unsent}" if self.unsent else "")
                + (f", {self.outages} broker outage{'s' if self.outages != 1 else ''}" if self.outages else ""))


def resolve(url: BrokerURL) -> None:
    """Refuse a broker host that does not resolve (paho would retry it forever)."""
    try:
        socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"--to: broker host {url.host!r} does not resolve ({reason}): check the name, "
                          "or give its IP address") from None


def make_client(options: BridgeOptions, client_id: str) -> Any:
    """A paho client for the broker in `options`: MQTT 3.1.1, clean session, back-off, credentials, TLS."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(options.inflight)
    client.reconnect_delay_set(options.reconnect_min, options.reconnect_max)  # type: ignore[arg-type]
    if options.username:
        client.username_pw_set(options.username, options.password)
    if options.url.tls:
        try:
            client.tls_set(ca_certs=options.tls_ca, certfile=options.tls_cert, keyfile=options.tls_key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"TLS set-up failed ({exc}): check --tls-ca, --tls-cert and --tls-key") from None
        if options.tls_insecure:
            client.tls_insecure_set(True)
    return client


class StatusPublisher:
    """Each stream's latest status, published retained with QoS 1 whenever the broker is there.

    Only the latest snapshot of a stream matters, so nothing is buffered beyond it. Whether the
    broker is reachable is the label connection's to say; this one just follows paho's reconnects.
    """

    def __init__(self, options: BridgeOptions, client_id: str) -> None:
        self._client = make_client(options, client_id)
        self._url = options.url
        self._keepalive = options.keepalive
        self._latest: dict[str, tuple[str, bytes]] = {}
        self._last_info: Any = None
        self.published = 0

    def start(self) -> None:
        self._client.connect_async(self._url.host, self._url.port, keepalive=self._keepalive)
        self._client.loop_start()

    def offer(self, status: Mapping[str, Any]) -> None:
        try:
            topic = status_topic(self._url.topic, str(status["stream"]))
        except ValueError:  # a stream id too long for an MQTT topic: its labels are counted malformed
            return
        self._latest[str(status["stream"])] = (topic, json.dumps(dict(status), separators=(",", ":")).encode("utf-8"))

    def service(self) -> None:
        if not self._client.is_connected():
            return
        for topic, payload in self._latest.values():
            self._last_info = self._client.publish(topic, payload, qos=QOS, retain=True)
            self.published += 1
        self._latest.clear()

    def close(self, timeout_s: float) -> None:
        """Publish the last snapshots (a stream's end) and wait for them, up to `timeout_s`, then disconnect."""
        deadline = time.monotonic() + timeout_s
        while self._latest and time.monotonic() < deadline:
            self.service()
            time.sleep(0.01)
        if self._last_info is not None:
            try:
                self._last_info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # not connected, or the queue was full: the broker keeps the previous snapshot
        self._client.disconnect()
        self._client.loop_stop()


class Bridge:
    """Labels in (`offer`), MQTT out; call `service` often from the same thread, `close` at the end."""

    def __init__(self, options: BridgeOptions, say: Callable[[str], None]) -> None:
        options.check()
        self.options = options
        self.counts = Counts()
        self._say = say
        self._buffer: DropOldestBuffer[tuple[str, bytes]] = DropOldestBuffer(options.buffer)
        self._events: queue.SimpleQueue[tuple[str, float, str]] = queue.SimpleQueue()
        self._acked_lock = threading.Lock()
        self._connected = False  # as last seen by `service` (the caller's thread)
        self._down_since: float | None = time.monotonic()  # not yet connected counts as away
        self._dropped_at_down = 0
        self._ever_up = False
        client_id = options.client_id or f"engine-bridge-{socket.gethostname()}-{os.getpid()}"
        self._client = make_client(options, client_id)
        # Status snapshots go on a connection of their own: the label counts stay exact (no PUBACK of theirs).
        self._status = StatusPublisher(options, client_id + "-status") if options.stream_status else None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # --- paho's thread: count and queue, nothing else --------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            fatal = FATAL_CONNACK.get(int(reason.value))
            self._events.put(("fatal" if fatal else "refused", time.monotonic(), fatal or str(reason)))
        else:
            self._events.put(("up", time.monotonic(), ""))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._events.put(("down", time.monotonic(), str(reason)))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._acked_lock:
            self.counts.acknowledged += 1

    # --- the caller's thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Resolve the broker, try it once (a TLS failure is fatal), then let paho's thread (re)connect."""
        url = self.options.url
        resolve(url)
        try:
            self._client.connect(url.host, url.port, keepalive=self.options.keepalive)
        except ssl.SSLError as exc:
            raise ConfigError(f"--to {url.scheme}://{url.address}: TLS handshake failed ({exc.reason or exc}): "
                              "check --tls-ca (or --tls-insecure for a test broker)") from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._say(f"bridge: broker {url.address} not reachable ({reason}): retrying with back-off up to "
                      f"{self.options.reconnect_max:g} s, buffering up to {self.options.buffer} labels")
        self._client.loop_start()
        if self._status is not None:
            self._status.start()

    def offer_status(self, status: Mapping[str, Any]) -> None:
        """A stream's status snapshot (engine.bridge.status), published retained; ignored without stream_status."""
        if self._status is not None:
            self._status.offer(status)

    def offer(self, label: Mapping[str, Any]) -> None:
        """One decoded label: buffered, then published by `service` while the broker is there."""
        try:
            topic = label_topic(self.options.url.topic, label["stream"], label.get("tracks") or [label["track"]])
        except ValueError:  # a stream id too long for an MQTT topic
            self.counts.malformed += 1
            return
        self.counts.received += 1
        payload = json.dumps(dict(label), separators=(",", ":")).encode("utf-8")
        self._buffer.push((topic, payload))
        self.counts.dropped = self._buffer.dropped

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def connected(self) -> bool:
        return self._connected

    def outstanding(self) -> int:
        with self._acked_lock:
            return self.counts.published - self.counts.acknowledged

    def service(self) -> None:
        """Handle connection events (printing their lines) and publish what the broker can take now."""
        while True:
            try:
                kind, at, detail = self._events.get_nowait()
            except queue.Empty:
                break
            self._event(kind, at, detail)
        if self._status is not None:
            self._status.service()
            self.counts.status_published = self._status.published
        if not self._connected:
            return
        room = self.options.inflight - self.outstanding()
        while room > 0 and self._buffer:
            topic, payload = self._buffer.pop()
            self._client.publish(topic, payload, qos=QOS)  # NO_CONN: paho keeps it and sends it on reconnect
            with self._acked_lock:
                self.counts.published += 1
            room -= 1

    def _event(self, kind: str, at: float, detail: str) -> None:
        address = self.options.url.address
        if kind == "fatal":
            raise ConfigError(f"--to {self.options.url.scheme}://{address}: the broker refused the connection: {detail}")
        if kind == "up" and not self._connected:
            self._connected = True
            if self._ever_up and self._down_since is not None:
                away = at - self._down_since
                self.counts.outage_s.append(round(away, 3))
                self._say(f"bridge: broker {address} back after {away:.1f} s: {len(self._buffer)} labels buffered, "
                          f"{self._buffer.dropped - self._dropped_at_down} dropped meanwhile")
            else:
                waited = (f" ({len(self._buffer)} labels buffered, {self._buffer.dropped} dropped while it was unreachable)"
                          if self.counts.received else "")
                self._say(f"bridge: connected to {address}, publishing labels to {self.options.url.topic}/<stream>/<track>"
                          + waited)
            self._ever_up = True
            self._down_since = None
        elif kind == "down" and self._connected:
            self._connected = False
            self._down_since = at
            self._dropped_at_down = self._buffer.dropped
            self.counts.outages += 1
            self._say(f"bridge: broker {address} went away ({detail}): buffering up to {self.options.buffer} labels, "
                      "dropping the oldest beyond")
        elif kind == "refused" and not self._connected:
            pass  # a transient refusal (server unavailable): paho retries

    def abort(self) -> None:
        """Stop paho's threads at once (after a fatal error)."""
        self._client.disconnect()
        self._client.loop_stop()
        if self._status is not None:
            self._status.close(0.0)

    def close(self, drain_timeout: float) -> Counts:
        """Publish what is buffered and wait for its PUBACKs (while the broker is there, up to `drain_timeout`
        seconds), then disconnect. The counts of what happened; unsent = what was still buffered."""
        deadline = time.monotonic() + drain_timeout
        try:
            while time.monotonic() < deadline:
                self.service()
                if not self._connected or (not self._buffer and self.outstanding() <= 0):
                    break
                time.sleep(0.01)
        finally:
            self.counts.unsent = len(self._buffer)
            self._client.disconnect()
            self._client.loop_stop()
            if self._status is not None:
                self._status.close(max(0.5, deadline - time.monotonic()) if self._connected else 0.0)
                self.counts.status_published = self._status.published
        return self.counts
