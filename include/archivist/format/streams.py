"""What the streaming code needs of a file: only `read`, or only `write` and `flush`; and reading
an exact number of bytes from one.

Members, ranges, inflaters and uploads are all file-like in just this much; typing them as
these protocols rather than `IO[bytes]` says so, and lets any of them stand for another.
"""

from __future__ import annotations

import io
from typing import Any, Protocol


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ReadableStream(Readable, Protocol):
    """A readable that holds a connection or a file, given back by `close`."""

    def close(self) -> None: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class RawReader(io.RawIOBase):
    """A raw stream whose subclass gives `read`; `readinto` (which igzip and io's buffered
    readers call) reads through it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ReadInto(RawReader):
    """A stream with only `read`, given `readinto`."""

    def __init__(self, stream: Readable):
        self._stream = stream

    def read(self, n: int | None = -1) -> bytes:
        return self._stream.read(-1 if n is None else n)


def with_readinto(stream: Readable) -> Any:
    """`stream` as igzip's reader wants it: igzip reads with `readinto`, which a Readable need
    not have (a decrypting stream, a range) and a file or a tar member has."""
    return stream if hasattr(stream, "readinto") else _ReadInto(stream)


READ_WINDOW = 1024 * 1024


def read_exactly(fileobj: Readable, n: int, reserve: int) -> bytearray:
    """The next `n` bytes of `fileobj` in one buffer, read a window at a time. A tar member read at
    once is copied several times over inside tarfile's stream reader, and those part-sized copies
    make a restore's heap grow with the number of large objects
    (docs/PERFORMANCE.md#storage-restore-reading).

    `n` may come from an archive, which may lie: at most `reserve` bytes are set aside before data
    arrives, and the buffer grows past that only as it fills."""
    body = bytearray(min(n, reserve))
    got = 0
    while got < n:
        chunk = fileobj.read(min(READ_WINDOW, n - got))
        if not chunk:
            raise EOFError(f"the archive ended {n - got:,} bytes before the end of an object of {n:,} bytes")
        body[got : got + len(chunk)] = chunk  # past the end, this slice assignment extends the buffer
        got += len(chunk)
    return body
