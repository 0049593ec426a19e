"""Progress logged at a steady rhythm: counts so far and the rate, every few seconds."""

from __future__ import annotations

import logging
import time
from typing import IO

log = logging.getLogger("archivist.progress")


class Progress:
    """Counts items (bytes, documents, objects) and logs at most every `every` seconds."""

    def __init__(self, label: str, unit: str = "B", every: float = 10.0):
        self.label, self.unit, self.every = label, unit, every
        self.count = 0
        self.started = self._last = time.monotonic()

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


class ProgressReader:
    """A readable stream that reports the bytes passing through to a Progress."""

    def __init__(self, raw: IO[bytes], progress: Progress):
        self._raw, self.progress = raw, progress

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.progress.add(len(data))
        return data
