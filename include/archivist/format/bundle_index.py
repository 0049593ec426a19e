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
import hashlib
import json
import logging
import os
import queue
import re
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, BinaryIO, cast

from isal import isal_zlib

from archivist.errors import VerificationError
from archivist.format.deflate import MAX_STORED
from archivist.format.streams import RawReader, Readable, ReadableStream
from archivist.format.tar_entries import TarEntries

log = logging.getLogger(__name__)

MAGIC = b"ARCHIVIST-INDEX"
INDEX_VERSION = 1
# Compressed bytes given to the inflater at a time: what a read leaves unconsumed is copied again
# at the next read (docs/PERFORMANCE.md#inflater-input-size).
# isal's stub declares its error an instance; it is the exception class zlib.error is to zlib
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, cast(type[Exception], isal_zlib.error))
_RANGE_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, *INFLATE_ERRORS)
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
        log.warning(
            "the bundle's seek index (%d bytes) does not fit one stored block; restores will read it whole", len(block)
        )
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


def _parse_block(block: bytes) -> dict[str, tuple[int, int, int]] | None:
    """The ranges of an index block that is exactly payload and footer, else None."""
    footer = _FOOTER.search(block)
    if footer is None or footer.end() != len(block):
        return None
    version, length, crc = int(footer.group(1)), int(footer.group(2)), int(footer.group(3), 16)
    payload = block[: footer.start()]
    if version != INDEX_VERSION or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    try:
        return {str(p): (int(r[0]), int(r[1]), int(r[2])) for p, r in json.loads(payload)["ranges"].items()}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def is_index_block(block: bytes) -> bool:
    """Whether `block` is one well-formed seek index and nothing else."""
    return _parse_block(block) is not None


