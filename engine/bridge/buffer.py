"""A bounded first-in first-out buffer that drops its oldest item when full, and counts what it dropped."""
from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestBuffer(Generic[T]):
    """At most `capacity` items; `push` on a full buffer drops the oldest one (counted in `dropped`)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a buffer holds at least one item")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[T] = deque()

    def push(self, item: T) -> bool:
        """Add `item`; True when that dropped the oldest one."""
        dropped = len(self._items) >= self.capacity
        if dropped:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        return dropped

    def peek(self) -> T:
        return self._items[0]

    def pop(self) -> T:
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)
