"""Progress logged at a steady rhythm: counts so far and the rate, every few seconds.

A live display (the command's, on a terminal) can also watch every Progress while it runs:
`watching(board)` puts each one made meanwhile on the board, which the display reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from archivist.format.streams import Readable

log = logging.getLogger("archivist.progress")


class Progress:
    """Counts items (bytes, documents, objects) and logs at most every `every` seconds.
    `total` is the count expected at the end, when known."""

    def __init__(self, label: str, unit: str = "B", every: float = 10.0, total: int | None = None):
        self.label, self.unit, self.every, self.total = label, unit, every, total
        self.count = 0
        self.elapsed: float | None = None  # set by done()
        self.started = self._last = time.monotonic()
        if _board is not None:
            _board.add(self)

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info(
                "%s: %s so far, %s/s", self.label, self._fmt(self.count), self._fmt(self.count / (now - self.started))
            )

    def done(self) -> float:
        """Logs the total and returns the elapsed seconds."""
        elapsed = time.monotonic() - self.started
        self.elapsed = elapsed
        log.info(
            "%s: %s in %.1fs (%s/s)",
            self.label,
            self._fmt(self.count),
            elapsed,
            self._fmt(self.count / elapsed if elapsed else 0),
        )
        return elapsed

    def _fmt(self, n: float) -> str:
        if self.unit != "B":
            return f"{n:,.0f} {self.unit}"
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:,.1f} {unit}"
            n /= 1024
        return f"{n:.1f} TiB"


class Board:
    """Every Progress made while the board is watched, in the order they started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Progress] = []

    def add(self, progress: Progress) -> None:
        with self._lock:
            self._items.append(progress)

    def items(self) -> list[Progress]:
        with self._lock:
            return list(self._items)


_board: Board | None = None


@contextmanager
def watching(board: Board) -> Iterator[Board]:
    """Puts every Progress made inside the block (in any thread) on `board`."""
    global _board
    previous, _board = _board, board
    try:
        yield board
    finally:
        _board = previous


class ProgressReader:
    """A readable stream that reports the bytes passing through to a Progress."""

    def __init__(self, raw: Readable, progress: Progress):
        self._raw, self.progress = raw, progress

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.progress.add(len(data))
        return data
