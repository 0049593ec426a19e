"""Tests of the parallel gzip writer (archivist.pgzip): what it writes is ordinary gzip to
Python and to the gzip command, member boundaries land where asked, and data that does not
compress is stored rather than deflated."""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import zlib

import pytest

from archivist.pgzip import GzipWriter, empty_member

TEXT = b"".join(b"line %d of some fairly repetitive log text\n" % i for i in range(60_000))
NOISE = random.Random(3).randbytes(700_000)


def _written(*parts: bytes, boundaries: bool = False, block: int = 64 * 1024) -> tuple[bytes, list[int]]:
    out = io.BytesIO()
    starts = []
    with GzipWriter(out, compresslevel=4, mtime=1, threads=3, block=block) as gz:
        for part in parts:
            if boundaries:
                starts.append(gz.new_member())
            gz.write(part)
    return out.getvalue(), starts


@pytest.mark.parametrize("data", [b"", b"x", TEXT, NOISE, TEXT + NOISE + TEXT], ids=["empty", "one byte", "text",
                                                                                    "noise", "mixed"])
def test_python_and_the_gzip_command_read_it_back(data, tmp_path):
    written, _ = _written(data)
    assert gzip.decompress(written) == data
    path = tmp_path / "out.gz"
    path.write_bytes(written)
    assert subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout == data


def test_text_is_deflated_and_noise_is_stored_at_about_its_size():
    assert len(_written(TEXT)[0]) < len(TEXT) / 5
    assert len(NOISE) < len(_written(NOISE)[0]) < len(NOISE) * 1.01


def test_each_member_inflates_on_its_own_from_its_start():
    parts = [TEXT, NOISE, b"short", TEXT[:1000]]
    written, starts = _written(*parts, boundaries=True)
    assert gzip.decompress(written) == b"".join(parts)
    ends = starts[1:] + [len(written)]
    for part, start, end in zip(parts, starts, ends):
        assert gzip.decompress(written[start:end]) == part


def test_a_new_member_before_any_data_is_the_first_member():
    out = io.BytesIO()
    with GzipWriter(out, mtime=1) as gz:
        assert gz.new_member() == 0
        assert gz.new_member() == 0  # still empty: no empty member is written
        gz.write(b"abc")
        assert gz.tell() == 3
    assert gzip.decompress(out.getvalue()) == b"abc"


def test_a_damaged_member_fails_its_crc():
    written, starts = _written(TEXT, TEXT, boundaries=True)
    damaged = bytearray(written)
    damaged[starts[1] - 6] ^= 0x01  # inside the first member's CRC
    with pytest.raises(gzip.BadGzipFile, match="CRC"):
        gzip.decompress(bytes(damaged))


def test_an_empty_member_with_an_extra_field_inflates_to_nothing():
    member = empty_member(1, b"AR\x03\x00abc")
    assert gzip.decompress(member) == b""
    assert gzip.decompress(gzip.compress(b"data") + member) == b"data"
    assert zlib.decompress(member, 31) == b""
