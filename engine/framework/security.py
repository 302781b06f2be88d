"""ZeroMQ CURVE for tcp endpoints: encryption, and authentication of clients by their public key.

`engine keys generate DIR` writes two certificates in ZeroMQ's text format (no pickle):
`server.key` / `server.key_secret` for the processes that bind, `client.key` / `client.key_secret`
for those that connect; `DIR/authorized/` holds the public keys a server accepts (the generated
client key; copy more `*.key` files there to admit more clients). ipc:// endpoints inside one
host never use CURVE: they live in a private (0700) run directory.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engine.errors import ConfigError
from engine.framework.endpoints import is_tcp

_authenticators: dict[int, ThreadAuthenticator] = {}


@dataclass(frozen=True)
class CurveKeys:
    folder: Path
    server_public: bytes
    server_secret: bytes | None
    client_public: bytes
    client_secret: bytes

    @property
    def authorized(self) -> Path:
        return self.folder / "authorized"


def generate_keys(folder: str | Path) -> Path:
    """Write a server and a client key pair, and authorize the client; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name in ("server", "client"):
        for suffix in (".key", ".key_secret"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
        zmq.auth.create_certificates(str(folder), name)
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True)
    shutil.copy(folder / "client.key", authorized / "client.key")
    return folder


def load_keys(folder: str | Path) -> CurveKeys:
    """Read a key folder; a client-only folder (no server secret) is enough for `listen`/`view`."""
    folder = Path(folder)
    try:
        server_public, server_secret = zmq.auth.load_certificate(str(folder / "server.key_secret"))
    except (OSError, ValueError):
        try:
            server_public, server_secret = zmq.auth.load_certificate(str(folder / "server.key"))
        except (OSError, ValueError):
            raise ConfigError(f"CURVE key folder {folder} has no server.key: create one with `engine keys generate {folder}`") from None
    try:
        client_public, client_secret = zmq.auth.load_certificate(str(folder / "client.key_secret"))
    except (OSError, ValueError):
        raise ConfigError(f"CURVE key folder {folder} has no client.key_secret: create one with `engine keys generate {folder}`") from None
    return CurveKeys(folder, server_public, server_secret, client_public, client_secret)


def secure_server(sock: zmq.Socket, endpoint: str, keys: CurveKeys | None) -> None:
    """Make a binding socket a CURVE server (tcp only) that admits authorized clients only."""
    if keys is None or not is_tcp(endpoint):
        return
    if keys.server_secret is None:
        raise ConfigError(f"CURVE key folder {keys.folder} lacks server.key_secret, which binding needs")
    _authenticator(sock.context, keys)
    sock.curve_secretkey = keys.server_secret
    sock.curve_publickey = keys.server_public
    sock.curve_server = True


def secure_client(sock: zmq.Socket, endpoint: str, keys: CurveKeys | None) -> None:
    if keys is None or not is_tcp(endpoint):
        return
    sock.curve_secretkey = keys.client_secret
    sock.curve_publickey = keys.client_public
    sock.curve_serverkey = keys.server_public


def _authenticator(ctx: zmq.Context, keys: CurveKeys) -> None:
    """One ZAP handler per context, checking client keys against `authorized/`."""
    if id(ctx) in _authenticators:
        return
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized))
    _authenticators[id(ctx)] = auth
