"""Spools that let one sequential read of a dump feed several COPY connections at once.

The dump is read once, in order, but its tables load in parallel, so the reader must be able to
run ahead of a connection still loading an earlier (maybe larger than memory) table. Each COPY
block gets a spool: the reader appends to it, one connection reads it from the start while it
grows, and it lives on disk in segment files that are deleted as soon as they are read. A
budget shared by every spool bounds the bytes written and not yet read: a reader that reaches
it waits for the connections, so disk use never passes the budget (plus one chunk).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

SEGMENT = 64 * 1024 * 1024
READ = 1024 * 1024


class SpoolCancelled(Exception):
    """Another part of the restore failed; the spools stop."""


class SpoolBudget:
    """The bytes written to spools and not yet read, kept at most `limit` (bytes)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self.peak = 0
        self._cond = threading.Condition()
        self._cancelled = False

    def take(self, size: int) -> None:
        with self._cond:
            while self.used and self.used + size > self.limit and not self._cancelled:
                self._cond.wait()
            if self._cancelled:
                raise SpoolCancelled()
            self.used += size
            self.peak = max(self.peak, self.used)

    def give(self, size: int) -> None:
        with self._cond:
            self.used -= size
            self._cond.notify_all()

    def cancel(self) -> None:
        """Wakes and stops every writer and reader waiting on a spool of this budget."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class Spool:
    """One COPY block's rows: written once by the reader, read once (while written) by a loader."""

    def __init__(self, directory: str, name: str, budget: SpoolBudget):
        self._path = os.path.join(directory, name)
        self._budget = budget
        self._cond = budget._cond  # one lock for the budget and every spool: waits wake on either
        self._sizes: list[int] = []  # bytes written to each segment
        self._closed = False
        self._fd = -1

    def _segment(self, index: int) -> str:
        return f"{self._path}.{index}"

    def write(self, data: bytes) -> None:
        self._budget.take(len(data))
        if self._fd < 0 or self._sizes[-1] >= SEGMENT:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = os.open(self._segment(len(self._sizes)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with self._cond:
                self._sizes.append(0)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        with self._cond:
            self._sizes[-1] += len(data)
            self._cond.notify_all()

    def finish(self) -> None:
        """Every row is written."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def chunks(self) -> Iterator[bytes]:
        """The rows as they are written, each segment deleted once read."""
        index = offset = 0
        fd = -1
        try:
            while True:
                with self._cond:
                    while not self._budget.cancelled and not self._readable(index, offset):
                        self._cond.wait()
                    if self._budget.cancelled:
                        raise SpoolCancelled()
                    if index >= len(self._sizes):
                        return
                    written, complete = self._sizes[index], self._closed or len(self._sizes) > index + 1
                if offset < written:
                    if fd < 0:
                        fd = os.open(self._segment(index), os.O_RDONLY)
                    data = os.pread(fd, min(READ, written - offset), offset)
                    offset += len(data)
                    self._budget.give(len(data))
                    yield data
                elif complete:
                    os.close(fd) if fd >= 0 else None
                    fd = -1
                    os.unlink(self._segment(index))
                    index, offset = index + 1, 0
        finally:
            if fd >= 0:
                os.close(fd)

    def _readable(self, index: int, offset: int) -> bool:
        """Whether segment `index` has bytes past `offset`, or is complete, or the spool is."""
        grown = index < len(self._sizes) and self._sizes[index] > offset
        return self._closed or len(self._sizes) > index + 1 or grown

    def discard(self) -> None:
        """Removes what is left of the spool (after a failure)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for index in range(len(self._sizes)):
            try:
                os.unlink(self._segment(index))
            except FileNotFoundError:
                pass
