"""MQTT topic names of labels: `TOPIC/<stream>/<track>`, the stream id escaped so it is one topic level.

A pair model's label (two people together) goes to `TOPIC/<stream>/<a>-<b>`, its two track ids
lower first: the same depth as one person's, so `TOPIC/+/+` takes both kinds. A stream's status
(`--stream-status`) goes to `TOPIC/<stream>/status`.

MQTT forbids `+` and `#` in a topic name (they are subscription wildcards), `/` separates levels,
and U+0000 is not allowed at all. A stream id such as `mhad:S08/A03/R01` therefore has its reserved
characters percent-encoded, as UTF-8 bytes `%XX` with upper-case hex: `%` itself, `/`, `+`, `#`
and control characters (U+0000-U+001F, U+007F-U+009F). Nothing else changes, so
`mhad:S08/A03/R01` is `mhad:S08%2FA03%2FR01` and `camera:0` stays `camera:0`. The escaping is
reversible: `unescape_level` (= URL percent-decoding) gives the stream id back.
"""
from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

MAX_TOPIC_BYTES = 65535  # MQTT: a topic name is a UTF-8 string of at most 65535 bytes

_RESERVED = frozenset("%/+#")


def _reserved(ch: str) -> bool:
    code = ord(ch)
    return ch in _RESERVED or code < 0x20 or 0x7F <= code <= 0x9F


def escape_level(text: str) -> str:
    """`text` as one MQTT topic level: reserved characters percent-encoded (see the module doc)."""
    return "".join("".join(f"%{b:02X}" for b in ch.encode("utf-8")) if _reserved(ch) else ch for ch in text)


def unescape_level(level: str) -> str:
    """The text `escape_level` was given."""
    return unquote(level, encoding="utf-8", errors="strict")


def check_base_topic(topic: str) -> str | None:
    """Why `topic` cannot prefix label topics, or None when it can."""
    if not topic:
        return "no topic: give one after the port, e.g. mqtt://HOST:1883/har"
    if any(ch in topic for ch in "+#\x00"):
        return f"topic {topic!r} has a wildcard (+ or #) or NUL, which a published topic may not have"
    if topic.startswith("$"):
        return f"topic {topic!r} starts with '$', which brokers reserve for themselves"
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES // 2:
        return "topic too long"
    return None


def label_topic(base: str, stream: str, tracks: Sequence[int]) -> str:
    """`base/<escaped stream>/<track>`, or `.../<a>-<b>` for a pair; ValueError past MQTT's topic length."""
    return _fitting(f"{base}/{escape_level(stream)}/{'-'.join(str(int(t)) for t in tracks)}", stream)


def status_topic(base: str, stream: str) -> str:
    """`base/<escaped stream>/status`: the stream's status snapshot; ValueError past MQTT's topic length."""
    return _fitting(f"{base}/{escape_level(stream)}/status", stream)


def _fitting(topic: str, stream: str) -> str:
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ValueError(f"topic of stream {stream[:40]!r}... over MQTT's {MAX_TOPIC_BYTES}-byte limit")
    return topic


def parse_label_topic(base: str, topic: str) -> tuple[str, tuple[int, ...]]:
    """(stream, track ids) of a topic `label_topic(base, ...)` made; ValueError for any other topic."""
    prefix = base + "/"
    if not topic.startswith(prefix):
        raise ValueError(f"topic {topic!r} is not under {base!r}")
    stream, sep, tracks = topic[len(prefix):].rpartition("/")
    if not sep or "/" in stream:
        raise ValueError(f"topic {topic!r} is not {base}/<stream>/<track>")
    return unescape_level(stream), tuple(int(t) for t in tracks.split("-"))
