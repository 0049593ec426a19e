"""A tar archive written or read as a stream, holding only the member at hand.

tarfile keeps every member it has written in `TarFile.members`, for `getmembers()` and for
extracting an earlier member again, which a stream cannot do anyway. In a storage archive that
list grows with the bucket: about 1 KB a member (its TarInfo and pax records), some 50 MB for
50,000 objects (docs/PERFORMANCE.md#streamed-tar-members). A gzipped tar is read back entry by
entry through `TarEntries`, which keeps none either.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from isal import igzip

from archivist.format.streams import Readable, with_readinto
from archivist.format.tar_entries import EntryFile, TarEntries

if TYPE_CHECKING:
    from _typeshed import SupportsRead


# What is left of the gzip stream after the tar's end is read this much at a time.
_DRAIN = 1024 * 1024


class StreamedTarFile(tarfile.TarFile):
    """Opened like TarFile (`StreamedTarFile.open(fileobj=…, mode="w|")`), it forgets each member
    once written."""

    members: list[tarfile.TarInfo]  # tarfile's own list, which typeshed leaves out

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: SupportsRead[bytes] | None = None) -> None:
        super().addfile(tarinfo, fileobj)
        self.members.clear()


def read_tgz(tgz: Readable) -> Iterator[tuple[tarfile.TarInfo, EntryFile | None]]:
    """Each entry of the tar inside a gzip stream with its file (None for an entry that holds no
    bytes), inflated by ISA-L no more than each read asks for; a file not read is skipped. Past the
    tar's end the rest of the gzip stream is read, so its trailer (CRC32, length) is checked.
    tarfile's own `r|gz` inflates a whole input buffer (tens of MiB from a compressible one) and its
    stream copies each file's bytes three times more (docs/PERFORMANCE.md#storage-restore-reading)."""
    inflated = igzip.GzipFile(fileobj=with_readinto(tgz), mode="rb")
    yield from TarEntries(inflated)
    while inflated.read(_DRAIN):
        pass
