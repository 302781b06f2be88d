"""What has been said about each track: the latest label, labels by frame, a timeline.

Labels arrive after the frames they describe (the classifier sits behind the monitor), so a
live view draws the latest label of a track, while a recorder, which can wait a moment,
draws for frame `seq` the latest label whose window ended at or before `seq`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import zmq

from engine.framework.schema import BadLabel, decode_label  # noqa: F401 (re-exported for the viewer's modules)

TRACK_GAP_S = 2.0  # a track silent this long starts a new timeline segment (it was lost, then found)


def drain_labels(sock: zmq.Socket) -> Iterator[dict | None]:
    """Every label waiting on a SUB socket, decoded; None for each message that is not a label."""
    while True:
        try:
            parts = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            yield decode_label(parts)
        except BadLabel:
            yield None


@dataclass
class Segment:
    """One label held by a track from t_from_s to t_to_s (viewer's wall clock), with its best score."""

    label: str
    t_from_s: float
    t_to_s: float
    score: float


@dataclass
class TrackState:
    latest: dict
    t_seen_s: float
    by_seq: deque = field(default_factory=lambda: deque(maxlen=256))  # (seq_to, label), ascending
    segments: deque = field(default_factory=deque)


class LabelBoard:
    """Labels per (stream, track); `update` once per received label, the queries at any time."""

    def __init__(self, horizon_s: float = 60.0) -> None:
        self.horizon_s = horizon_s
        self.tracks: dict[tuple[str, int], TrackState] = {}

    def update(self, label: dict, now_s: float) -> None:
        key = (label["stream"], int(label["track"]))
        state = self.tracks.get(key)
        if state is None:
            state = self.tracks[key] = TrackState(label, now_s)
        last = state.segments[-1] if state.segments else None
        extended = False
        if last is not None and now_s - last.t_to_s <= TRACK_GAP_S:
            last.t_to_s = now_s  # the previous label held until this one
            if last.label == label["label"]:
                last.score = max(last.score, float(label["score"]))
                extended = True
        if not extended:
            state.segments.append(Segment(label["label"], now_s, now_s, float(label["score"])))
        state.latest, state.t_seen_s = label, now_s
        state.by_seq.append((int(label["seq_to"]), label))
        self.prune(now_s)

    def prune(self, now_s: float) -> None:
        """Forget segments older than the horizon and tracks with nothing left to show."""
        for key, state in list(self.tracks.items()):
            while state.segments and state.segments[0].t_to_s < now_s - self.horizon_s:
                state.segments.popleft()
            if not state.segments and now_s - state.t_seen_s > self.horizon_s:
                del self.tracks[key]

    def latest(self, stream: str) -> dict[int, dict]:
        """track -> its newest label, for a live frame of `stream`."""
        return {track: s.latest for (name, track), s in self.tracks.items() if name == stream}

    def at(self, stream: str, seq: int) -> dict[int, dict]:
        """track -> its newest label whose window ended at or before frame `seq` of `stream`."""
        out = {}
        for (name, track), state in self.tracks.items():
            if name != stream:
                continue
            for seq_to, label in reversed(state.by_seq):
                if seq_to <= seq:
                    out[track] = label
                    break
        return out

    def newest_seq(self, stream: str) -> int:
        """The last frame of `stream` any label covers (-1 when none): frames up to it have their labels."""
        return max((s.by_seq[-1][0] for (name, _), s in self.tracks.items() if name == stream and s.by_seq), default=-1)

    def timeline(self, now_s: float) -> list[dict]:
        """Per track, its segments of the last `horizon_s` as seconds before now (JSON-ready)."""
        rows = []
        for (stream, track), state in sorted(self.tracks.items()):
            segments = [[round(now_s - s.t_from_s, 2), round(now_s - s.t_to_s, 2), s.label, round(s.score, 3)]
                        for s in state.segments]
            if segments:
                rows.append({"stream": stream, "track": track, "segments": segments})
        return rows
