"""ZeroMQ CURVE for tcp endpoints: encryption, and authentication of clients by their public key.

`engine keys generate DIR` writes two certificates in ZeroMQ's text format (no pickle):
`server.key` / `server.key_secret` for the processes that bind, `client.key` / `client.key_secret`
for those that connect; `DIR/authorized/` holds the public keys a server accepts (the generated
client key; copy more `*.key` files there to admit more clients). ipc:// endpoints inside one
host never use CURVE: they live in a private (0700) run directory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engine.errors import ConfigError
from engine.framework.endpoints import is_tcp
from engine.paths import write_atomically

PUBLIC_MODE = 0o644  # a public key is meant to be handed out
SECRET_MODE = 0o600  # a secret key is readable by its owner only, from the moment it exists

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


def certificate_text(public_key: bytes, secret_key: bytes | None = None) -> str:
    """A key file in ZeroMQ's certificate format (what zmq.auth.load_certificate reads)."""
    kind = "Secret" if secret_key else "Public"
    lines = [f"#   ZeroMQ CURVE {kind} Certificate, written by `engine keys generate`",
             *(["#   Keep it to yourself: anyone holding it can pose as its owner."] if secret_key else []),
             "", "metadata", "curve", f'    public-key = "{public_key.decode("ascii")}"']
    if secret_key:
        lines.append(f'    secret-key = "{secret_key.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _write_key(path: Path, text: str, mode: int) -> None:
    """Write a key file atomically with `mode` set before it appears (a secret is never world-readable, even briefly)."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="ascii"), mode=mode)


def generate_keys(folder: str | Path) -> Path:
    """Write a server and a client key pair, and authorize the client; returns the folder.

    Public keys (`*.key`) are 0644, secret keys (`*.key_secret`) 0600; the folder is 0700.
    """
    folder = Path(folder)
    authorized = folder / "authorized"
    try:
        authorized.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        for name in ("server", "client"):
            public, secret = zmq.curve_keypair()
            _write_key(folder / f"{name}.key", certificate_text(public), PUBLIC_MODE)
            _write_key(folder / f"{name}.key_secret", certificate_text(public, secret), SECRET_MODE)
            if name == "client":
                _write_key(authorized / "client.key", certificate_text(public), PUBLIC_MODE)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"key folder {folder}: cannot write keys there ({reason}): give `engine keys generate` "
                          f"a writable folder (or one it can create)") from None
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
