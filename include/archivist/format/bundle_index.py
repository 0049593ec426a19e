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
import io
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
from archivist.format import handoff
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


def parse_block(block: bytes) -> dict[str, tuple[int, int, int]] | None:
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
    return parse_block(block) is not None


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


class _Produced:
    """Chunks that a thread of its own makes (`_produce`), read as a file: the thread's failure is
    raised to the reader where the chunks end. The thread stops when `stopped` is set."""

    def __init__(self, stopped: threading.Event, depth: int, name: str):
        self._stopped = stopped
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._out = _Queued(self._queue, stopped)
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def read(self, n: int = -1) -> bytes:
        data = self._out.read(n)
        if not data and n:  # the end (a read of nothing is not)
            self._thread.join()
            if self.error is not None:
                raise self.error
        return data

    def close(self) -> None:
        self._stopped.set()
        self._out.drain_nowait()
        self._thread.join(timeout=30)

    def _put(self, data: bytes | None) -> None:
        handoff.put(self._queue, data, self._stopped.is_set)

    def _produce(self) -> None:
        raise NotImplementedError

    def _failure(self, exc: Exception) -> Exception:
        return exc

    def _run(self) -> None:
        try:
            self._produce()
        except handoff.Stopped:
            return
        except Exception as exc:  # raised in the reader's thread
            self.error = self._failure(exc)
        try:
            self._put(None)
        except handoff.Stopped:
            pass


class _ReadAhead(_Produced):
    """`stream` read on a thread of its own, up to `depth` MiB ahead of its reader: the socket's
    reads of a GET then run beside the inflating (docs/PERFORMANCE.md#bundle-inflated-once)."""

    def __init__(self, stream: Readable, stopped: threading.Event, depth: int = 8):
        super().__init__(stopped, depth, "verify-fetch")
        self._stream = stream
        self._thread.start()

    def _produce(self) -> None:
        while chunk := self._stream.read(1024 * 1024):
            self._put(chunk)


class IndexedReading(_Produced):
    """A bundle with a seek index, inflated once for `verify`: read from it, it gives the tar that
    the bundle's gzip stream holds, front to back, while the same pass proves that each range of
    the index inflates, on its own, to exactly the bytes at its place in that tar.

    The stream is cut where the index says (before the first range, at every range, in any gap,
    after the last) and each part is inflated by a fresh inflater, on a thread of its own (the GET
    is read ahead on another). A fresh inflater refuses a back-reference before its start, and each
    part must end where a deflate block does (`BLOCK_PROBE`): a front-to-back inflater arriving
    there is then in the state a fresh one starts in, so the parts' output, joined, is what it
    inflates too, and the gzip trailer's CRC32 and length are checked against that. Each range's
    own tar header is parsed apart, as a restore job parses it (`ranged`), for `verify` to hold
    against the front-to-back reading of the same bytes (docs/PERFORMANCE.md#bundle-inflated-once)."""

    def __init__(self, stream: Readable, ranges: dict[str, tuple[int, int, int]]):
        super().__init__(threading.Event(), 16, "verify-inflate")
        self._ranges = ranges
        self._source = stream
        self._stream = _ReadAhead(stream, self._stopped)
        # path -> (where its range starts in the tar, how many bytes it inflates to, the name,
        # size and header length of the tar entry it begins with; None when it begins with none)
        self.ranged: dict[str, tuple[int, int, tuple[str, int, int] | None]] = {}
        self._thread.start()

    def close(self) -> None:
        super().close()
        self._stream.close()
        getattr(self._source, "close", lambda: None)()

    def _failure(self, exc: Exception) -> Exception:
        if isinstance(exc, INFLATE_ERRORS):
            return VerificationError(f"the bundle is damaged or truncated: {exc}")
        return exc  # damage (VerificationError), or the read's own failure, raised as it is

    def _produce(self) -> None:
        self._inflate()

    def _inflate(self) -> None:
        at = _gzip_header_length(self._stream)
        crc = size = 0
        for path, start, end, want in self._parts(at):
            body = _Limited(self._stream, end - start)
            inflater = _RawInflater(body, want, path or "the bytes between its files", boundary=True)
            head = b""
            begins = size
            try:
                while chunk := inflater.read(1024 * 1024):
                    if path is not None and len(head) < RANGE_HEAD:
                        head += chunk[: RANGE_HEAD - len(head)]
                    self._put(chunk)
                    size += len(chunk)
            except VerificationError:
                if not body.left:  # else the stream ended early: that, not where, is what is wrong
                    raise
            if body.left:
                raise VerificationError("the bundle is truncated: it ends before its seek index says")
            crc = isal_zlib.crc32_combine(crc, inflater.crc, size - begins)
            if path is not None:
                self.ranged[path] = (begins, size - begins, _first_entry(head))
        tail = _Limited(self._stream, TAIL_BYTES + 1).read_all()
        z = isal_zlib.decompressobj(-zlib.MAX_WBITS)
        out = z.decompress(tail, TAIL_BYTES + 1)
        trailer = z.unused_data
        if not z.eof or z.unconsumed_tail or len(out) > TAIL_BYTES or len(trailer) != 8:
            raise VerificationError("the bundle's seek index is not its last block, or bytes follow it: refused")
        self._put(out)
        crc, size = isal_zlib.crc32_combine(crc, isal_zlib.crc32(out), len(out)), size + len(out)
        if trailer != crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"):
            raise VerificationError("the bundle is damaged: its gzip trailer does not match what it inflates to")

    def _parts(self, at: int) -> Iterator[tuple[str | None, int, int, int | None]]:
        """(path, start, end, CRC32) of each part to inflate on its own: the ranges, and what lies
        before, between and after them (path and CRC32 None)."""
        for path, (start, end, crc) in sorted(self._ranges.items(), key=lambda item: item[1][0]):
            if start < at or end <= start:
                raise VerificationError(f"the bundle's seek index leaves an overlap before {path}: refused")
            if start > at:
                yield None, at, start, None
            yield path, start, end, crc
            at = end


