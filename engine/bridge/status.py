"""Per-stream status for MQTT (`--stream-status`): what a dashboard shows beside the labels.

Built only from what the bridge hears on the engine's labels socket: the labels themselves and
classify's `progress` messages (every label of stream S up to frame N is out; or S ended). Once a
second per stream, and at once when a stream ends, a snapshot is due:
`{"kind": "status", "stream", "frames", "ended", "labels", "label_rate", "tracks", "t_ns"}` —
frames classified, labels seen, labels per second and the track ids labelled over the last
RECENT_S seconds. Published retained, so a subscriber that comes later sees the latest at once.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INTERVAL_S = 1.0
RECENT_S = 5.0
MAX_STREAMS = 1024  # streams followed at most; the least recently heard is forgotten beyond


@dataclass
class _Stream:
    frames: int = 0
    ended: bool = False
    labels: int = 0
    recent: deque[tuple[float, tuple[int, ...]]] = field(default_factory=deque)  # (when, tracks) per label
    heard: float = 0.0
    published: float | None = None  # when its last snapshot was due
    changed: bool = True  # something new since that snapshot


class StreamStatuses:
    """Follow each stream's progress and labels; `due(now)` gives the snapshots to publish now."""

    def __init__(self, interval_s: float = INTERVAL_S, recent_s: float = RECENT_S) -> None:
        self.interval_s, self.recent_s = interval_s, recent_s
        self._streams: dict[str, _Stream] = {}

    def _get(self, stream: str, now: float) -> _Stream:
        state = self._streams.pop(stream, None) or _Stream()
        self._streams[stream] = state  # most recently heard last
        if len(self._streams) > MAX_STREAMS:
            del self._streams[next(iter(self._streams))]
        state.heard = now
        return state

    def label(self, label: Mapping[str, Any], now: float) -> None:
        state = self._get(str(label["stream"]), now)
        state.labels += 1
        state.recent.append((now, tuple(int(t) for t in (label.get("tracks") or [label["track"]]))))
        state.changed = True

    def progress(self, stream: str, seq: int | None, now: float) -> None:
        """classify's progress: frame `seq` of `stream` is done, or (None) the stream ended."""
        state = self._get(stream, now)
        if seq is None:
            state.ended = True
            state.published = None  # an end is said at once
        else:
            state.frames = max(state.frames, seq + 1)
            state.ended = False  # a stream that ended and starts again (a restarted source)
        state.changed = True

    def due(self, now: float, wall_ns: int | None = None) -> list[dict[str, Any]]:
        """Snapshots of the streams whose interval has passed (or that just ended) and that changed."""
        out = []
        for stream, state in self._streams.items():
            while state.recent and now - state.recent[0][0] > self.recent_s:
                state.recent.popleft()
                state.changed = True  # its rate and tracks changed
            if not state.changed:
                continue
            if state.published is not None and now - state.published < self.interval_s:
                continue
            tracks = sorted({t for _, ids in state.recent for t in ids})
            out.append({"kind": "status", "stream": stream, "frames": state.frames, "ended": state.ended,
                        "labels": state.labels, "label_rate": round(len(state.recent) / self.recent_s, 3),
                        "tracks": tracks, "t_ns": time.time_ns() if wall_ns is None else wall_ns})
            state.published, state.changed = now, False
        return out
