"""Tests of the bundle's seek index (archivist.format.bundle_index): each file's range holds exactly
that file, tar, gzip and Python's streaming tarfile still read the bundle whole, a restore reads
only its own ranges from a file and from the real S3 server, and a bundle without an index (or
with a wrong one) is read whole or refused, never misread."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
import subprocess
import tarfile
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor

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


# --- verify's one inflating pass (IndexedReading) -------------------------------------------


def _read_indexed(data: bytes, ranges: dict[str, tuple[int, int, int]]) -> tuple[bytes, bundle_index.IndexedReading]:
    reading = bundle_index.IndexedReading(io.BytesIO(data), ranges)
    try:
        return b"".join(iter(lambda: reading.read(65536), b"")), reading
    finally:
        reading.close()


def _gzip(raw: bytes, inflated: bytes) -> bytes:
    """A gzip member of the raw deflate `raw`, whose trailer is right for `inflated`."""
    trailer = zlib.crc32(inflated).to_bytes(4, "little") + len(inflated).to_bytes(4, "little")
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw + trailer


def _stored(payload: bytes) -> bytes:
    """A stored deflate block, not the last."""
    return b"\x00" + len(payload).to_bytes(2, "little") + (len(payload) ^ 0xFFFF).to_bytes(2, "little") + payload


LAST_EMPTY = b"\x03\x00"  # a final, empty block (fixed Huffman codes)


def _with_index(data: bytes, ranges: dict[str, tuple[int, int, int]]) -> bytes:
    """`data` with another seek index in its last block: a well-formed gzip file still."""
    end = max(b for _, b, _ in _ranges(data).values())
    z = zlib.decompressobj(-zlib.MAX_WBITS)
    tar = z.decompress(data[10:end])
    block = bundle_index.index_block(ranges)
    assert block is not None
    return _gzip(data[10:end] + _stored(block) + LAST_EMPTY, tar + block)


def test_one_pass_gives_the_tar_gzip_gives_and_where_each_range_begins(written):
    ranges = _ranges(written)
    tar, reading = _read_indexed(written, ranges)
    assert tar == gzip.decompress(written)
    for path, (begins, length, entry) in reading.ranged.items():
        assert entry is not None and entry[0] == path
        assert path not in FILES or entry[1] == len(FILES[path])
        with tarfile.open(fileobj=io.BytesIO(tar[begins : begins + length]), mode="r:") as one:
            assert one.next().name == f"{KEY.name}/{path}"


def test_verify_reads_an_indexed_bundle_in_one_inflating_pass(written, monkeypatch):
    passes = []
    real = bundle_index._RawInflater.__init__

    def counted(self, body, crc, path, boundary=False):
        passes.append((path, boundary))
        real(self, body, crc, path, boundary)

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the bundle was inflated front to back a second time")

    monkeypatch.setattr(bundle_index._RawInflater, "__init__", counted)
    monkeypatch.setattr(bundle.igzip, "GzipFile", no_second_pass)
    report = restore.verify(_in_memory(written))
    assert set(report.members) == set(FILES)
    # each range once, beside the folders' entries between them (what check_bundle reads after,
    # as a restore job does, is not verify's reading)
    assert sorted(p for p, boundary in passes if boundary and p in _ranges(written)) == sorted(_ranges(written))


def test_a_range_that_begins_inside_a_stored_block_is_refused():
    """The stored block's bytes are data to a front-to-back reader, but deflate of other contents
    to an inflater starting inside them: the range's start must be where a block starts."""
    evil = b"CREATE TABLE public.smuggled (id integer);\n"
    inner = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    hidden = inner.compress(evil) + inner.flush(zlib.Z_SYNC_FLUSH)
    data = _gzip(_stored(hidden) + LAST_EMPTY, hidden)
    assert gzip.decompress(data) == hidden  # what gzip and tar see
    ranges = {"jobs.postgres/p.sql": (15, 15 + len(hidden), zlib.crc32(evil))}
    with pytest.raises(VerificationError, match="cuts it where no deflate block starts"):
        _read_indexed(data, ranges)