# The bytes of each range kept to parse its tar entry's header apart: the headers of any entry
# of ours (a long name's pax header included) are far shorter.
RANGE_HEAD = 64 * 1024
# What a fresh inflater reads after a part: a final, empty stored block. Only an inflater that
# stands where a block starts, on a byte boundary, ends the stream there with no more output;
# in the middle of a block these bytes are data, or an error (tests/include/format/test_bundle_index.py).
BLOCK_PROBE = b"\x01\x00\x00\xff\xff"


def _first_entry(head: bytes) -> tuple[str, int, int] | None:
    """The path (inside the bundle folder), size and header length of the file whose tar entry
    begins `head`, parsed with nothing before it, as a restore job parses its range."""
    entries = TarEntries(io.BytesIO(head))
    try:
        member, fileobj = next(iter(entries), (None, None))
    except (tarfile.TarError, EOFError, VerificationError):
        return None
    if member is None or fileobj is None:
        return None
    return member.name.partition("/")[2], member.size, entries.offset


def _gzip_header_length(stream: Readable) -> int:
    """Reads a gzip member's header (RFC 1952) from `stream`; returns its length."""
    head = _exactly(stream, 10)
    if head[:3] != b"\x1f\x8b\x08" or head[3] & 0xE0:
        raise VerificationError("the bundle is not a gzipped tar: it does not begin with a gzip header")
    flags, length = head[3], 10
    if flags & 4:  # FEXTRA
        extra = int.from_bytes(_exactly(stream, 2), "little")
        _exactly(stream, extra)
        length += 2 + extra
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            for _ in range(65536):
                length += 1
                if _exactly(stream, 1) == b"\0":
                    break
            else:
                raise VerificationError("the bundle's gzip header holds a name or comment over 64 KiB: refused")
    if flags & 2:  # FHCRC
        _exactly(stream, 2)
        length += 2
    return length


def _exactly(stream: Readable, n: int) -> bytes:
    data = b""
    while len(data) < n and (chunk := stream.read(n - len(data))):
        data += chunk
    if len(data) < n:
        raise VerificationError("the bundle is truncated: it ends inside its gzip header")
    return data


class _Queued:
    """The reading end of a _Produced queue, as a file."""

    def __init__(self, chunks: queue.Queue[bytes | None], stopped: threading.Event):
        self._chunks, self._ended, self._stopped = chunks, False, stopped
        self._chunk, self._at = b"", 0  # the chunk being read and how far: each read copies only its part

    def read(self, n: int = -1) -> bytes:
        parts, got = [], 0
        while n < 0 or got < n:
            if self._at == len(self._chunk):
                # once the reading has stopped, handoff.Stopped instead of waiting for a chunk that its
                # writer, stopped too, will not put
                chunk = None if self._ended else handoff.get(self._chunks, self._stopped.is_set)
                if chunk is None:
                    self._ended = True
                    break
                self._chunk, self._at = chunk, 0
            end = len(self._chunk) if n < 0 else min(len(self._chunk), self._at + n - got)
            parts.append(self._chunk if self._at == 0 and end == len(self._chunk) else self._chunk[self._at : end])
            got += end - self._at
            self._at = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def drain_nowait(self) -> None:
        """Empties the queue, so that a writer waiting to put is let go."""
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                return


class _RawInflater:
    """Inflates one range of raw deflate (from a restart point to the next) as it is read, and
    checks its CRC32 when the range ends. ISA-L inflates and sums the same bytes as zlib in about
    half the CPU time, which a restore's reading of its members is mostly made of."""

    def __init__(self, body: Readable, crc: int | None, path: str, boundary: bool = False):
        # `boundary`: the range must end where a deflate block starts (IndexedReading)
        self._body, self._want, self._path, self._boundary = body, crc, path, boundary
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
                    # ISA-L may hold back output that a read's limit cut: asked with no input, it
                    # gives it, and only then may the range's end be checked
                    out = self._z.decompress(b"", n) if self._boundary else b""
                    if not out:
                        out = self._end()
                        self._done = True
                    break
                out = self._z.decompress(chunk, n)
        except INFLATE_ERRORS as exc:
            raise VerificationError(f"the bundle is damaged near {self._path}: {exc}") from None
        self._crc = isal_zlib.crc32(out, self._crc)
        if self._done and self._want is not None and self._crc != self._want:
            raise VerificationError(f"the bundle is damaged near {self._path}: its CRC32 does not match the index")
        if len(out) > n:
            self._surplus = memoryview(out)[n:]
            out = out[:n]
        return out

    @property
    def crc(self) -> int:
        """The CRC32 of what has been inflated so far."""
        return self._crc

    def _end(self) -> bytes:
        if not self._boundary:
            return self._z.flush()
        if self._z.eof or self._z.unused_data:
            raise VerificationError(f"the bundle's gzip stream ends inside {self._path}, before its seek index says")
        if self._z.decompress(BLOCK_PROBE) or not self._z.eof or self._z.unused_data:
            raise VerificationError(
                f"the bundle's seek index cuts it where no deflate block starts (at the end of {self._path}): refused"
            )
        return b""


class _Limited:
    """At most `n` bytes of a file, then end of file."""

    def __init__(self, f: Readable, n: int):
        self._f, self._left = f, n

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    @property
    def left(self) -> int:
        return self._left

    def read_all(self) -> bytes:
        """Every byte left, however many reads of the file that takes."""
        parts = []
        while self._left and (data := self.read()):
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        getattr(self._f, "close", lambda: None)()