def parse_tail(tail: bytes, object_size: int) -> dict[str, tuple[int, int, int]] | None:
    """The ranges from the last bytes of a bundle, or None if it ends without a (sound) index."""
    footers = list(_FOOTER.finditer(tail))
    if not footers:
        return None
    footer = footers[-1]
    version, length, crc = int(footer.group(1)), int(footer.group(2)), int(footer.group(3), 16)
    payload = tail[footer.start() - length : footer.start()]
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
    """A bundle that can be read whole (call it) or by byte ranges: a backup bucket's object or a file.

    Every read after the first is pinned to the object the first one saw (its ETag, or the file's
    identity): a bundle replaced between `verify` and a restore job fails with an error saying so,
    instead of restoring bytes that were never verified."""

    def __init__(
        self,
        size: Callable[[], int],
        open_all: Callable[[], ReadableStream],
        open_range: Callable[[int, int], ReadableStream],
        name: str = "the bundle",
        decrypt: Callable[[ReadableStream], ReadableStream] | None = None,
    ):
        self._size, self._open_all, self._open_range = size, open_all, open_range
        # An encrypted bundle is read whole, through `decrypt`, every time: its seek index lies
        # inside the ciphertext, so no range of the object is one of the plain bundle.
        self._decrypt = decrypt
        self._ranges: dict[str, tuple[int, int, int]] | None = None
        self._ranges_read = False
        self.name = name
        self.pin: str | None = None  # the ETag (or file identity) every read must match
        self.checksums: dict[str, Any] | None = None  # meta.json's `artifacts`, once known
        self.es_metadata: tuple[dict[str, Any], dict[str, Any], list[str]] | None = None  # read once, see restore

    @classmethod
    def s3(
        cls,
        s3: Any,
        bucket: str,
        key: str,
        size: int | None = None,
        etag: str | None = None,
        decrypt: Callable[[ReadableStream], ReadableStream] | None = None,
    ) -> BundleSource:
        """The object `key` (of `size` bytes, if known from a listing), pinned to `etag` when given
        (else to the ETag its first read sees); nothing is requested until it is read. An
        encrypted object is read through `decrypt`."""
        source: BundleSource

        def pinned(request: Callable[..., Any], **extra: Any) -> Any:
            if source.pin:
                extra["IfMatch"] = source.pin
            try:
                answer = request(Bucket=bucket, Key=key, **extra)
            except Exception as exc:
                if _status(exc) == 412:
                    raise VerificationError(
                        f"{source.name} was replaced after it was verified (its ETag is no longer {source.pin}): "
                        "nothing more was read from it; start the restore again to verify the new object"
                    ) from None
                raise
            source.pin = source.pin or answer.get("ETag")
            return answer

        def get(**extra: Any) -> ReadableStream:
            return pinned(s3.get_object, **extra)["Body"]

        def head() -> int:
            return size if size is not None else pinned(s3.head_object)["ContentLength"]

        source = cls(
            head, get, lambda start, end: get(Range=f"bytes={start}-{end - 1}"), f"bundle object {key!r}", decrypt
        )
        source.pin = etag
        return source

    @classmethod
    def file(cls, path: str, decrypt: Callable[[ReadableStream], ReadableStream] | None = None) -> BundleSource:
        source: BundleSource

        def opened() -> BinaryIO:
            f = open(path, "rb")
            st = os.fstat(f.fileno())
            identity = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
            if source.pin and identity != source.pin:
                f.close()
                raise VerificationError(
                    f"{path} was replaced or changed after it was verified: start the restore again to verify it anew"
                )
            source.pin = identity
            return f

        def ranged(start: int, end: int) -> ReadableStream:
            f = opened()
            f.seek(start)
            return _Limited(f, end - start)

        def size() -> int:
            with opened() as f:
                return os.fstat(f.fileno()).st_size

        source = cls(size, opened, ranged, path, decrypt)
        return source

    @property
    def encrypted(self) -> bool:
        return self._decrypt is not None

    @functools.cached_property
    def size(self) -> int:
        return self._size()

    def __call__(self) -> ReadableStream:
        body = self._open_all()
        if self._decrypt is None:
            return body
        try:
            return self._decrypt(body)
        except BaseException:
            body.close()
            raise

    def ranges(self) -> dict[str, tuple[int, int, int]] | None:
        """The index at the end of the bundle (read once), or None if it has none or is encrypted."""
        if not self._ranges_read and self._decrypt is None:
            self._ranges_read = True
            if self.size:
                with closing(self._open_range(max(0, self.size - TAIL_BYTES), self.size)) as body:
                    self._ranges = parse_tail(body.read(), self.size)
        return self._ranges

    def open_member(self, path: str) -> Iterator[Readable]:
        """Yields the file `path` read from its own range; once it has been read, the CRC32 of the
        whole range is checked. Damage surfaces as VerificationError, as for a whole read."""
        ranges = self.ranges()
        if ranges is None or path not in ranges:
            raise VerificationError(f"the bundle's seek index has no {path}")
        start, end, crc = ranges[path]
        with closing(self._open_range(start, end)) as body:
            yield from read_range(body, crc, path)


def read_range(body: Readable, crc: int, path: str) -> Iterator[Readable]:
    """Yields the file `path` from `body`, one range of raw deflate holding its tar entry; once it
    has been read, the rest of the range is read and its CRC32 checked."""
    inflated = _RawInflater(body, crc, path)
    try:
        fileobj = _entry(inflated, path)
    except _RANGE_ERRORS as exc:
        raise VerificationError(f"the bundle is damaged or truncated near {path}: {exc}") from None
    yield fileobj
    while inflated.read(1024 * 1024):  # the rest of the range (tar padding), then the CRC check
        pass


def _entry(inflated: Readable, path: str) -> Readable:
    """The file of the tar entry that starts `inflated`, which must be `path`, read straight from
    the inflater (docs/PERFORMANCE.md#one-tar-entry-per-range)."""

    def cut() -> Exception:
        return VerificationError(f"the bundle is damaged or truncated near {path}: unexpected end of data")

    member, fileobj = next(iter(TarEntries(inflated, cut)), (None, None))
    if member is None or fileobj is None or member.name.partition("/")[2] != path:
        raise VerificationError(f"the bundle's index points {path} at {member and member.name!r}")
    return fileobj


