"""Tests of the bundle's seek index (archivist.format.bundle_index): each file's range holds exactly
that file, tar, gzip and Python's streaming tarfile still read the bundle whole, a restore reads
only its own ranges from a file and from the real S3 server, and a bundle without an index (or
with a wrong one) is read whole or refused, never misread."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import subprocess
import tarfile
import tracemalloc
import zlib

import pytest

from archivist.errors import VerificationError
from archivist.format import bundle, bundle_index, members
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import restore
from archivist.transport import s3io
from tests.support import bundle_bytes, sample_files

KEY = BackupKey(dt.date(2026, 11, 26), "qQUXdfPnayQ")
CREATED = dt.datetime(2026, 11, 26, 1, 0, 7, tzinfo=dt.UTC)
BID = KEY.backup_id
FILES = sample_files(BID)


@pytest.fixture(scope="module")
def written() -> bytes:
    return _write(FILES)


def _write(files: dict[str, bytes]) -> bytes:
    return bundle_bytes(KEY, files, CREATED)


def _ranges(data: bytes) -> dict[str, tuple[int, int, int]]:
    return bundle_index.parse_tail(data[-bundle_index.TAIL_BYTES :], len(data))


def _inflate_raw(data: bytes) -> bytes:
    z = zlib.decompressobj(-zlib.MAX_WBITS)
    return z.decompress(data) + z.flush()


def test_every_file_has_a_range_holding_exactly_that_file(written):
    ranges = _ranges(written)
    assert set(ranges) == {*FILES, bundle.META}
    for path, (start, end, crc) in ranges.items():
        inflated = _inflate_raw(written[start:end])
        assert zlib.crc32(inflated) == crc
        with tarfile.open(fileobj=io.BytesIO(inflated), mode="r:") as tar:
            first = tar.next()
            assert first.name == f"{KEY.name}/{path}"
            if path in FILES:
                assert tar.extractfile(first).read() == FILES[path]


def test_the_ranges_follow_each_other_up_to_the_index(written):
    spans = sorted((a, b) for a, b, _ in _ranges(written).values())
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert written.rfind(bundle_index.MAGIC) > spans[-1][1]  # the index itself follows the last file


def test_tar_gzip_and_verify_read_the_indexed_bundle_whole(written, tmp_path):
    path = tmp_path / f"{KEY.name}.tgz"
    path.write_bytes(written)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    listing = subprocess.run(["tar", "tzf", str(path)], capture_output=True, text=True, check=True).stdout.split()
    assert {f"{KEY.name}/{p}" for p in FILES} < set(listing)
    with tarfile.open(fileobj=io.BytesIO(written), mode="r|gz") as tar:  # Python's one-pass reader
        assert {m.name for m in tar} == {name.rstrip("/") for name in listing}
    assert bundle.verify(io.BytesIO(written)).warnings == []


def test_a_bundle_without_an_index_has_no_ranges():
    plain = gzip.compress(b"x" * 1000)
    assert bundle_index.parse_tail(plain, len(plain)) is None
    assert bundle_index.parse_tail(b"", 0) is None


def test_an_index_pointing_outside_the_object_is_ignored(written):
    assert bundle_index.parse_tail(written[-bundle_index.TAIL_BYTES :], 1000) is None


def test_a_restore_reads_its_files_from_a_local_bundle(written, tmp_path):
    path = tmp_path / f"{KEY.name}.tgz"
    path.write_bytes(written)
    source = BundleSource.file(str(path))
    got = {p: f.read() for p, f in members.members(source, lambda p: p.startswith("jobs.storage/"))}
    assert got == {p: d for p, d in FILES.items() if p.startswith("jobs.storage/")}


def _in_memory(data: bytes, cut: float = 1.0) -> BundleSource:
    """`data` as a bundle source; each file's range gives only the first `cut` of its bytes (the
    tail, where the index is read from, comes whole)."""

    def ranged(a: int, b: int) -> io.BytesIO:
        return io.BytesIO(data[a:b] if b == len(data) else data[a : a + int((b - a) * cut)])

    return BundleSource(lambda: len(data), lambda: io.BytesIO(data), ranged)


def test_a_file_reads_the_same_in_pieces_of_any_size(written):
    path = bundle.postgres_path(BID)
    for _path, f in members.members(_in_memory(written), lambda p: p == path):
        assert b"".join(iter(lambda: f.read(4097), b"")) == FILES[path]  # noqa: B023 - read before the next


def test_a_file_whose_long_name_needs_a_pax_header_is_read_from_its_range():
    long_path = bundle.elasticsearch_index_path("logs-" + "x" * 120, BID)  # over tar's 100-byte name field
    files = {**FILES, long_path: b'{"_id":"1","_source":{"a":1}}\n' * 5_000}
    data = _write(files)
    start, end, _ = _ranges(data)[long_path]
    assert b" path=" in _inflate_raw(data[start:end])[:1024]  # the entry starts with a pax record
    source = _in_memory(data)
    assert restore.verify(source).members[long_path].size == len(files[long_path])
    got = {p: f.read() for p, f in members.members(source, lambda p: p in (long_path, bundle.postgres_path(BID)))}
    assert got == {p: files[p] for p in (long_path, bundle.postgres_path(BID))}


def test_a_range_cut_short_inside_its_file_is_refused(written):
    path = bundle.postgres_path(BID)
    with pytest.raises(VerificationError, match="damaged (or truncated )?near jobs.postgres/"):
        for _path, f in members.members(_in_memory(written, cut=0.5), lambda p: p == path, checked=False):
            f.read()


def test_a_tar_header_claiming_a_negative_size_is_refused():
    path = bundle.postgres_path(BID)
    header = bytearray(tarfile.TarInfo(f"{KEY.name}/{path}").tobuf(format=tarfile.USTAR_FORMAT))
    header[124:136] = b"\xff" * 11 + b"\xfb"  # base-256: -5
    header[148:156] = b"%06o\0 " % (sum(header[:148]) + 8 * 32 + sum(header[156:512]))
    entry = bytes(header) + b"SELECT 1;\n".ljust(512, b"\0")
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = deflate.compress(entry) + deflate.flush(zlib.Z_FULL_FLUSH)
    with pytest.raises(VerificationError, match="negative size"):
        for f in bundle_index.read_range(io.BytesIO(raw), zlib.crc32(entry), path):
            f.read()


def test_a_range_that_inflates_a_thousandfold_is_read_in_bounded_memory():
    # Zeros deflate about 1000 to 1: each 64 KiB of this range's input inflates to about 64 MB. The
    # inflater must hand them on a read's worth at a time, its flush at the range's end included.
    path = bundle.postgres_path(BID)
    size = 100 * 1024 * 1024
    info = tarfile.TarInfo(f"{KEY.name}/{path}")
    info.size = size
    deflate = zlib.compressobj(9, wbits=-zlib.MAX_WBITS)
    header, crc, raw = info.tobuf(format=tarfile.USTAR_FORMAT), 0, []
    crc = zlib.crc32(header)
    raw.append(deflate.compress(header))
    zeros = bytes(1024 * 1024)
    for _ in range(size // len(zeros)):
        crc = zlib.crc32(zeros, crc)
        raw.append(deflate.compress(zeros))
    raw.append(deflate.flush(zlib.Z_FULL_FLUSH))
    body = io.BytesIO(b"".join(raw))
    del raw, zeros
    tracemalloc.start()
    try:
        got = 0
        for f in bundle_index.read_range(body, crc, path):
            while piece := f.read(4096):
                assert len(piece) <= 4096
                got += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == size
    assert peak < 2 * 1024 * 1024, f"{peak} bytes held at once"


def test_an_index_pointing_at_the_wrong_file_is_refused(written, tmp_path):
    ranges = _ranges(written)
    wrong = {**ranges, bundle.storage_path(BID): ranges[bundle.postgres_path(BID)]}
    source = _in_memory(written)
    source._ranges, source._ranges_read = wrong, True
    with pytest.raises(VerificationError, match="index points jobs.storage/"):
        list(members.members(source, lambda p: p == bundle.storage_path(BID)))


@pytest.mark.parametrize("checked", [False, True])
def test_damage_inside_a_range_is_caught_by_its_crc_and_its_sha256(written, checked):
    start, end, _ = _ranges(written)[bundle.storage_path(BID)]
    damaged = bytearray(written)
    damaged[(start + end) // 2] ^= 0x01  # inside the stored (incompressible) archive: no inflate error
    source = _in_memory(bytes(damaged))
    # The CRC32 of the range is checked once the range is read; meta.json's sha256 as soon as the file ends.
    caught = (
        "as read for the restore does not match meta.json" if checked else "damaged near jobs.storage/storage-.*CRC32"
    )
    with pytest.raises(VerificationError, match=caught):
        for _path, f in members.members(source, lambda p: p == bundle.storage_path(BID), checked=checked):
            f.read()


def test_ranged_reads_from_the_s3_server_return_only_the_files_asked_for(written, scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    s3.put_object(Bucket=scratch_bucket.bucket, Key=KEY.object_key, Body=written)
    source = BundleSource.s3(s3, scratch_bucket.bucket, KEY.object_key)
    assert source.size == len(written)
    wanted = {bundle.elasticsearch_index_path("alpha", BID), bundle.indices_path(BID)}
    got = {p: f.read() for p, f in members.members(source, lambda p: p in wanted)}
    assert got == {p: FILES[p] for p in wanted}
