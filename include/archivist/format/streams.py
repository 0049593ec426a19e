"""What the streaming code needs of a file: only `read`, or only `write` and `flush`.

Members, ranges, inflaters and uploads are all file-like in just this much; typing them as
these protocols rather than `IO[bytes]` says so, and lets any of them stand for another.
"""

from __future__ import annotations

from typing import Protocol


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ReadableStream(Readable, Protocol):
    """A readable that holds a connection or a file, given back by `close`."""

    def close(self) -> None: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...
