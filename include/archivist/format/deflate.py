"""A gzip writer that deflates on several threads, as pigz does, with restart points.

The input is cut into blocks; each is deflated on its own, primed with the last 32 KiB of the
block before it, and ends on a byte boundary, so the blocks join into one ordinary deflate
stream in one gzip member (zlib and ISA-L release the GIL while they deflate). Either engine
writes the same format: ISA-L (`isal`, levels 0-3) deflates several times faster per core than
zlib (levels 1-9) at a ratio close to zlib's light levels. `restart_point()` ends the
current block and starts the next one unprimed: nothing after that byte offset refers to
anything before it, so a reader can inflate from there alone (as raw deflate) while every other
reader sees one plain gzip stream. `append_stored()` adds bytes as a stored (uncompressed)
deflate block, so they can be read straight out of the compressed file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from isal import isal_zlib

from archivist.format.finishing import FinishingWriter
from archivist.format.streams import Writable

BLOCK = 1024 * 1024
THREADS = max(1, min(4, os.cpu_count() or 1))
_WINDOW = 32 * 1024
_SAMPLE = 16 * 1024
_STORED_ABOVE = 0.97  # a block whose sample level-1 deflates to more than this fraction is stored

Engine = Literal["zlib", "isal"]
# The levels each engine accepts. Level 0 stores, whatever the engine (ISA-L's own level 0 would deflate).
LEVELS: dict[str, range] = {"zlib": range(0, 10), "isal": range(0, 4)}


def _compressor(engine: Engine, level: int, zdict: bytes | bytearray):
    """A raw-deflate compressor of `engine` at `level`, primed with `zdict` when there is one."""
    module = isal_zlib if engine == "isal" else zlib
    if zdict:
        return module.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    return module.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)


def _deflate_block(
    data: bytes | bytearray, level: int, zdict: bytes | bytearray, last: bool, engine: Engine = "zlib"
) -> bytes:
    """One block as raw deflate, ending on a byte boundary (sync flush) or, for the last, the final block.

    A block that does not compress is stored: three samples of it are deflated at the engine's level 1
    first, and when they save less than 3% the block goes out as stored deflate blocks, at memory
    speed. Data that is compressed already (images, archives, the storage job's tgz inside the bundle) so costs
    next to nothing instead of a full deflate that gains nothing."""
    if level > 0 and len(data) >= 4 * _SAMPLE:
        mid = len(data) // 2
        sample = data[:_SAMPLE] + data[mid : mid + _SAMPLE] + data[-_SAMPLE:]
        probe = _compressor(engine, 1, b"")
        if len(probe.compress(sample) + probe.flush()) > _STORED_ABOVE * len(sample):
            level = 0
    # Stored blocks come from zlib's level 0 whatever the engine: ISA-L's level 0 is a deflate level.
    c = _compressor(engine, level, zdict) if level > 0 else zlib.compressobj(0, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _header(mtime: int, level: int, engine: Engine) -> bytes:
    """The header gzip.GzipFile(filename="") writes: no name, the given mtime, unknown OS."""
    xfl = b"\000" if engine != "zlib" else b"\002" if level == 9 else b"\004" if level == 1 else b"\000"
    return b"\037\213\010\000" + struct.pack("<L", int(mtime) & 0xFFFFFFFF) + xfl + b"\377"


MAX_STORED = 65535  # the most one stored deflate block holds


class GzipWriter(FinishingWriter):
    """A writable gzip stream deflated by several threads; memory is bounded (at most 2 blocks
    per thread in flight). Blocks that do not compress are stored (see `_deflate_block`).
    `compresslevel` is a level of `engine`: 0-9 for zlib, 0-3 for ISA-L."""

    def __init__(
        self,
        fileobj: Writable,
        compresslevel: int = 6,
        mtime: int = 0,
        threads: int | None = None,
        block: int = BLOCK,
        engine: Engine = "zlib",
    ):
        if engine not in LEVELS or compresslevel not in LEVELS[engine]:
            raise ValueError(f"no deflate level {compresslevel} for engine {engine!r}: zlib takes 0-9, isal 0-3")
        self._out, self._level, self._block, self._engine = fileobj, compresslevel, block, engine
        self._threads = threads or THREADS
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="gzip")
        self._pending: deque[Future] = deque()
        self._buf = bytearray()
        self._window: bytes | bytearray = b""
        self._crc = 0
        self._closed = False
        self.bytes_in = 0  # uncompressed bytes written
        self.bytes_out = 0  # compressed bytes handed to `fileobj`
        self._span_crc = 0  # CRC32 of the bytes since the last restart point
        self._emit(_header(mtime, compresslevel, engine))

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_out += len(data)

    def _take(self, data) -> None:
        self._crc = isal_zlib.crc32(data, self._crc)
        self._span_crc = isal_zlib.crc32(data, self._span_crc)
        self.bytes_in += len(data)

    def tell(self) -> int:  # tarfile's writer asks where it is in the uncompressed stream
        return self.bytes_in

    def write(self, data) -> int:
        if self._closed:
            raise ValueError("write to a closed GzipWriter")
        self._take(data)
        self._buf += data
        while len(self._buf) >= self._block:
            # The block goes to its thread as it is and the few bytes past it start the next one,
            # rather than slicing and converting (two more copies of every byte).
            chunk, self._buf = self._buf, self._buf[self._block :]
            del chunk[self._block :]
            self._submit(chunk, last=False)
        return len(data)

    def restart_point(self) -> tuple[int, int]:
        """Ends the current block and writes out everything pending; the next block is not primed.
        Returns (offset in the compressed output where the next block begins, CRC32 of the bytes
        written since the previous restart point)."""
        if self._buf:
            chunk, self._buf = self._buf, bytearray()
            self._submit(chunk, last=False)
        while self._pending:
            self._emit(self._pending.popleft().result())
        self._window = b""
        crc, self._span_crc = self._span_crc, 0
        return self.bytes_out, crc

    def append_stored(self, data: bytes) -> None:
        """Adds `data` as one stored deflate block after a restart point: its bytes appear as they
        are in the compressed output, where a reader can find them without inflating anything."""
        if len(data) > MAX_STORED:
            raise ValueError(f"a stored block holds at most {MAX_STORED} bytes, not {len(data)}")
        self.restart_point()
        self._take(data)
        # Byte-aligned after the sync flush: BFINAL 0, BTYPE 00 and padding make one zero byte.
        self._emit(b"\000" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data)
        self.restart_point()

    def _submit(self, chunk: bytes | bytearray, last: bool) -> None:
        self._pending.append(self._pool.submit(_deflate_block, chunk, self._level, self._window, last, self._engine))
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
            chunk, self._buf = self._buf, bytearray()
            self._submit(chunk, last=True)
            while self._pending:
                self._emit(self._pending.popleft().result())
            self._emit(struct.pack("<LL", self._crc & 0xFFFFFFFF, self.bytes_in & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stops the workers without writing the rest (the stream is left incomplete)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
