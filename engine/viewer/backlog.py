"""A receive buffer measured in bytes, for a subscriber that writes more slowly than frames come.

ZeroMQ's receive limit counts messages, and a frame message weighs 0.9 MB at 640x480 but
6 MB at 1920x1080: a budget in bytes keeps the sink's memory predictable whatever the size.
A thread takes messages off the socket as they arrive (the publisher then never drops them
for being slow), and holds them until the writer asks; past the budget it drops whole
frame messages (the writer sees the gap in their sequence numbers), never small ones such
as end-of-stream markers.
"""
from __future__ import annotations

import sys
import threading
from collections import deque

import zmq

POLL_MS = 50
SMALL_BYTES = 64 * 1024
SWITCH_INTERVAL_S = 0.0002  # header-only messages (end of stream, keypoints without frames) always fit


class Backlog(threading.Thread):
    """Owns `sock` from `start()` on; `take(n)` returns up to n queued multipart messages, oldest first."""

    def __init__(self, sock: zmq.Socket, budget_bytes: int, lossless: bool = False) -> None:
        super().__init__(name="sink-backlog", daemon=True)
        self._sock, self.budget_bytes = sock, budget_bytes
        # lossless: past the budget, stop reading (the sender waits) instead of dropping
        self.lossless = lossless
        self._queue: deque[tuple[int, list[zmq.Frame]]] = deque()
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.arrived = threading.Event()
        self.bytes = self.peak_bytes = self.overflowed = 0

    def run(self) -> None:
        # pyzmq lets go of the GIL for every receive; with the default 5 ms switch interval the
        # writer thread (Python between OpenCV calls) would then hold this thread to ~200
        # messages a second. A short interval lets it take each message as it comes.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            while not self._halt.is_set():
                if self.lossless and self.bytes >= self.budget_bytes:
                    self._halt.wait(0.002)
                    continue
                if not self._sock.poll(POLL_MS):
                    continue
                for _ in range(4 if self.lossless else 256):
                    try:
                        parts = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._hold(parts)
                self.arrived.set()
        finally:
            self._sock.close(linger=0)

    def _hold(self, parts: list[zmq.Frame]) -> None:
        size = sum(len(p) for p in parts)
        with self._lock:
            if size > SMALL_BYTES and self.bytes + size > self.budget_bytes:
                self.overflowed += 1
                return
            self._queue.append((size, parts))
            self.bytes += size
            self.peak_bytes = max(self.peak_bytes, self.bytes)

    def take(self, limit: int) -> list[list[zmq.Frame]]:
        with self._lock:
            taken = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
            self.bytes -= sum(size for size, _ in taken)
            if not self._queue:
                self.arrived.clear()
        return [parts for _, parts in taken]

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self) -> None:
        """Stop receiving (what is queued stays takeable) and close the socket."""
        self._halt.set()
        self.join(timeout=1.0)
