"""A tar archive read or written as a stream, holding only the member at hand.

tarfile keeps every member it has written or read in `TarFile.members`, for `getmembers()` and
for extracting an earlier member again, which a stream cannot do anyway. In a storage archive that
list grows with the bucket: about 1 KB a member (its TarInfo and pax records), some 50 MB for
50,000 objects (docs/PERFORMANCE.md#streamed-tar-members).
"""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING

from isal import igzip

from archivist.format.limits import CappedTarInfo
from archivist.format.streams import Readable, with_readinto

if TYPE_CHECKING:
    from _typeshed import SupportsRead


class StreamedTarFile(tarfile.TarFile):
    """Opened like TarFile (`StreamedTarFile.open(fileobj=…, mode="w|")` or `"r|"`), it forgets
    each member once written or read; iterating it still yields every member in order."""

    members: list[tarfile.TarInfo]  # tarfile's own list, which typeshed leaves out

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: SupportsRead[bytes] | None = None) -> None:
        super().addfile(tarinfo, fileobj)
        self.members.clear()

    def next(self) -> tarfile.TarInfo | None:
        # TarFile.__iter__ reads the next member whenever its count passes len(members): with the
        # list kept empty it always does.
        member = super().next()
        self.members.clear()
        return member


def read_tgz(tgz: Readable, bufsize: int = tarfile.RECORDSIZE) -> StreamedTarFile:
    """The tar inside a gzip stream, read as a stream and inflated by ISA-L no more than each read
    asks for. tarfile's own "r|gz" inflates a whole input buffer (tens of MiB from a compressible
    one) and copies what is left at every read; its stream copies its `bufsize` buffer at every
    read too, so that stays small (docs/PERFORMANCE.md#storage-restore-reading)."""
    inflated = igzip.GzipFile(fileobj=with_readinto(tgz), mode="rb")
    return StreamedTarFile.open(fileobj=inflated, mode="r|", bufsize=bufsize, tarinfo=CappedTarInfo)
