"""The message contract between stages and the public label message: written once, imported everywhere."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import msgpack

SCHEMA_VERSION = 1
LABELS_TOPIC = b"labels"
DEFAULT_PUBLISH = "tcp://127.0.0.1:5560"

# Header keys every inter-stage message carries (see ARCHITECTURE.md "Messages").
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


@dataclass
class LabelMessage:
    """The public output, one per classified window, published on topic `labels`."""

    stream: str
    track: int
    seq_from: int
    seq_to: int
    t_capture_ns: int
    t_publish_ns: int
    label: str
    score: float
    topk: list[list] = field(default_factory=list)
    model: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


LABEL_FIELDS: tuple[str, ...] = tuple(LabelMessage.__dataclass_fields__)
_LABEL_TYPES: dict[str, tuple[type, ...]] = {
    "stream": (str,), "track": (int,), "seq_from": (int,), "seq_to": (int,), "t_capture_ns": (int,),
    "t_publish_ns": (int,), "label": (str,), "score": (int, float), "topk": (list,), "model": (str,),
}


MAX_LABEL_BYTES = 64 * 1024


class BadLabel(ValueError):
    """A message on the labels topic that is not a label; counted and dropped."""


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
        isinstance(value.get(k), types) and not isinstance(value.get(k), bool) for k, types in _LABEL_TYPES.items()
    ) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
        and isinstance(pair[1], int | float) and not isinstance(pair[1], bool)
        for pair in value["topk"]
    )
