"""format/tar_entries.py: a tar read front to back gives what tarfile's own reading gives, files
read or skipped, and refuses what no bundle holds before reading it."""

from __future__ import annotations

import io
import tarfile

import pytest

from archivist.errors import VerificationError
from archivist.format.limits import TAR_HEADER_BYTES
from archivist.format.tar_entries import MAX_EXTENSIONS, TarEntries

pytestmark = pytest.mark.unit


def _tar(fmt: int, global_headers: dict[str, str] | None = None) -> bytes:
    """Files of awkward sizes (none, one byte, a block, past a block), a name and a link too long
    for a plain header, a folder and a symlink."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=global_headers or {}) as tar:
        folder = tarfile.TarInfo("bundle-2026-12-07-abc/")  # as GNU tar names a folder
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, size in [("a", 0), ("b", 1), ("c", 512), ("d", 70_001), ("n" * 150 + "/long", 1_000)]:
            info = tarfile.TarInfo(f"bundle-2026-12-07-abc/{name}")
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(i % 251 for i in range(size))))
        link = tarfile.TarInfo("bundle-2026-12-07-abc/link")
        link.type, link.linkname = tarfile.SYMTYPE, "x" * 200
        tar.addfile(link)
    return out.getvalue()


def _tarfile_reading(data: bytes) -> list[tuple[str, int, int, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        return [
            (m.name, m.type[0], m.size, tar.extractfile(m).read() if m.isreg() else None)  # type: ignore[union-attr]
            for m in tar
        ]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_every_entry_reads_as_tarfile_reads_it(fmt):
    data = _tar(fmt) if fmt != tarfile.USTAR_FORMAT else _tar_ustar()
    entries = TarEntries(io.BytesIO(data))
    got = [(m.name, m.type[0], m.size, f.read() if f else None) for m, f in entries]

    assert got == _tarfile_reading(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()
        assert entries.end == tar.offset
    assert entries.end_block == bytes(512)


def _tar_ustar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, size in [("bundle-2026-12-07-abc/x", 3), ("bundle-2026-12-07-abc/" + "p" * 90 + "/y", 600)]:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"z" * size))
    return out.getvalue()


def test_files_left_unread_or_half_read_are_skipped_to_the_next_entry():
    data = _tar(tarfile.PAX_FORMAT)
    got = []
    for i, (member, fileobj) in enumerate(TarEntries(io.BytesIO(data))):
        if fileobj is not None and i % 2:
            fileobj.read(7)  # half read
        got.append(member.name)

    assert got == [name for name, *_ in _tarfile_reading(data)]


def test_a_global_header_applies_to_every_later_entry_as_tarfile_applies_it():
    data = _tar(tarfile.PAX_FORMAT, {"comment": "made here", "uname": "someone"})
    entries = [(m, f.read() if f else None) for m, f in TarEntries(io.BytesIO(data))]

    assert [(m.name, m.type[0], m.size, body) for m, body in entries] == _tarfile_reading(data)
    assert {m.uname for m, _ in entries} == {"someone"}


def test_a_cut_inside_a_file_or_a_header_is_a_tar_error():
    data = _tar(tarfile.PAX_FORMAT)
    for cut in (5_000, 512 * 3 + 100):
        with pytest.raises(tarfile.TarError):
            for _, fileobj in TarEntries(io.BytesIO(data[:cut])):
                if fileobj:
                    fileobj.read()


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(tarfile.USTAR_FORMAT)


def test_an_extended_header_over_the_cap_is_refused_before_it_is_read():
    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, n=-1):
            data = super().read(n)
            Counting.read_bytes += len(data)
            return data

    forged = _header("././@PaxHeader", TAR_HEADER_BYTES + 1, tarfile.XHDTYPE) + bytes(TAR_HEADER_BYTES + 2048)
    with pytest.raises(VerificationError, match="extended header"):
        list(TarEntries(Counting(forged)))
    assert Counting.read_bytes == 512


def test_a_chain_of_extended_headers_longer_than_the_cap_is_refused():
    record = b"11 a=bcdef\n"
    pax = _header("././@PaxHeader", len(record), tarfile.XHDTYPE) + record.ljust(512, b"\0")
    entry = _header("f", 3) + b"abc".ljust(512, b"\0") + bytes(1024)

    [(member, fileobj)] = [(m, f.read()) for m, f in TarEntries(io.BytesIO(pax * MAX_EXTENSIONS + entry))]
    assert (member.name, member.pax_headers, fileobj) == ("f", {"a": "bcdef"}, b"abc")
    with pytest.raises(VerificationError, match="more than"):
        list(TarEntries(io.BytesIO(pax * (MAX_EXTENSIONS + 1) + entry)))


def test_global_headers_are_capped_in_all():
    record = b"%d c=" % (TAR_HEADER_BYTES // 4)
    record = b"%d c=%s\n" % (TAR_HEADER_BYTES // 4, b"x" * (TAR_HEADER_BYTES // 4 - len(record) - 1))
    assert len(record) == TAR_HEADER_BYTES // 4
    glob = _header("././@PaxHeader", len(record), tarfile.XGLTYPE) + record
    entry = _header("f", 0)
    with pytest.raises(VerificationError, match="global extended headers"):
        list(TarEntries(io.BytesIO((glob + entry) * 5 + bytes(1024))))


def test_a_negative_size_and_a_sparse_file_are_refused():
    negative = bytearray(_header("f", 0))
    negative[124:136] = b"\xff" * 12  # base-256: -1
    negative[148:156] = b" " * 8  # the checksum field counts as spaces
    negative[148:156] = b"%06o\0 " % sum(negative)
    with pytest.raises(VerificationError, match="negative size"):
        list(TarEntries(io.BytesIO(bytes(negative) + bytes(1024))))

    with pytest.raises(VerificationError, match="sparse"):
        list(TarEntries(io.BytesIO(_header("s", 0, tarfile.GNUTYPE_SPARSE) + bytes(1024))))
