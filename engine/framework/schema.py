"""The message contract between stages and the public label message: written once, imported everywhere."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

SCHEMA_VERSION = 1
LABELS_TOPIC = b"labels"
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
# `t_publish_ns`, which is stamped as the label goes out.
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
    return (f"{label['stream']} track {label['track']} frames {label['seq_from']}-{label['seq_to']}: "
            f"{label['label']} ({float(label['score']):.2f})")
