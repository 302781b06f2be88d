"""Send and receive one message: a msgpack header frame, then raw array frames, zero copy.

Every stage uses these two functions; none builds multipart messages by hand. Receiving
validates the header against explicit limits so a malformed or hostile peer costs one
counted drop, never a crash.
"""
from __future__ import annotations

import errno
import math
from dataclasses import dataclass

import msgpack
import numpy as np
import zmq

from engine.errors import TransportError
from engine.framework.endpoints import is_tcp
from engine.framework.schema import ALLOWED_DTYPES, REQUIRED_HEADER_KEYS, SCHEMA_VERSION, Limits
from engine.framework.security import CurveKeys, secure_client, secure_server
from pose.coco import N_JOINTS

DEFAULT_LIMITS = Limits()


class MalformedMessage(Exception):
    """A received message breaks the schema; the stage counts it and drops it."""


@dataclass
class Message:
    header: dict
    arrays: dict[str, np.ndarray]

    @property
    def stream(self) -> str:
        return self.header["stream"]

    @property
    def seq(self) -> int:
        return self.header["seq"]


def pack(header: dict, arrays: dict[str, np.ndarray] | None = None) -> list:
    """The frames of one message: the msgpack header, then each array's own memory (no copy)."""
    arrays = arrays or {}
    contiguous = [np.ascontiguousarray(a) for a in arrays.values()]
    specs = [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in zip(arrays, contiguous)]
    head = msgpack.packb({**header, "v": SCHEMA_VERSION, "arrays": specs}, use_bin_type=True)
    return [head, *contiguous]


def send(sock: zmq.Socket, header: dict, arrays: dict[str, np.ndarray] | None = None, flags: int = 0) -> None:
    """Send `header` plus `arrays` (each sent from its own memory, no copy)."""
    sock.send_multipart(pack(header, arrays), flags=flags, copy=False)


