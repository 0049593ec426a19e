"""format/tar_stream.py: a streamed tar holds only the member at hand, and a gzipped one reads back
entry by entry; a damaged gzip tar raises only what readers turn into a verification error."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from archivist.errors import VerificationError
from archivist.format.bundle import DAMAGE_ERRORS
from archivist.format.limits import TAR_HEADER_BYTES
from archivist.format.tar_stream import StreamedTarFile, read_tgz

pytestmark = pytest.mark.unit


def _add(tar: tarfile.TarFile, count: int) -> list[int]:
    """Adds `count` members as the storage job does (a pax record each), returning len(members)
    after each."""
    held = []
    for i in range(count):
        body = f"object {i}\n".encode() * (i % 7)
        info = tarfile.TarInfo(f"key/{i:04d}")
        info.size, info.pax_headers = len(body), {"ARCHIVIST.key": f"key/{i:04d}"}
        tar.addfile(info, io.BytesIO(body))
        held.append(len(tar.members))
    return held


def _write(out: io.BytesIO, count: int) -> list[int]:
    with StreamedTarFile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        return _add(tar, count)


def test_writing_keeps_no_member_and_reading_back_yields_every_one():
    out = io.BytesIO()
    assert set(_write(out, 300)) == {0}

    got = [
        (member.name, member.pax_headers["ARCHIVIST.key"], body.read() if body else None)
        for member, body in read_tgz(io.BytesIO(gzip.compress(out.getvalue())))
    ]
    assert [name for name, _, _ in got] == [f"key/{i:04d}" for i in range(300)]
    assert all(key == name for name, key, _ in got)
    assert [body for _, _, body in got] == [f"object {i}\n".encode() * (i % 7) for i in range(300)]


def test_the_archive_is_the_one_tarfile_writes():
    ours, theirs = io.BytesIO(), io.BytesIO()
    _write(ours, 20)
    with tarfile.open(fileobj=theirs, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        assert _add(tar, 20)[-1] == 20  # what StreamedTarFile forgets
    assert ours.getvalue() == theirs.getvalue()


def _tgz(count: int) -> bytes:
    out = io.BytesIO()
    _write(out, count)
    return gzip.compress(out.getvalue(), compresslevel=6, mtime=0)


def test_read_tgz_skips_the_files_left_unread():
    got = [(m.name, body.read() if m.name.endswith("7") else None) for m, body in read_tgz(io.BytesIO(_tgz(50)))]
    assert [name for name, _ in got] == [f"key/{i:04d}" for i in range(50)]
    read = [body for _, body in got if body is not None]
    assert read == [f"object {i}\n".encode() * (i % 7) for i in (7, 17, 27, 37, 47)]


class _ReadOnly:
    """A stream with `read` alone, as a decrypting stream or a range is."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)


def test_read_tgz_reads_a_stream_that_has_read_alone():
    got = [body.read() for _, body in read_tgz(_ReadOnly(_tgz(5))) if body]
    assert got == [f"object {i}\n".encode() * (i % 7) for i in range(5)]


@pytest.mark.parametrize("damage", ["deflate", "cut", "crc"])
def test_a_damaged_tgz_raises_what_readers_call_damage(damage):
    data = bytearray(_tgz(200))
    if damage == "deflate":
        data[40:60] = b"\xff" * 20  # no valid block can start there
    elif damage == "cut":
        data = data[: len(data) // 2]
    else:
        data[-8] ^= 1  # the trailer's CRC32
    with pytest.raises(DAMAGE_ERRORS):
        for _, body in read_tgz(io.BytesIO(bytes(data))):
            if body:
                body.read()


def test_the_gzip_trailer_is_checked_past_the_tars_end():
    """tarfile pads an archive to a 10 KiB record: the zeros after the end block still count."""
    out = io.BytesIO()
    _write(out, 1)
    data = bytearray(gzip.compress(out.getvalue(), mtime=0))
    data[-8] ^= 1  # the trailer's CRC32
    with pytest.raises(DAMAGE_ERRORS):
        list(read_tgz(io.BytesIO(bytes(data))))


def test_global_headers_are_refused_once_they_come_to_the_cap_in_all():
    """A global header's records apply to every later entry, so a reader keeps them to the end of
    the archive: many of them, each under the cap, would grow it without bound."""
    record_size = TAR_HEADER_BYTES // 4
    head = b"%d k%%d=" % record_size
    out = io.BytesIO()
    for i in range(5):
        record = head % i
        record += b"x" * (record_size - len(record) - 1) + b"\n"
        info = tarfile.TarInfo("././@PaxHeader")
        info.size, info.type = len(record), tarfile.XGLTYPE
        out.write(info.tobuf(tarfile.USTAR_FORMAT) + record)
        entry = tarfile.TarInfo(f"key/{i}")
        out.write(entry.tobuf(tarfile.USTAR_FORMAT))
    out.write(bytes(1024))

    names = []
    with pytest.raises(VerificationError, match="global extended headers"):
        names.extend(m.name for m, _ in read_tgz(io.BytesIO(gzip.compress(out.getvalue()))))
    assert names == ["key/0", "key/1", "key/2"]  # four headers and their blocks pass the cap
