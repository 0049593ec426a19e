"""The seek index at the end of a bundle, and reading one file of a bundle without the rest.

archivist writes a bundle as consecutive gzip members, a new one where meta.json and each
artifact begin, and ends it with an empty gzip member whose header carries the index in its
extra field (subfield "AR"): each file's byte range in the bundle object. To gzip, tar and any
other reader the bundle is the same gzipped tar (the last member inflates to nothing). A restore
task fetches the last bytes, then only the ranges of its own files, instead of downloading and
inflating every job's data that precedes its own. Bundles without an index (the original tool's,
or any older) are read from the start as before. See docs/FORMAT.md.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import os
import struct
import tarfile
from contextlib import closing
from collections.abc import Callable, Iterator
from typing import IO, Any

from archivist.errors import VerificationError
from archivist.pgzip import empty_member

log = logging.getLogger(__name__)

SUBFIELD = b"AR"
INDEX_VERSION = 1
MAX_EXTRA = 65535 - 4  # the extra field's length is 16 bits, and the subfield header takes 4 bytes
TAIL_BYTES = 65536 + 64
_MAGIC = b"\037\213\010\004"  # gzip, deflate, FEXTRA


def trailer(starts: dict[str, int], end: int, mtime: int) -> bytes:
    """The empty last member carrying each file's [start, end) range, or b"" when the index
    would not fit a gzip extra field (tens of thousands of indices); readers then read it all."""
    ordered = sorted(starts.items(), key=lambda item: item[1])
    ranges = {path: [start, ordered[i + 1][1] if i + 1 < len(ordered) else end]
              for i, (path, start) in enumerate(ordered)}
    payload = json.dumps({"archivist_index": INDEX_VERSION, "ranges": ranges}, separators=(",", ":")).encode()
    if len(payload) > MAX_EXTRA:
        log.warning("the bundle's seek index (%d bytes) does not fit a gzip header; restores will read it whole",
                    len(payload))
        return b""
    return empty_member(mtime, SUBFIELD + struct.pack("<H", len(payload)) + payload)


def parse_tail(tail: bytes, object_size: int) -> dict[str, tuple[int, int]] | None:
    """The ranges from the last bytes of a bundle, or None if it ends without an index."""
    pos = len(tail)
    while (pos := tail.rfind(_MAGIC, 0, pos)) >= 0:
        body = tail[pos + 10:]
        if len(body) < 6:
            continue
        xlen, = struct.unpack_from("<H", body)
        # The member must be exactly: header, extra field, an empty final block, CRC and size of 0.
        if body[2:4] != SUBFIELD or 2 + xlen + 10 != len(body) or body[2 + xlen:] != b"\003\000" + bytes(8):
            continue
        sublen, = struct.unpack_from("<H", body, 4)
        try:
            index = json.loads(body[6:6 + sublen])
            ranges = {str(p): (int(r[0]), int(r[1])) for p, r in index["ranges"].items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None
        if index.get("archivist_index") != INDEX_VERSION:
            return None
        if all(0 <= a < b <= object_size for a, b in ranges.values()):
            return ranges
        return None
    return None


class BundleSource:
    """A bundle that can be read whole (call it) or by byte ranges: a backup bucket's object or a file."""

    def __init__(self, size: Callable[[], int], open_all: Callable[[], IO[bytes]],
                 open_range: Callable[[int, int], IO[bytes]]):
        self._size, self._open_all, self._open_range = size, open_all, open_range
        self._ranges: dict[str, tuple[int, int]] | None | bool = False  # False: not read yet

    @classmethod
    def s3(cls, s3: Any, bucket: str, key: str) -> BundleSource:
        """The object `key`; nothing is requested until it is read."""
        def ranged(start: int, end: int) -> IO[bytes]:
            return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]

        return cls(lambda: s3.head_object(Bucket=bucket, Key=key)["ContentLength"],
                   lambda: s3.get_object(Bucket=bucket, Key=key)["Body"], ranged)

    @classmethod
    def file(cls, path: str) -> BundleSource:
        def ranged(start: int, end: int) -> IO[bytes]:
            f = open(path, "rb")
            f.seek(start)
            return _Limited(f, end - start)

        return cls(lambda: os.path.getsize(path), lambda: open(path, "rb"), ranged)

    @functools.cached_property
    def size(self) -> int:
        return self._size()

    def __call__(self) -> IO[bytes]:
        return self._open_all()

    def ranges(self) -> dict[str, tuple[int, int]] | None:
        """The index at the end of the bundle (read once), or None if it has none."""
        if self._ranges is False:
            start = max(0, self.size - TAIL_BYTES)
            with closing(self._open_range(start, self.size)) as body:
                self._ranges = parse_tail(body.read(), self.size) if self.size else None
        return self._ranges

    def open_member(self, path: str) -> Iterator[IO[bytes]]:
        """Yields the file `path` read from its own range; the gzip CRC of that range is checked
        when the file has been read. Damage surfaces as VerificationError, as for a whole read."""
        start, end = self.ranges()[path]
        with closing(self._open_range(start, end)) as body:
            try:
                gz = gzip.GzipFile(fileobj=body, mode="rb")
                tar = tarfile.open(fileobj=gz, mode="r|", bufsize=1024 * 1024)
                member = tar.next()
                if member is None or not member.isfile() or member.name.partition("/")[2] != path:
                    raise VerificationError(f"the bundle's index points {path} at {member and member.name!r}")
                yield tar.extractfile(member)
                while gz.read(1024 * 1024):  # the rest of the range: padding, then the CRC check
                    pass
            except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
                raise VerificationError(f"the bundle is damaged or truncated near {path}: {exc}") from None


def iter_indexed(source: Any, wanted: Callable[[str], bool]) -> Iterator[tuple[str, IO[bytes]]] | None:
    """(path, file) for each file `wanted` selects, each read from its own range in bundle order;
    None when `source` cannot seek or the bundle has no index."""
    ranges = source.ranges() if isinstance(source, BundleSource) else None
    if not ranges:
        return None

    def members() -> Iterator[tuple[str, IO[bytes]]]:
        for path in sorted((p for p in ranges if wanted(p)), key=lambda p: ranges[p][0]):
            for fileobj in source.open_member(path):
                yield path, fileobj

    return members()


class _Limited:
    """At most `n` bytes of a file, then end of file."""

    def __init__(self, f: IO[bytes], n: int):
        self._f, self._left = f, n

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()
