"""The message contract between stages and the public label message: written once, imported everywhere."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

SCHEMA_VERSION = 1
LABELS_TOPIC = b"labels"
# The engine's own subscribers (the supervisor, sink, viewer and bridge stage) also subscribe to a
# topic nothing is published on, naming themselves, so that a restarted classifier waits for exactly
# them before its first label, however many others (`engine listen`) are subscribed. 0xff sorts
# after every published topic: a reconnecting SUB re-sends its subscriptions in order, so by the
# time its hello is heard its `labels` subscription is in place.
HELLO_PREFIX = b"\xffhello/"


def hello_topic(name: str) -> bytes:
    """The subscription by which the engine's own subscriber `name` makes itself known to classify."""
    return HELLO_PREFIX + name.encode("utf-8")


def hello_name(subscription: bytes) -> str | None:
    """The name in an XPUB subscription message (b"\\x01" + topic) if it is a hello, else None."""
    prefix = b"\x01" + HELLO_PREFIX
    return subscription[len(prefix):].decode("utf-8", "replace") if subscription.startswith(prefix) else None
DEFAULT_PUBLISH = "tcp://127.0.0.1:5560"

# Header keys every inter-stage message carries (see docs/architecture.md "Messages").
REQUIRED_HEADER_KEYS: tuple[str, ...] = ("v", "stream", "seq", "t_capture_ns", "arrays")

