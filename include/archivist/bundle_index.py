"""The seek index at the end of a bundle, and reading one file of a bundle without the rest.

A bundle stays one gzip member of one tar, but archivist starts a fresh, unprimed deflate block
where meta.json and each artifact begin (a restart point, see pgzip), and after the tar's end
writes the index as a stored deflate block: each file's compressed byte range and the CRC32 of
what that range inflates to. tar and gzip ignore it (it lies after the tar's end-of-archive
blocks). A restore task fetches the last bytes, then only the ranges of its own files, instead of
downloading and inflating every job's data that precedes its own. Bundles without an index (the
original tool's, or any older) are read from the start as before. See docs/FORMAT.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tarfile
import zlib
from contextlib import closing
from collections.abc import Callable, Iterator
from typing import IO, Any

from isal import isal_zlib

from archivist import limits
from archivist.errors import VerificationError
from archivist.pgzip import MAX_STORED

log = logging.getLogger(__name__)

MAGIC = b"ARCHIVIST-INDEX"
INDEX_VERSION = 1
# Compressed bytes given to the inflater at a time: what a read leaves unconsumed is copied again
# at the next read, so a large input (1 MiB was tried) copied an incompressible member several
# times over and churned megabyte buffers.
INFLATE_INPUT = 64 * 1024
TAIL_BYTES = 65536 + 64  # the stored block that holds the index, and the gzip trailer after it
_FOOTER = re.compile(rb"\n" + MAGIC + rb" v(\d+) (\d{1,10}) ([0-9a-f]{8})\n")


def index_block(ranges: dict[str, tuple[int, int, int]]) -> bytes | None:
    """The index as written after the tar: compact JSON, then a footer line with its length and
    CRC32 so a reader can find and check it from the end. None when it would not fit one stored
    block (tens of thousands of indices): readers then read the bundle whole."""
    payload = json.dumps({"ranges": ranges}, separators=(",", ":")).encode()
    block = payload + b"\n" + MAGIC + b" v%d %d %08x\n" % (INDEX_VERSION, len(payload), zlib.crc32(payload))
    if len(block) > MAX_STORED:
        log.warning("the bundle's seek index (%d bytes) does not fit one stored block; restores will read it whole",
                    len(block))
        return None
    return block


def spans(starts: list[tuple[str, int, int]], end: int, end_crc: int) -> dict[str, tuple[int, int, int]]:
    """Each file's [start, end) and CRC32 from the restart points taken before each file (path,
    offset, CRC32 of what came before it) and after the last one."""
    out = {}
    for i, (path, start, _) in enumerate(starts):
        stop, crc = (starts[i + 1][1], starts[i + 1][2]) if i + 1 < len(starts) else (end, end_crc)
        out[path] = (start, stop, crc)
    return out


def parse_tail(tail: bytes, object_size: int) -> dict[str, tuple[int, int, int]] | None:
    """The ranges from the last bytes of a bundle, or None if it ends without a (sound) index."""
    footers = list(_FOOTER.finditer(tail))
    if not footers:
        return None
    footer = footers[-1]
    version, length, crc = int(footer.group(1)), int(footer.group(2)), int(footer.group(3), 16)
    payload = tail[footer.start() - length:footer.start()]
    if version != INDEX_VERSION or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        ranges = {str(p): (int(r[0]), int(r[1]), int(r[2])) for p, r in json.loads(payload)["ranges"].items()}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    if all(0 < a < b <= object_size for a, b, _ in ranges.values()):
        return ranges
    return None


class BundleSource:
    """A bundle that can be read whole (call it) or by byte ranges: a backup bucket's object or a file."""

    def __init__(self, size: Callable[[], int], open_all: Callable[[], IO[bytes]],
                 open_range: Callable[[int, int], IO[bytes]]):
        self._size, self._open_all, self._open_range = size, open_all, open_range
        self._ranges: dict[str, tuple[int, int, int]] | None | bool = False  # False: not read yet

    @classmethod
    def s3(cls, s3: Any, bucket: str, key: str, size: int | None = None) -> BundleSource:
        """The object `key` (of `size` bytes, if known from a listing); nothing is requested until
        it is read."""
        def ranged(start: int, end: int) -> IO[bytes]:
            return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]

        return cls(lambda: size if size is not None else s3.head_object(Bucket=bucket, Key=key)["ContentLength"],
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

    def ranges(self) -> dict[str, tuple[int, int, int]] | None:
        """The index at the end of the bundle (read once), or None if it has none."""
        if self._ranges is False:
            self._ranges = None
            if self.size:
                with closing(self._open_range(max(0, self.size - TAIL_BYTES), self.size)) as body:
                    self._ranges = parse_tail(body.read(), self.size)
        return self._ranges

    def open_member(self, path: str) -> Iterator[IO[bytes]]:
        """Yields the file `path` read from its own range; once it has been read, the CRC32 of the
        whole range is checked. Damage surfaces as VerificationError, as for a whole read."""
        start, end, crc = self.ranges()[path]
        with closing(self._open_range(start, end)) as body:
            inflated = _RawInflater(body, crc, path)
            try:
                tar = tarfile.open(fileobj=inflated, mode="r|", bufsize=1024 * 1024, tarinfo=limits.CappedTarInfo)
                member = tar.next()
                if member is None or not member.isfile() or member.name.partition("/")[2] != path:
                    raise VerificationError(f"the bundle's index points {path} at {member and member.name!r}")
            except (tarfile.TarError, EOFError, zlib.error, isal_zlib.error) as exc:
                raise VerificationError(f"the bundle is damaged or truncated near {path}: {exc}") from None
            yield tar.extractfile(member)
            while inflated.read(1024 * 1024):  # the rest of the range (tar padding), then the CRC check
                pass


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


class _RawInflater:
    """Inflates one range of raw deflate (from a restart point to the next) as it is read, and
    checks its CRC32 when the range ends. ISA-L inflates and sums the same bytes as zlib in about
    half the CPU time, which a restore's reading of its members is mostly made of."""

    def __init__(self, body: IO[bytes], crc: int, path: str):
        self._body, self._want, self._path = body, crc, path
        self._z = isal_zlib.decompressobj(-zlib.MAX_WBITS)
        self._crc = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        n = 1024 * 1024 if n is None or n < 0 else n
        out = b""
        try:
            while not out and not self._done:
                if self._z.unconsumed_tail:
                    out = self._z.decompress(self._z.unconsumed_tail, n)
                    continue
                chunk = self._body.read(INFLATE_INPUT)
                if not chunk:
                    out = self._z.flush()
                    self._done = True
                    break
                out = self._z.decompress(chunk, n)
        except (zlib.error, isal_zlib.error) as exc:
            raise VerificationError(f"the bundle is damaged near {self._path}: {exc}") from None
        self._crc = isal_zlib.crc32(out, self._crc)
        if self._done and self._crc != self._want:
            raise VerificationError(f"the bundle is damaged near {self._path}: its CRC32 does not match the index")
        return out


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
