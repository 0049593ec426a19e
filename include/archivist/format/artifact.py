"""A bundle's files as they pass through: each counted and hashed on the way, so an artifact
gets its size and sha256 without being read twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from archivist.format.streams import Readable, Writable


@dataclass
class Artifact:
    """One file of a bundle: its path inside the bundle folder, size in bytes and sha256."""

    path: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class HashingReader:
    """Wraps a readable stream, counting and hashing what passes through."""

    def __init__(self, raw: Readable):
        self._raw = raw
        self.size = 0
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.size += len(data)
        self._hash.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class HashingWriter:
    """A writable stream that counts and hashes, then hands bytes to `sink`."""

    def __init__(self, sink: Writable):
        self._sink = sink
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()