# Array dtypes a stage accepts; anything else is a malformed message.
ALLOWED_DTYPES: frozenset[str] = frozenset({"uint8", "int32", "int64", "float32", "float64"})


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what a stage accepts from its input socket (malformed or hostile peers)."""

    max_header_bytes: int = 64 * 1024
    max_array_bytes: int = 64 * 1024 * 1024
    max_arrays: int = 16
    max_ndim: int = 6


# The public label message (docs/architecture.md "Label messages"): its fields in published order and
# the types a subscriber may rely on. The classifier's LabelResult carries all of them but
# `t_publish_ns`, which is stamped as the label goes out. A pair model's label adds `kind` ("pair")
# and `tracks` (both track ids, `track` the first); a one-person label has neither.
LABEL_TYPES: dict[str, tuple[type, ...]] = {
    "stream": (str,), "track": (int,), "seq_from": (int,), "seq_to": (int,), "t_capture_ns": (int,),
    "t_publish_ns": (int,), "label": (str,), "score": (int, float), "topk": (list,), "model": (str,),
}
LABEL_FIELDS: tuple[str, ...] = tuple(LABEL_TYPES)


MAX_LABEL_BYTES = 64 * 1024


class BadLabel(ValueError):
    """A message on the labels topic that is not a label; counted and dropped."""


def encode_label(fields: Mapping[str, Any], t_publish_ns: int) -> list[bytes]:
    """The two frames (topic, msgpack map) that publish one label.

    `fields` holds every label field but `t_publish_ns` (a LabelResult's `as_dict()`); values
    are cast to the published types, so numpy scalars never reach a subscriber.
    """
    label = {
        "stream": str(fields["stream"]), "track": int(fields["track"]), "seq_from": int(fields["seq_from"]),
        "seq_to": int(fields["seq_to"]), "t_capture_ns": int(fields["t_capture_ns"]), "t_publish_ns": int(t_publish_ns),
        "label": str(fields["label"]), "score": float(fields["score"]),
        "topk": [[str(name), float(score)] for name, score in fields["topk"]], "model": str(fields["model"]),
    }
    if fields.get("tracks") is not None:  # a pair model's label: both people (README "The label protocol")
        label["kind"] = "pair"
        label["tracks"] = [int(t) for t in fields["tracks"]]
    return [LABELS_TOPIC, msgpack.packb(label, use_bin_type=True)]


def decode_label(parts: list) -> dict:
    """The label map of a (topic, payload) message from the labels PUB, checked field by field."""
    if len(parts) != 2 or bytes(parts[0]) != LABELS_TOPIC:
        raise BadLabel("not a two-frame message on topic 'labels'")
    if len(parts[1]) > MAX_LABEL_BYTES:
        raise BadLabel(f"label of {len(parts[1])} bytes over the {MAX_LABEL_BYTES} limit")
    try:
        label = msgpack.unpackb(parts[1], raw=False, max_str_len=MAX_LABEL_BYTES, max_array_len=1024, max_map_len=64)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadLabel(f"payload is not msgpack: {type(exc).__name__}") from None
    if not is_label(label) or not math.isfinite(label["score"]):
        raise BadLabel("payload lacks label fields or has them of the wrong types")
    return label


def is_label(value: object) -> bool:
    """True for a map with every label field of the right type (what a subscriber may trust)."""
    return isinstance(value, dict) and all(
        isinstance(value.get(k), types) and not isinstance(value.get(k), bool) for k, types in LABEL_TYPES.items()
    ) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
        and isinstance(pair[1], int | float) and not isinstance(pair[1], bool)
        for pair in value["topk"]
    )


def format_label(label: Mapping[str, Any]) -> str:
    """The one line `engine run` and `engine listen` print per label."""
    tracks = label.get("tracks")
    who = f"tracks {'+'.join(map(str, tracks))}" if isinstance(tracks, list) and tracks else f"track {label['track']}"
    return (f"{label['stream']} {who} frames {label['seq_from']}-{label['seq_to']}: "
            f"{label['label']} ({float(label['score']):.2f})")


# --- status reports (stage -> supervisor) ---------------------------------------------------------
# Every stage pushes a msgpack map to the supervisor twice a second (engine.framework.stagekit). The
# supervisor does arithmetic on these values and prints them: one wrong type in one field must cost
# that one report, never the supervisor. Each field's check is in STATUS_FIELDS; fields not in it are
# dropped (a newer stage may say more than this supervisor reads).
MAX_STATUS_BYTES = 256 * 1024
MAX_STATUS_ITEMS = 4096  # entries of any list or map in a report
MAX_STATUS_TEXT = 4096  # characters of any string in a report
MAX_COUNT = (1 << 63) - 1


class BadStatus(ValueError):
    """A status report that is not msgpack, lacks the stage's identity, or has a field of the wrong type or range."""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _is_rate(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _is_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_STATUS_TEXT


def _is_texts(value: object) -> bool:
    return isinstance(value, list) and len(value) <= MAX_STATUS_ITEMS and all(_is_text(v) for v in value)


def _map_of(check: Any) -> Any:
    def is_map(value: object) -> bool:
        return (isinstance(value, dict) and len(value) <= MAX_STATUS_ITEMS
                and all(_is_text(k) and check(v) for k, v in value.items()))
    return is_map


def _is_workers(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"local", "remote"} and all(_is_count(v) for v in value.values())


@dataclass(frozen=True)
class StatusField:
    """One status report field: its check and, for the error line, what it must be."""

    check: Any  # Callable[[object], bool]
    expected: str


_COUNT = StatusField(_is_count, "a non-negative integer")
_RATE = StatusField(_is_rate, "a finite non-negative number")
_FLAG = StatusField(lambda v: isinstance(v, bool), "true or false")
_TEXT = StatusField(_is_text, f"a string of at most {MAX_STATUS_TEXT} characters")
_TEXTS = StatusField(_is_texts, "a list of strings")
_COUNTS = StatusField(_map_of(_is_count), "a map of string to non-negative integer")
_RATES = StatusField(_map_of(_is_rate), "a map of string to finite non-negative number")
_REASONS = StatusField(_map_of(_is_text), "a map of string to string")

# Field name -> check, for every field any stage reports (stages/*.py, StageMeter.fields()).
STATUS_FIELDS: dict[str, StatusField] = {
    # identity (required: STATUS_IDENTITY)
    "stage": _TEXT, "worker": _COUNT, "pid": _COUNT, "t_ns": _COUNT,
    # every stage's meter
    "frames": _COUNT, "rate": _RATE, "ms_per_frame": _RATE, "t_first_ns": _COUNT, "t_last_ns": _COUNT,
    "malformed": _COUNT, "say": _TEXTS, "ready": _FLAG,
    # capture
    "dropped": _COUNT, "started": _TEXTS, "ended": _TEXTS, "live": _FLAG, "done": _FLAG, "position": _COUNTS,
    "reconnecting": _TEXTS, "lost_announced": _COUNT, "source_errors": _REASONS, "read": _COUNT,
    "workers": StatusField(_is_workers, "a map {local: count, remote: count}"),
    # pose
    "backend": _TEXT, "remote": _FLAG,
    # render
    "queue": _COUNT, "lost": _COUNT, "late": _COUNT, "people_frames": _COUNT,
    # classify
    "labels": _COUNT, "label_rate": _RATE, "latency_ms": _RATES, "frame_latency_ms": _RATES,
    "frames_by_stream": _COUNTS, "stream_lengths": _COUNTS, "out_of_order": _COUNT, "gaps": _COUNT, "model": _TEXT,
    "subscriptions": _COUNT,
    # sink, view
    "missed": _COUNT, "backlog_mb": _RATE, "url": _TEXT,
    # bridge
    "connected": _FLAG, "mqtt": _COUNTS,
}
STATUS_IDENTITY: tuple[str, ...] = ("stage", "worker", "pid")


def decode_status(raw: bytes) -> dict:
    """The checked report in one status message: known fields only, each of its type and range.

    Raises BadStatus naming the first bad field; the supervisor counts it and drops the report.
    """
    if len(raw) > MAX_STATUS_BYTES:
        raise BadStatus(f"status report of {len(raw)} bytes over the {MAX_STATUS_BYTES} limit")
    try:
        report = msgpack.unpackb(raw, raw=False, max_str_len=MAX_STATUS_BYTES, max_bin_len=MAX_STATUS_BYTES,
                                 max_array_len=MAX_STATUS_ITEMS, max_map_len=MAX_STATUS_ITEMS)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadStatus(f"status report is not msgpack: {type(exc).__name__}") from None
    if not isinstance(report, dict):
        raise BadStatus("status report is not a map")
    missing = [k for k in STATUS_IDENTITY if k not in report]
    if missing:
        raise BadStatus(f"status report lacks {missing[0]!r}")
    checked = {}
    for name, value in report.items():
        spec = STATUS_FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            continue
        if not spec.check(value):
            raise BadStatus(f"status field {name}={value!r:.80} must be {spec.expected}")
        checked[name] = value
    return checked


# Classify's progress beside the labels on the same PUB socket, for recorders that must know a
# frame's labels are final: `[b"progress", msgpack {"stream": str, "seq": int}]` after the labels
# of frame `seq` (every label of a window ending at or before it is out, and on one PUB socket
# reaches a subscriber first), `{"stream": str, "eos": true}` after the stream's last frame.
# A subscriber to `labels` never receives it (its b"labels" prefix never matches).
PROGRESS_TOPIC = b"progress"
MAX_PROGRESS_BYTES = 4096


def encode_progress(stream: str, seq: int | None) -> list[bytes]:
    """The frames saying every label of `stream` up to frame `seq` is out (seq None: the stream ended)."""
    body = {"stream": stream, "eos": True} if seq is None else {"stream": stream, "seq": int(seq)}
    return [PROGRESS_TOPIC, msgpack.packb(body, use_bin_type=True)]


def decode_progress(parts: list) -> tuple[str, int | None] | None:
    """(stream, seq) of a progress message, seq None for "stream ended"; None if it is not one."""
    if len(parts) != 2 or bytes(parts[0]) != PROGRESS_TOPIC or len(parts[1]) > MAX_PROGRESS_BYTES:
        return None
    try:
        body = msgpack.unpackb(bytes(parts[1]), raw=False, max_str_len=MAX_PROGRESS_BYTES, max_array_len=16, max_map_len=16)
    except Exception:  # msgpack raises several unrelated types on bad input
        return None
    if not isinstance(body, dict) or not isinstance(body.get("stream"), str):
        return None
    if body.get("eos") is True:
        return body["stream"], None
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    return body["stream"], seq
