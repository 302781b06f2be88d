"""A small progress bar for long preparation runs (no dependency): redraws in place on a
terminal, prints a line every 10% otherwise (logs, CI)."""
from __future__ import annotations

import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None) -> None:
        self.total, self.label, self.stream = max(total, 0), label, stream
        self.done = 0
        self.started = time.monotonic()
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._last_decile = -1

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self.stream is None:
            return
        fraction = self.done / self.total if self.total else 1.0
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction))
        line = f"{self.label} [{bar}] {self.done}/{self.total} {rate:.2f}/s eta {eta:.0f}s {note}"
        if self._tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif int(fraction * 10) > self._last_decile or self.done >= self.total:
            self._last_decile = int(fraction * 10)
            self.stream.write(line + "\n")
            self.stream.flush()