def unpack_header(raw: bytes | memoryview, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Decode and check a header frame; raises MalformedMessage with the reason."""
    if len(raw) > limits.max_header_bytes:
        raise MalformedMessage(f"header of {len(raw)} bytes over the {limits.max_header_bytes} limit")
    try:
        header = msgpack.unpackb(
            raw,
            raw=False,
            max_str_len=limits.max_header_bytes,
            max_bin_len=limits.max_header_bytes,
            max_array_len=4096,
            max_map_len=256,
            strict_map_key=True,
        )
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise MalformedMessage(f"header is not msgpack: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise MalformedMessage("header is not a map")
    missing = [k for k in REQUIRED_HEADER_KEYS if k not in header]
    if missing:
        raise MalformedMessage(f"header lacks {', '.join(missing)}")
    if header["v"] != SCHEMA_VERSION:
        raise MalformedMessage(f"schema version {header['v']!r}, expected {SCHEMA_VERSION}")
    if not isinstance(header["stream"], str) or not isinstance(header["seq"], int) or header["seq"] < 0:
        raise MalformedMessage("stream must be a string and seq a non-negative int")
    if not isinstance(header["t_capture_ns"], int) or not isinstance(header["arrays"], list):
        raise MalformedMessage("t_capture_ns must be an int and arrays a list")
    return header


def _array_from_frame(spec: object, frame: zmq.Frame | bytes, limits: Limits) -> tuple[str, np.ndarray]:
    if not isinstance(spec, dict) or not {"name", "dtype", "shape"} <= spec.keys():
        raise MalformedMessage("array spec must be a map with name, dtype, shape")
    name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
    if not isinstance(name, str) or dtype not in ALLOWED_DTYPES:
        raise MalformedMessage(f"array {name!r}: dtype {dtype!r} not accepted")
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_ndim
        or not all(isinstance(d, int) and 0 <= d <= limits.max_array_bytes for d in shape)
    ):
        raise MalformedMessage(f"array {name!r}: bad shape {shape!r}")
    itemsize = np.dtype(dtype).itemsize
    expected = math.prod(shape) * itemsize  # Python ints: a hostile shape cannot overflow the check
    buffer = frame.buffer if isinstance(frame, zmq.Frame) else memoryview(frame)
    if expected > limits.max_array_bytes or expected != buffer.nbytes:
        raise MalformedMessage(f"array {name!r}: {buffer.nbytes} bytes, shape {shape} {dtype} needs {expected}")
    return name, np.frombuffer(buffer, dtype=dtype).reshape(shape)


def decode(parts: list, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Build a Message from received multipart frames (zmq.Frame or bytes)."""
    if not parts:
        raise MalformedMessage("empty message")
    head = parts[0].buffer if isinstance(parts[0], zmq.Frame) else parts[0]
    header = unpack_header(head, limits)
    specs = header["arrays"]
    if len(specs) > limits.max_arrays or len(specs) != len(parts) - 1:
        raise MalformedMessage(f"header lists {len(specs)} arrays, message carries {len(parts) - 1}")
    arrays = dict(_array_from_frame(s, f, limits) for s, f in zip(specs, parts[1:]))
    return Message(header, arrays)


# --- content checks a stage applies to what it takes from a message (all raise MalformedMessage) ---


def people_count(msg: Message, per_person: tuple[str, ...]) -> int:
    """P, the people in a message: the arrays named must be there, each with one row per person
    (other arrays, such as a forwarded frame, are not per person); `keypoints` must be float32[P, 18, 3]."""
    missing = [name for name in per_person if name not in msg.arrays]
    if missing:
        raise MalformedMessage(f"message lacks {', '.join(missing)}")
    arrays = [msg.arrays[name] for name in per_person]
    if any(a.ndim == 0 for a in arrays):
        raise MalformedMessage("a per-person array has no person axis")
    counts = {len(a) for a in arrays}
    if len(counts) > 1:
        raise MalformedMessage(f"arrays disagree on the number of people: {sorted(counts)}")
    if "keypoints" in msg.arrays:
        check_keypoints(msg.arrays["keypoints"])
    return counts.pop() if counts else 0


def check_keypoints(array: np.ndarray, name: str = "keypoints") -> np.ndarray:
    if array.dtype != np.float32 or array.ndim != 3 or array.shape[1:] != (N_JOINTS, 3):
        raise MalformedMessage(f"{name} must be float32[P, {N_JOINTS}, 3], got {array.dtype}{list(array.shape)}")
    return array


def header_number(header: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise MalformedMessage(f"header {key}={value!r} is not a number in [{lo}, {hi}]")
    return float(value)


def header_ints(header: dict, key: str, count: int | None = None, lo: int = -(2**31), hi: int = 2**31 - 1) -> list[int]:
    value = header.get(key, [])
    if (not isinstance(value, list) or (count is not None and len(value) != count)
            or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value)):
        raise MalformedMessage(f"header {key} must be a list of {count or 'n'} integers")
    return value


def recv(sock: zmq.Socket, flags: int = 0, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Receive one message without copying its arrays; raises MalformedMessage."""
    return decode(sock.recv_multipart(flags=flags, copy=False), limits)


# A tcp link between hosts can die silently (a cable, a switch port, a host's network gone): no FIN, no
# RST; TCP alone keeps such a connection through up to ~15 minutes of retransmissions, backing off to
# minutes between tries, then delivers what was queued long after it mattered. ZeroMQ's heartbeats (ZMTP
# PING, answered by the peer's I/O thread, so a busy stage still answers) close a connection silent for
# HEARTBEAT_TIMEOUT_MS: both ends see their peer gone (a ROUTER's send to it fails with EHOSTUNREACH,
# what was queued for it is dropped, not delivered late) and the connecting end reconnects. A connect
# attempt into a dead link gives up after CONNECT_TIMEOUT_MS and is retried, instead of waiting out the
# kernel's SYN back-off, so a link that comes back is rejoined within seconds (tests/test_multihost.py).
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
CONNECT_TIMEOUT_MS = 2000


def _heartbeats(sock: zmq.Socket, endpoint: str) -> None:
    """Heartbeats on a tcp endpoint (before bind/connect: they apply to the connections made after)."""
    if is_tcp(endpoint):
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)  # a peer without heartbeats of its own still times out


def bind(sock: zmq.Socket, endpoint: str, what: str, keys: CurveKeys | None = None) -> None:
    """Bind with a one-line error a user can act on when the address is taken; CURVE and heartbeats on tcp."""
    secure_server(sock, endpoint, keys)
    _heartbeats(sock, endpoint)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise TransportError(
                f"{what} address {endpoint} is already in use: stop the program using it or choose another port"
            ) from None
        raise TransportError(f"{what} cannot bind {endpoint}: {exc.strerror}") from None


def connect(sock: zmq.Socket, endpoint: str, what: str, keys: CurveKeys | None = None) -> None:
    """Connect (ZeroMQ reconnects by itself); CURVE with keys, heartbeats and a bounded connect attempt on tcp."""
    secure_client(sock, endpoint, keys)
    _heartbeats(sock, endpoint)
    if is_tcp(endpoint):
        sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise TransportError(f"{what} cannot connect to {endpoint}: {exc.strerror}") from None