def test_a_range_that_refers_back_before_its_start_is_refused():
    text = b"every row of the table, then the same again. " * 200
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(text) + deflate.flush(zlib.Z_SYNC_FLUSH)
    second = deflate.compress(text) + deflate.flush(zlib.Z_SYNC_FLUSH)  # copies from `first`
    data = _gzip(first + second + deflate.flush(), text + text)
    ranges = {"jobs.postgres/p.sql": (10 + len(first), 10 + len(first) + len(second), zlib.crc32(text))}
    with pytest.raises(VerificationError, match="damaged"):
        _read_indexed(data, ranges)


def test_a_wrong_gzip_trailer_or_bytes_after_it_are_refused(written):
    ranges = _ranges(written)
    bad_crc = written[:-8] + bytes([written[-8] ^ 1]) + written[-7:]
    with pytest.raises(VerificationError, match="gzip trailer does not match"):
        _read_indexed(bad_crc, ranges)
    with pytest.raises(VerificationError, match="bytes follow it"):
        _read_indexed(written + b"\0" * 8, ranges)


def test_overlapping_ranges_are_refused(written):
    ranges = _ranges(written)
    path, (start, end, crc) = max(ranges.items(), key=lambda item: item[1][0])
    with pytest.raises(VerificationError, match=f"overlap before {path}"):
        _read_indexed(written, {**ranges, path: (start - 1, end, crc)})


@pytest.mark.parametrize("change", ["two files swapped", "a file left out"])
def test_an_index_that_is_not_the_tars_files_is_refused_by_verify(written, change, tmp_path):
    ranges = _ranges(written)
    pg, storage = bundle.postgres_path(BID), bundle.storage_path(BID)
    if change == "two files swapped":
        other = {**ranges, pg: ranges[storage], storage: ranges[pg]}
    else:  # one in the middle: its bytes are then a part between ranges
        other = {p: r for p, r in ranges.items() if p != pg}
    forged = _with_index(written, other)
    (tmp_path / "forged.tgz").write_bytes(forged)
    subprocess.run(["gzip", "-t", str(tmp_path / "forged.tgz")], check=True)  # a sound gzip file
    with pytest.raises(VerificationError, match="seek index leads to other bytes than its tar holds"):
        restore.verify(_in_memory(forged))


@pytest.fixture(scope="module")
def large() -> tuple[dict[str, bytes], bytes]:
    """A bundle of 24 MiB, more than the reading's queues hold."""
    files = {**FILES, bundle.storage_path(BID): random.Random(7).randbytes(24 * 1024 * 1024)}
    return files, _write(files)


def test_one_pass_reads_a_bundle_larger_than_it_reads_ahead(large):
    """Every part's end asks its stream for nothing more: that must not read as the stream's end
    while the read-ahead still holds MiBs of it (as with any bundle over a few MiB)."""
    big = bundle.storage_path(BID)
    files, data = large
    pool = ThreadPoolExecutor(1)  # a reading that hangs fails the test instead of holding up the suite
    try:
        tar, reading = pool.submit(_read_indexed, data, _ranges(data)).result(timeout=60)
    finally:
        pool.shutdown(wait=False)
    assert tar == gzip.decompress(data)
    assert reading.ranged[big][2] == (big, len(files[big]), 512)


def test_a_stream_that_ends_inside_a_range_is_called_truncated(written):
    ranges = _ranges(written)
    start, end, _ = ranges[bundle.storage_path(BID)]
    with pytest.raises(VerificationError, match="truncated: it ends before its seek index says"):
        _read_indexed(written[: (start + end) // 2], ranges)


class _SlowStream:
    """A GET whose every read waits on the network."""

    def __init__(self, data: bytes):
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        time.sleep(0.2)
        return self._f.read(min(n, 65536) if n and n > 0 else 65536)


def test_a_reading_closed_midway_lets_its_threads_go_at_once(large):
    """verify closes the reading when the tar's reading fails before the end: neither of its
    threads may stay behind waiting for the other (a restore task would hang on them)."""
    _, data = large
    reading = bundle_index.IndexedReading(_SlowStream(data), _ranges(data))
    assert reading.read(10)
    time.sleep(1)  # the inflater now waits on the read-ahead, which waits on the stream
    began = time.monotonic()
    reading.close()
    assert time.monotonic() - began < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("verify-")]