def _status(exc: Exception) -> int | None:
    return getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


class CheckedReader(RawReader):
    """A member's bytes as a restore reads them, hashed on the way: at their end, their size and
    sha256 must be what meta.json lists (what `verify` checked), or the read fails."""

    def __init__(self, fileobj: Readable, path: str, size: int, sha256: str):
        self._f, self.path, self._size, self._sha256 = fileobj, path, size, sha256
        self._digest, self._read = hashlib.sha256(), 0
        self._checked = False

    def read(self, n: int | None = -1) -> bytes:
        whole = n is None or n < 0
        data = self._f.read() if n is None or n < 0 else self._f.read(n)
        self._digest.update(data)
        self._read += len(data)
        if self._read > self._size:
            raise self._mismatch()
        if whole or (not data and n != 0):
            self._check()
        return data

    def finish(self) -> None:
        """Reads what the consumer left (tar padding, a gzip trailer), then checks the whole."""
        while self.read(1024 * 1024):
            pass

    def _check(self) -> None:
        if not self._checked:
            if self._read != self._size or self._digest.hexdigest() != self._sha256:
                raise self._mismatch()
            self._checked = True

    def _mismatch(self) -> VerificationError:
        return VerificationError(
            f"{self.path} as read for the restore does not match meta.json ({self._read} bytes, sha256 "
            f"{self._digest.hexdigest()[:12]}…; expected {self._size} bytes, sha256 {self._sha256[:12]}…): "
            "these are not the bytes verify checked, so the restore stops here"
        )


def iter_indexed(source: Any, wanted: Callable[[str], bool]) -> Iterator[tuple[str, Readable]] | None:
    """(path, file) for each file `wanted` selects, each read from its own range in bundle order;
    None when `source` cannot seek or the bundle has no index."""
    ranges = source.ranges() if isinstance(source, BundleSource) else None
    if not ranges:
        return None

    def members() -> Iterator[tuple[str, Readable]]:
        for path in sorted((p for p in ranges if wanted(p)), key=lambda p: ranges[p][0]):
            for fileobj in source.open_member(path):
                yield path, fileobj

    return members()


