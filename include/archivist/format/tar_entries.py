"""A tar read as a stream, front to back, each file's bytes read straight from the stream.

tarfile's stream mode (`"r|"`) copies every byte of a file three times more on its way out: into
the join that serves each read, the slices that cut it, and its file object's `readinto`. A
bundle's reading front to back spent a fifth of its CPU there
(docs/PERFORMANCE.md#bundle-read-front-to-back). Here a plain header (a file, a folder) is parsed
by tarfile's own parser; a file behind extended (pax) or GNU long-name headers has its header
blocks parsed whole by tarfile, then its bytes are read straight from the stream too. A bundle's
reading front to back (`bundle.iter_members`) and a range's one entry (`bundle_index`) read so.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator

from archivist.errors import VerificationError
from archivist.format.limits import TAR_HEADER_BYTES, human
from archivist.format.streams import RawReader, Readable

BLOCK = tarfile.BLOCKSIZE
_EXTENSIONS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
# Extension headers before one entry: tarfile follows any number; a path and a long link need two.
MAX_EXTENSIONS = 8


def _cut() -> Exception:
    return tarfile.ReadError("unexpected end of data")


class TarEntries:
    """Iterating yields (header, file) for every entry in order, the file None for an entry that
    holds no bytes (a folder, a link). A file must be read before the next entry is asked for, or
    is skipped unread. After the last entry `end` is the offset of the end-of-archive block.
    `cut` makes the error raised where the stream ends inside an entry."""

    def __init__(self, stream: Readable, cut: Callable[[], Exception] = _cut):
        self._f, self._cut = stream, cut
        self.offset = 0
        self.entry_start = 0  # where the headers of the entry last yielded begin
        self.end: int | None = None
        self.end_block = b""  # what was read of the end: its zero block, or nothing
        self._globals = b""  # global pax headers' blocks, which apply to every later entry
        self._current: EntryFile | None = None

    def __iter__(self) -> Iterator[tuple[tarfile.TarInfo, EntryFile | None]]:
        while True:
            self._finish_current()
            self.entry_start = self.offset
            block = self._block()
            if not block or block == tarfile.NUL * BLOCK:  # tarfile too ends at a missing header
                self.end = self.offset - len(block)
                self.end_block = block
                return
            if len(block) < BLOCK:
                raise self._cut()
            info = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
            if info.type in _EXTENSIONS or self._globals:
                info = self._extended(block, info)
            if info.size < 0:  # the base-256 size field can say so; tarfile does not refuse it
                raise VerificationError(f"the tar entry {info.name!r} claims a negative size: the archive is forged")
            if info.type == tarfile.GNUTYPE_SPARSE or info.sparse is not None:
                raise VerificationError(f"the tar entry {info.name!r} is a sparse file, which no bundle holds")
            if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:  # as tarfile: its size is data
                self._current = EntryFile(self._read, info.size, -info.size % BLOCK, self._cut)
            yield info, self._current if info.isreg() else None

    def _extended(self, first: bytes, info: tarfile.TarInfo) -> tarfile.TarInfo:
        """The entry that a run of extension headers (and any global ones before) describes,
        parsed by tarfile from their blocks, each checked for size before it is read."""
        blocks = [first]
        for _ in range(MAX_EXTENSIONS + 1):
            if info.type not in _EXTENSIONS:
                break
            if not 0 <= info.size <= TAR_HEADER_BYTES:
                raise VerificationError(
                    f"the tar entry {info.name!r} has an extended header of {info.size:,} bytes, over the "
                    f"{human(TAR_HEADER_BYTES)} an entry of ours needs: the archive is forged; nothing after it "
                    "was read"
                )
            data = self._read_exactly(info.size + -info.size % BLOCK)
            if info.type != tarfile.XGLTYPE:
                blocks.append(data)
            elif len(self._globals) + BLOCK + len(data) > TAR_HEADER_BYTES:
                raise VerificationError(
                    f"global extended headers of over {human(TAR_HEADER_BYTES)} in all: the archive is forged"
                )
            else:  # it applies to every later entry, so it is kept apart from this one's
                self._globals += blocks.pop() + data
            header = self._read_exactly(BLOCK)
            if header == tarfile.NUL * BLOCK:
                raise tarfile.ReadError("an extended header is followed by the end of the archive")
            blocks.append(header)
            info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
        else:
            raise VerificationError(
                f"more than {MAX_EXTENSIONS} extended headers before one tar entry: the archive is forged"
            )
        headers = self._globals + b"".join(blocks)
        with tarfile.open(fileobj=io.BytesIO(headers), mode="r:") as tar:
            member = tar.next()
        if member is None or member.offset_data != len(headers):
            raise tarfile.ReadError("extended headers that tarfile does not read as one entry")
        return member

    def _finish_current(self) -> None:
        if self._current is not None:
            self._current.skip()
            self._current = None

    def _read(self, n: int) -> bytes:
        data = self._f.read(n)
        self.offset += len(data)
        return data

    def _block(self) -> bytes:
        """The next header block, or what is left of the stream when that is less."""
        parts, got = [], 0
        while got < BLOCK and (data := self._read(BLOCK - got)):
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _read_exactly(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            data = self._read(min(left, 1024 * 1024))
            if not data:
                raise self._cut()
            parts.append(data)
            left -= len(data)
        return b"".join(parts)


class EntryFile(RawReader):
    """One entry's file bytes (`size`, then `padding` to the next header), read straight from the
    tar's stream by `read`."""

    def __init__(self, read: Callable[[int], bytes], size: int, padding: int, cut: Callable[[], Exception]):
        self._read, self._left, self._padding, self._cut = read, size, padding, cut

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(1024 * 1024), b""))
        if not self._left or not n:
            return b""
        data = self._read(min(n, self._left))
        if not data:
            raise self._cut()
        self._left -= len(data)
        return data

    def skip(self) -> None:
        """Reads what is left of the file and its padding to the next header."""
        left, self._left = self._left + self._padding, 0
        self._padding = 0
        while left:
            data = self._read(min(left, 1024 * 1024))
            if not data:
                raise self._cut()
            left -= len(data)
