"""A gzip writer that deflates on several threads, as pigz does, and can start new gzip members.

The input is cut into blocks; each is deflated on its own, primed with the last 32 KiB of the
block before it, and ends on a byte boundary, so the blocks join into one ordinary deflate
stream (zlib releases the GIL while it deflates). `new_member()` ends the current gzip member
and starts another: gzip, tar and Python read consecutive members as one stream (RFC 1952,
section 2.2), and a reader that knows where a member starts can inflate from there alone.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

BLOCK = 1024 * 1024
THREADS = max(1, min(4, os.cpu_count() or 1))
_WINDOW = 32 * 1024
_SAMPLE = 16 * 1024
_STORED_ABOVE = 0.97  # a block whose sample level-1 deflates to more than this fraction is stored


def _deflate_block(data: bytes, level: int, zdict: bytes, last: bool) -> bytes:
    """One block as raw deflate, ending on a byte boundary (sync flush) or, for the last, the final block.

    A block that does not compress is stored: three samples of it are deflated at level 1 first, and
    when they save less than 3% the block goes out as stored deflate blocks, at memory speed. Data
    that is compressed already (images, archives, the storage job's tgz inside the bundle) so costs
    next to nothing instead of a full deflate that gains nothing."""
    if level > 0 and len(data) >= 4 * _SAMPLE:
        mid = len(data) // 2
        sample = data[:_SAMPLE] + data[mid:mid + _SAMPLE] + data[-_SAMPLE:]
        probe = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
        if len(probe.compress(sample) + probe.flush()) > _STORED_ABOVE * len(sample):
            level = 0
    if zdict and level > 0:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def member_header(mtime: int, level: int = 6, extra: bytes = b"") -> bytes:
    """The header gzip.GzipFile(filename="") writes (no name, unknown OS), with an optional extra field."""
    xfl = b"\002" if level == 9 else b"\004" if level == 1 else b"\000"
    flags = b"\004" if extra else b"\000"
    head = b"\037\213\010" + flags + struct.pack("<L", int(mtime) & 0xFFFFFFFF) + xfl + b"\377"
    return head + (struct.pack("<H", len(extra)) + extra if extra else b"")


def empty_member(mtime: int, extra: bytes) -> bytes:
    """A gzip member holding no data, only the extra field (subfields, RFC 1952 section 2.3.1.1)."""
    return member_header(mtime, extra=extra) + b"\003\000" + struct.pack("<LL", 0, 0)


class GzipWriter:
    """A writable gzip stream deflated by several threads; memory is bounded (at most 2 blocks
    per thread in flight). Blocks that do not compress are stored (see `_deflate_block`)."""

    def __init__(self, fileobj: IO[bytes], compresslevel: int = 6, mtime: int = 0,
                 threads: int | None = None, block: int = BLOCK):
        self._out, self._level, self._block, self._mtime = fileobj, compresslevel, block, int(mtime)
        self._threads = threads or THREADS
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="gzip")
        self._pending: deque[Future] = deque()
        self._buf = bytearray()
        self._closed = False
        self.bytes_in = 0   # uncompressed bytes written, over all members
        self.bytes_out = 0  # compressed bytes handed to `fileobj`
        self._start_member()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_out += len(data)

    def _start_member(self) -> None:
        self._window = b""
        self._crc = 0
        self._size = 0
        self._emit(member_header(self._mtime, self._level))

    def _end_member(self) -> None:
        self._submit(bytes(self._buf), last=True)
        self._buf = bytearray()
        while self._pending:
            self._emit(self._pending.popleft().result())
        self._emit(struct.pack("<LL", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))

    def tell(self) -> int:  # tarfile's writer asks where it is in the uncompressed stream
        return self.bytes_in

    def write(self, data) -> int:
        if self._closed:
            raise ValueError("write to a closed GzipWriter")
        n = len(data)
        self._crc = zlib.crc32(data, self._crc)
        self._size += n
        self.bytes_in += n
        self._buf += data
        while len(self._buf) >= self._block:
            chunk = bytes(self._buf[:self._block])
            del self._buf[:self._block]
            self._submit(chunk, last=False)
        return n

    def new_member(self) -> int:
        """Ends the current member (unless it is still empty) and starts another; returns the
        offset in the compressed output where the next bytes written begin their member."""
        if self._size:
            self._end_member()
            start = self.bytes_out
            self._start_member()
            return start
        return self.bytes_out - len(member_header(self._mtime, self._level))

    def _submit(self, chunk: bytes, last: bool) -> None:
        self._pending.append(self._pool.submit(_deflate_block, chunk, self._level, self._window, last))
        self._window = chunk[-_WINDOW:] if len(chunk) >= _WINDOW else (self._window + chunk)[-_WINDOW:]
        while len(self._pending) > 2 * self._threads:
            self._emit(self._pending.popleft().result())

    def flush(self) -> None:  # blocks go out whole; there is nothing smaller to flush
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._end_member()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stops the workers without writing the rest (the stream is left incomplete)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
