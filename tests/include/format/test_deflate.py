"""Tests of the parallel gzip writer (archivist.format.deflate): what it writes is one ordinary gzip
member to Python and to the gzip command, a restart point can be inflated from on its own,
stored blocks appear as they are, and data that does not compress is stored, not deflated, with
either deflate engine (zlib, ISA-L)."""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import zlib

import pytest

from archivist.format.deflate import MAX_STORED, Engine, GzipWriter

TEXT = b"".join(b"line %d of some fairly repetitive log text\n" % i for i in range(60_000))
NOISE = random.Random(3).randbytes(700_000)
ENGINES = pytest.mark.parametrize(
    ("engine", "level"), [("zlib", 4), ("isal", 1), ("isal", 3)], ids=["zlib-4", "isal-1", "isal-3"]
)


def _written(
    *parts: bytes, restarts: bool = False, block: int = 64 * 1024, engine: Engine = "zlib", level: int = 4
) -> tuple[bytes, list[tuple[int, int]]]:
    out = io.BytesIO()
    points = []
    with GzipWriter(out, compresslevel=level, mtime=1, threads=3, block=block, engine=engine) as gz:
        for part in parts:
            if restarts:
                points.append(gz.restart_point())
            gz.write(part)
        if restarts:
            points.append(gz.restart_point())
    return out.getvalue(), points


def _inflate_raw(data: bytes) -> bytes:
    z = zlib.decompressobj(-zlib.MAX_WBITS)
    return z.decompress(data) + z.flush()


@ENGINES
@pytest.mark.parametrize(
    "data", [b"", b"x", TEXT, NOISE, TEXT + NOISE + TEXT], ids=["empty", "one byte", "text", "noise", "mixed"]
)
def test_python_and_the_gzip_command_read_it_back(data, engine, level, tmp_path):
    written, _ = _written(data, engine=engine, level=level)
    assert gzip.decompress(written) == data
    path = tmp_path / "out.gz"
    path.write_bytes(written)
    assert subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout == data
    subprocess.run(["gzip", "-t", str(path)], check=True)


@ENGINES
def test_text_is_deflated_and_noise_is_stored_at_about_its_size(engine, level):
    assert len(_written(TEXT, engine=engine, level=level)[0]) < len(TEXT) / 5
    assert len(NOISE) < len(_written(NOISE, engine=engine, level=level)[0]) < len(NOISE) * 1.01


@ENGINES
def test_each_span_between_restart_points_inflates_on_its_own(engine, level):
    parts = [TEXT, NOISE, b"short", TEXT[:1000]]
    written, points = _written(*parts, restarts=True, engine=engine, level=level)
    assert gzip.decompress(written) == b"".join(parts)  # still one plain gzip member
    for part, (start, _), (end, crc) in zip(parts, points, points[1:], strict=False):
        assert _inflate_raw(written[start:end]) == part
        assert crc == zlib.crc32(part)


def test_a_restart_point_before_any_data_is_just_after_the_header():
    out = io.BytesIO()
    with GzipWriter(out, mtime=1) as gz:
        assert gz.restart_point() == (10, 0)
        assert gz.restart_point() == (10, 0)  # nothing written: nothing ends
        gz.write(b"abc")
        assert gz.tell() == 3
    assert gzip.decompress(out.getvalue()) == b"abc"


def test_stored_bytes_appear_as_they_are_and_belong_to_the_stream():
    out = io.BytesIO()
    with GzipWriter(out, mtime=1) as gz:
        gz.write(TEXT)
        gz.append_stored(b"FIND ME: an index")
    written = out.getvalue()
    assert b"FIND ME: an index" in written[-64:]
    assert gzip.decompress(written) == TEXT + b"FIND ME: an index"
    with pytest.raises(ValueError, match="at most"):
        GzipWriter(io.BytesIO()).append_stored(b"x" * (MAX_STORED + 1))


def test_a_damaged_stream_fails_its_crc():
    written, _ = _written(TEXT, TEXT)
    damaged = bytearray(written)
    damaged[-6] ^= 0x01  # inside the CRC
    with pytest.raises(gzip.BadGzipFile, match="CRC"):
        gzip.decompress(bytes(damaged))


@pytest.mark.parametrize(("engine", "level"), [("isal", 4), ("zlib", 10), ("lzma", 1)])
def test_a_level_the_engine_lacks_is_refused(engine, level):
    with pytest.raises(ValueError, match=f"no deflate level {level} for engine"):
        GzipWriter(io.BytesIO(), compresslevel=level, engine=engine)
