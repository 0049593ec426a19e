"""MultipartWriter against the real S3 server: whole objects, parts, failures that leave nothing."""

from __future__ import annotations

import io
import os

import pytest
from botocore.exceptions import ClientError

from archivist.errors import JobFailedError
from archivist.transport import multipart, s3io
from archivist.transport.multipart import MultipartWriter


def _read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _unfinished(s3, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_part_sizes_grow_every_two_thousand_parts():
    assert [multipart.part_size(n) for n in (1, 2000, 2001, 4001, 10_000)] == [
        multipart.PART,
        multipart.PART,
        2 * multipart.PART,
        3 * multipart.PART,
        5 * multipart.PART,
    ]


@pytest.mark.parametrize("size", [0, 1, multipart.PART - 1])
def test_an_object_within_one_part_is_one_put(scratch_bucket, size):
    s3, data = s3io.client(scratch_bucket), os.urandom(size)
    with MultipartWriter(s3, scratch_bucket.bucket, "small.bin", "application/x-test") as out:
        out.write(data)
    head = s3.head_object(Bucket=scratch_bucket.bucket, Key="small.bin")
    assert _read(s3, scratch_bucket.bucket, "small.bin") == data
    assert head["ContentType"] == "application/x-test"
    assert "-" not in head["ETag"]  # a single PUT, not a one-part upload
    checked = s3.head_object(Bucket=scratch_bucket.bucket, Key="small.bin", ChecksumMode="ENABLED")
    assert checked["ChecksumCRC32C"] == multipart.crc32c(bytearray(data))  # the sum the server verified


def test_writes_of_every_size_become_parts_in_order(scratch_bucket):
    """Writes smaller than, equal to and spanning several parts, as the jobs make them."""
    s3, written = s3io.client(scratch_bucket), bytearray()
    with MultipartWriter(s3, scratch_bucket.bucket, "big.ndjson") as out:
        for size in (1, 1000, multipart.PART - 1001, multipart.PART, 2 * multipart.PART + 17, 3 * 1024 * 1024):
            chunk = os.urandom(size)
            assert out.write(memoryview(chunk)) == size
            written += chunk
    got = _read(s3, scratch_bucket.bucket, "big.ndjson")
    assert len(got) == len(written) and got == bytes(written)
    assert s3.head_object(Bucket=scratch_bucket.bucket, Key="big.ndjson")["ETag"].endswith(
        '-5"'
    )  # four full parts and the rest
    assert _unfinished(s3, scratch_bucket.bucket) == []


def test_copy_from_uploads_a_whole_stream(scratch_bucket):
    s3, data = s3io.client(scratch_bucket), os.urandom(multipart.PART + 12345)
    with MultipartWriter(s3, scratch_bucket.bucket, "dump.sql") as out:
        assert out.copy_from(io.BytesIO(data)) == len(data)
    assert _read(s3, scratch_bucket.bucket, "dump.sql") == data


def test_an_error_while_writing_leaves_neither_object_nor_parts(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    with pytest.raises(RuntimeError, match="half way"):
        with MultipartWriter(s3, scratch_bucket.bucket, "partial.bin") as out:
            out.write(os.urandom(2 * multipart.PART + 1))  # two parts already sent
            raise RuntimeError("the job failed half way")
    assert _keys(s3, scratch_bucket.bucket) == []
    assert _unfinished(s3, scratch_bucket.bucket) == []


def test_a_refused_part_stops_the_writer_and_leaves_nothing(scratch_bucket, storage_settings):
    s3 = s3io.client(scratch_bucket)
    out = MultipartWriter(s3, scratch_bucket.bucket, "refused.bin")
    out.write(os.urandom(multipart.PART))  # starts the upload, then its parts are refused
    s3.abort_multipart_upload(Bucket=scratch_bucket.bucket, Key="refused.bin", UploadId=out._upload.upload_id)
    with pytest.raises(ClientError, match="NoSuchUpload"):
        for _ in range(3 + multipart.IN_FLIGHT):
            out.write(os.urandom(multipart.PART))
        out.close()
    out.abort()
    assert _keys(s3, scratch_bucket.bucket) == []


def test_a_missing_bucket_fails_at_close_and_names_it(storage_settings):
    s3 = s3io.client(storage_settings)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        with MultipartWriter(s3, "archivist-no-such-bucket", "x.bin") as out:
            out.write(b"small")


def test_more_parts_than_s3_allows_fail_clearly(scratch_bucket, monkeypatch):
    monkeypatch.setattr(multipart, "MAX_PARTS", 2)
    s3 = s3io.client(scratch_bucket)
    with pytest.raises(JobFailedError, match="grew past what one S3 upload of 2 parts can hold"):
        with MultipartWriter(s3, scratch_bucket.bucket, "huge.bin") as out:
            out.write(os.urandom(2 * multipart.PART + 1))
    assert _keys(s3, scratch_bucket.bucket) == [] and _unfinished(s3, scratch_bucket.bucket) == []


def test_a_part_whose_sum_does_not_match_is_refused_and_leaves_nothing(scratch_bucket, monkeypatch):
    monkeypatch.setattr(multipart, "crc32c", lambda body: "AAAAAA==")  # the sum of other bytes
    s3 = s3io.client(scratch_bucket)
    with pytest.raises(ClientError), MultipartWriter(s3, scratch_bucket.bucket, "corrupt.bin") as out:
        out.write(os.urandom(multipart.PART + 1))
    assert _keys(s3, scratch_bucket.bucket) == [] and _unfinished(s3, scratch_bucket.bucket) == []
