"""An order-independent digest of a set of lines (rows, document ids, objects): the same lines in
any order give the same digest, so a table read back in another order still matches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from archivist.format.streams import Readable

_BITS = 128
_MASK = (1 << _BITS) - 1
READ_BLOCK = 1024 * 1024


@dataclass
class LineDigest:
    """How many lines, and the sum of their 128-bit BLAKE2b hashes modulo 2**128."""

    count: int = 0
    total: int = 0

    def add(self, line: bytes) -> None:
        self.count += 1
        self.total = (self.total + int.from_bytes(hashlib.blake2b(line, digest_size=_BITS // 8).digest())) & _MASK

    @property
    def hexdigest(self) -> str:
        return f"{self.total:032x}"

    def as_dict(self) -> dict[str, int | str]:
        return {"count": self.count, "digest": self.hexdigest}


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a stream given in chunks, without their newlines (a last line without one too)."""
    partial = b""
    for chunk in chunks:
        lines = (partial + bytes(chunk)).split(b"\n")
        partial = lines.pop()
        yield from lines
    if partial:
        yield partial


def chunks_of(stream: Readable, block: int = READ_BLOCK) -> Iterator[bytes]:
    while data := stream.read(block):
        yield data
