"""Restores frame order per stream after parallel pose workers, with a bounded buffer.

A frame that never comes (a worker killed while holding it) must not stall the stream:
after `gap_timeout_s`, or when the buffer is full, the buffer skips ahead and counts the
missing frames as lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class ReorderBuffer(Generic[T]):
    capacity: int = 1024
    gap_timeout_s: float = 1.0
    expected: int | None = None
    lost: int = 0
    late: int = 0
    _pending: dict[int, T] = field(default_factory=dict)
    _gap_since: float | None = None

    def push(self, seq: int, item: T, now: float) -> list[tuple[int, T]]:
        """Add one item; returns the items now ready, in order."""
        if self.expected is not None and seq < self.expected or seq in self._pending:
            self.late += 1  # arrived after we gave up on it, or a duplicate
            return []
        self._pending[seq] = item
        if self.expected is None and seq == 0:
            self.expected = 0
        ready = self._release()
        if len(self._pending) > self.capacity:
            ready += self._skip(now)
        if self._pending and self._gap_since is None:
            self._gap_since = now
        return ready

    def poll(self, now: float) -> list[tuple[int, T]]:
        """Items released because the frame they wait for is overdue."""
        if self._pending and self._gap_since is not None and now - self._gap_since >= self.gap_timeout_s:
            return self._skip(now)
        return []

    def __len__(self) -> int:
        return len(self._pending)

    def _release(self) -> list[tuple[int, T]]:
        ready = []
        while self.expected is not None and self.expected in self._pending:
            ready.append((self.expected, self._pending.pop(self.expected)))
            self.expected += 1
            self._gap_since = None
        return ready

    def _skip(self, now: float) -> list[tuple[int, T]]:
        first = min(self._pending)
        if self.expected is not None:
            self.lost += first - self.expected
        self.expected = first
        ready = self._release()
        self._gap_since = now if self._pending else None
        return ready
