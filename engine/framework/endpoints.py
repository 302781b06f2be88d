"""ZeroMQ endpoint strings: which ones other machines can reach, how a local peer reaches a wildcard bind.

One place for these rules, so that the supervisor's exposure warnings, the viewer's warning,
CURVE (tcp only) and every local subscriber agree on what an endpoint means.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from engine.errors import ConfigError

# Binds on every interface, and the loopback address a subscriber on the same host connects to instead.
_ALL_INTERFACES = ("tcp://*", "tcp://0.0.0.0")
_LOOPBACK = "tcp://127.0.0.1"


def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; False for a wildcard, an interface name or any other host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: assume reachable from outside


def is_loopback(endpoint: str) -> bool:
    """True for ipc/inproc endpoints and tcp ones on a loopback host (nothing outside this machine reaches them)."""
    return not is_tcp(endpoint) or is_loopback_host(urlparse(endpoint).hostname or "")


def connectable(endpoint: str) -> str:
    """An endpoint bound on every interface (`tcp://*:P`, `tcp://0.0.0.0:P`), as a local peer connects to it."""
    for wildcard in _ALL_INTERFACES:
        if endpoint.startswith(wildcard):
            return _LOOPBACK + endpoint[len(wildcard):]
    return endpoint


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process may still take it first)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_host_port(text: str, what: str, example_port: int, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'PORT', ':PORT', 'HOST:PORT' or '[::1]:PORT' -> (host, port), the host loopback unless given.

    What `--view` and `--metrics` take; anything else is a ConfigError (exit 2) naming `what`.
    """
    host, sep, port_text = str(text).strip().rpartition(":")
    host = host.strip("[]") if sep else ""
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not [HOST:]PORT, e.g. {example_port} or 0.0.0.0:{example_port}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{what} port {port} is out of range: use 1-65535")
    return host or default_host, port
