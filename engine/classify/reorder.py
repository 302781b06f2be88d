"""Restores frame order per stream after parallel pose workers, with a bounded buffer.

Frames are chained, not counted: each names the previous frame sent on its stream (`prev`,
-1 for the first), so a frame a live capture dropped on purpose is never waited for. A frame
that will never come is announced (`lost`: capture knew what a dead worker held) and counted
at once. Only a frame that neither comes nor is announced (a stage restarted elsewhere) costs
a wait: after `gap_timeout_s` without progress, or when the buffer is full, the buffer skips
ahead and counts the missing frames as lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
# How long a buffer that has released nothing yet gathers frames before starting mid-stream.
JOIN_WAIT_S = 0.5


@dataclass
class _Entry(Generic[T]):
    seq: int
    item: T | None  # None: a frame announced lost
    dropped: int  # the capture's drop counter when the frame was sent (live sources)


@dataclass
class ReorderBuffer(Generic[T]):
    capacity: int = 1024
    gap_timeout_s: float = 1.0
    last: int | None = None  # seq of the last frame released (or counted lost); None before the first
    lost: int = 0
    late: int = 0
    _pending: dict[int, _Entry[T]] = field(default_factory=dict)  # keyed by the previous frame's seq
    _seqs: set[int] = field(default_factory=set)
    _gap_since: float | None = None
    _last_dropped: int = 0

    def push(self, seq: int, item: T, now: float, prev: int | None = None, dropped: int = 0) -> list[tuple[int, T]]:
        """Add one frame (`prev` defaults to seq - 1: a lossless stream); returns the frames now ready, in order."""
        if not self._add(seq, item, seq - 1 if prev is None else prev, dropped):
            self.late += 1  # arrived after we gave up on it, or a duplicate
            return []
        return self._settle(now)

    def mark_lost(self, seq: int, prev: int, now: float) -> list[tuple[int, T]]:
        """A frame that will not come (announced by capture); counted lost when its turn comes."""
        if not self._add(seq, None, prev, self._last_dropped):
            return []  # already here, or already given up on: nothing to count twice
        return self._settle(now)

    def poll(self, now: float) -> list[tuple[int, T]]:
        """Frames released because the one they wait for is overdue.

        Joining a stream midway (render restarted), the wait is only long enough to gather frames
        that workers finished out of order: there is no earlier frame to wait for.
        """
        timeout = self.gap_timeout_s if self.last is not None else min(self.gap_timeout_s, JOIN_WAIT_S)
        if self._pending and self._gap_since is not None and now - self._gap_since >= timeout:
            return self._skip(now)
        return []

    def __len__(self) -> int:
        return len(self._pending)

    def _add(self, seq: int, item: T | None, prev: int, dropped: int) -> bool:
        if (self.last is not None and seq <= self.last) or seq in self._seqs or prev in self._pending:
            return False
        self._pending[prev] = _Entry(seq, item, dropped)
        self._seqs.add(seq)
        if self.last is None and prev < 0:
            self.last = prev  # the stream's first frame: the chain starts here
        return True

    def _settle(self, now: float) -> list[tuple[int, T]]:
        ready = self._release()
        if len(self._pending) > self.capacity:
            ready += self._skip(now)
        if self._pending and self._gap_since is None:
            self._gap_since = now
        return ready

    def _release(self) -> list[tuple[int, T]]:
        ready: list[tuple[int, T]] = []
        while self.last is not None and self.last in self._pending:
            entry = self._pending.pop(self.last)
            self._seqs.discard(entry.seq)
            if entry.item is None:
                self.lost += 1
            else:
                ready.append((entry.seq, entry.item))
                self._last_dropped = entry.dropped
            self.last = entry.seq
            self._gap_since = None
        return ready

    def _skip(self, now: float) -> list[tuple[int, T]]:
        prev, entry = min(self._pending.items(), key=lambda kv: kv[1].seq)
        if self.last is not None:
            # Between the last frame and this one: frames dropped on purpose (the capture's counter
            # says how many) and frames lost. Before the first frame nothing is known to be missing.
            between = entry.seq - self.last - 1
            self.lost += max(0, between - max(0, entry.dropped - self._last_dropped))
        self.last = prev
        ready = self._release()
        self._gap_since = now if self._pending else None
        return ready
