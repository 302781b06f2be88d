"""What `engine listen` and `engine view` say while they wait for an engine.

A ZeroMQ subscriber never fails: with no engine, another address, other CURVE keys, or a
host name that does not resolve, it waits in silence forever. So these commands resolve the
host first (one line and exit 2 when it does not), say on stderr what they wait for, and
after a few seconds with nothing received say what to check.
"""
from __future__ import annotations

import socket
from urllib.parse import urlparse

from engine.errors import ConfigError

# Seconds without a message before the hint: an engine publishes labels within a second or
# two of its first frames, and a monitor frames at once.
SILENCE_HINT_S = 5.0


def tcp_host_port(endpoint: str) -> tuple[str, int | None] | None:
    """(host, port) of a tcp:// endpoint (`tcp://IFACE;HOST:PORT` too), None for ipc:// and the like."""
    if not endpoint.startswith("tcp://"):
        return None
    netloc = endpoint[len("tcp://"):].rpartition(";")[2]  # ZeroMQ's source-interface prefix
    parsed = urlparse(f"tcp://{netloc}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    return parsed.hostname or "", port


def check_resolves(endpoint: str, flag: str) -> None:
    """Refuse a tcp endpoint whose host name does not resolve (ZeroMQ would retry it silently forever)."""
    target = tcp_host_port(endpoint)
    if target is None or target[0] in ("", "*"):
        return
    host, port = target
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{flag} {endpoint}: host {host!r} does not resolve ({reason}): "
                          "check the name, or give the engine's IP address") from None


def waiting_line(command: str, what: str, endpoints: list[str]) -> str:
    """`listen: waiting for labels on tcp://127.0.0.1:5560`: said once, at start, on stderr."""
    return f"{command}: waiting for {what} on {' and '.join(endpoints)}"


def silence_hint(command: str, endpoint: str, curve_keys: str | None) -> str:
    """What to check when nothing arrived from `endpoint` (the labels endpoint) for SILENCE_HINT_S."""
    keys = f"the same --curve-keys as this command ({curve_keys})" if curve_keys else "no --curve-keys (this command has none)"
    return (f"{command}: nothing received from {endpoint} in {SILENCE_HINT_S:g} s: is the engine running, "
            f"started with --publish {endpoint} (or a wildcard bind on that port), and with {keys}?")