class RangeTee:
    """Passes a bundle's bytes through to the front-to-back reader of `verify` and, from the same
    bytes, on a thread of its own, reads every range of the seek index exactly as a restore job
    will (a fresh inflater per range, the tar entry there, its CRC32), recording each file's size
    and sha256. `verify` then requires both readings to agree, so the index cannot lead a restore
    to bytes that `verify` never checked, and requires the index to be the object's last block."""

    def __init__(self, stream: Readable, ranges: dict[str, tuple[int, int, int]]):
        self._stream = stream
        self._ranges = ranges
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.found: dict[str, tuple[int, str]] = {}
        self.index_block: bytes | None = None
        self.error: VerificationError | None = None
        self._thread = threading.Thread(target=self._run, name="verify-ranges", daemon=True)
        self._thread.start()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._queue.put(data)
        return data

    def close(self) -> None:
        self._queue.put(None)
        getattr(self._stream, "close", lambda: None)()

    def result(self) -> dict[str, tuple[int, str]]:
        """Each range's file and its (size, sha256), once the whole object has been read."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.found

    def _run(self) -> None:
        source = _Queued(self._queue)
        try:
            self._read_ranges(source)
        except VerificationError as exc:
            self.error = exc
        except Exception as exc:  # any damage the ranges' reading meets is a verification failure
            self.error = VerificationError(f"the bundle's seek index cannot be followed: {type(exc).__name__}: {exc}")
        source.drain()

    def _read_ranges(self, source: _Queued) -> None:
        order = sorted(self._ranges.items(), key=lambda item: item[1][0])
        source.skip(order[0][1][0])
        at = order[0][1][0]
        for path, (start, end, crc) in order:
            if start != at:
                raise VerificationError(f"the bundle's seek index leaves a gap or an overlap before {path}: refused")
            body = _Limited(source, end - start)
            digest, size = hashlib.sha256(), 0
            for fileobj in read_range(body, crc, path):
                while chunk := fileobj.read(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            while body.read(1024 * 1024):
                pass
            self.found[path] = (size, digest.hexdigest())
            at = end
        # What follows the last range: the stored block holding the index, the final empty
        # block and the gzip trailer (8 bytes), nothing else.
        rest = _Limited(source, 5 + MAX_STORED + 64).read()
        length = int.from_bytes(rest[1:3], "little") if len(rest) >= 5 else -1
        block = rest[5 : 5 + length] if length >= 0 else b""
        if (
            rest[:1] != b"\0"
            or rest[3:5] != (length ^ 0xFFFF).to_bytes(2, "little")
            or _parse_block(block) != self._ranges
            or len(rest) - 5 - length > 16
        ):
            raise VerificationError("the bundle's seek index is not its last block, or bytes follow it: refused")
        self.index_block = block


class _Queued:
    """The reading end of RangeTee's queue, as a file."""

    def __init__(self, chunks: queue.Queue[bytes | None]):
        self._chunks, self._ended = chunks, False
        self._chunk, self._at = b"", 0  # the chunk being read and how far: each read copies only its part

    def read(self, n: int = -1) -> bytes:
        parts, got = [], 0
        while n < 0 or got < n:
            if self._at == len(self._chunk):
                chunk = None if self._ended else self._chunks.get()
                if not chunk:
                    self._ended = True
                    break
                self._chunk, self._at = chunk, 0
            end = len(self._chunk) if n < 0 else min(len(self._chunk), self._at + n - got)
            parts.append(self._chunk if self._at == 0 and end == len(self._chunk) else self._chunk[self._at : end])
            got += end - self._at
            self._at = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Nothing to give back: the queue belongs to RangeTee."""

    def skip(self, n: int) -> None:
        while n > 0:
            got = self.read(min(n, 1024 * 1024))
            if not got:
                return
            n -= len(got)

    def drain(self) -> None:
        self._chunk, self._at = b"", 0
        while not self._ended:
            if not self._chunks.get():
                self._ended = True


class _RawInflater:
    """Inflates one range of raw deflate (from a restart point to the next) as it is read, and
    checks its CRC32 when the range ends. ISA-L inflates and sums the same bytes as zlib in about
    half the CPU time, which a restore's reading of its members is mostly made of."""

    def __init__(self, body: Readable, crc: int, path: str):
        self._body, self._want, self._path = body, crc, path
        self._z = isal_zlib.decompressobj(-zlib.MAX_WBITS)
        self._crc = 0
        self._done = False
        # inflated beyond what a read asked for: ISA-L's flush gives all it holds, at most its own
        # 64 KiB output buffer however much the range inflates to; a view, so each read copies only
        # its part
        self._surplus = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        n = 1024 * 1024 if n is None or n < 0 else n
        if self._surplus:
            part, self._surplus = bytes(self._surplus[:n]), self._surplus[n:]
            return part
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
        except INFLATE_ERRORS as exc:
            raise VerificationError(f"the bundle is damaged near {self._path}: {exc}") from None
        self._crc = isal_zlib.crc32(out, self._crc)
        if self._done and self._crc != self._want:
            raise VerificationError(f"the bundle is damaged near {self._path}: its CRC32 does not match the index")
        if len(out) > n:
            self._surplus = memoryview(out)[n:]
            out = out[:n]
        return out


class _Limited:
    """At most `n` bytes of a file, then end of file."""

    def __init__(self, f: ReadableStream, n: int):
        self._f, self._left = f, n

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()
