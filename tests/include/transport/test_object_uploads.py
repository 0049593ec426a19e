"""Tests of archivist.transport.object_uploads against the real S3 server: small objects and multipart
ones arrive whole with their content type and metadata, and a failed large upload leaves neither an
object nor an unfinished multipart upload.
A block left early by an error returns once the requests already sent have ended."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import socket
import threading
import time

import pytest
from botocore.exceptions import ClientError

from archivist.transport import object_uploads, s3io
from archivist.transport.object_attributes import ObjectAttributes, from_get_object, tag_set
from archivist.transport.object_uploads import NATIVE_PUT, ObjectUploads

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part


def _body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_small_and_large_objects_arrive_whole(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    rng = random.Random(5)
    small = {f"small/{i:03d}.bin": rng.randbytes(rng.randint(0, 200_000)) for i in range(60)}
    large = rng.randbytes(2 * PART + 12345)
    with ObjectUploads(scratch_bucket, threads=6, budget=3 * MIB, part=PART) as uploads:
        for key, body in small.items():
            uploads.put(key, body, ObjectAttributes("application/octet-stream", metadata={"n": key[-7:-4]}))
        read = []
        uploads.put_large(
            "large/video.mp4",
            io.BytesIO(large),
            len(large),
            ObjectAttributes("video/mp4", metadata={"kind": "big"}),
            on_read=read.append,
        )
        uploads.wait()
    assert sum(read) == len(large) and len(read) == 3
    for key, body in small.items():
        assert _body(s3, scratch_bucket.bucket, key) == body
    head = s3.head_object(Bucket=scratch_bucket.bucket, Key="large/video.mp4")
    assert head["ContentType"] == "video/mp4" and head["Metadata"] == {"kind": "big"}
    assert head["ETag"].strip('"').endswith("-3")  # really a three-part upload
    got = _body(s3, scratch_bucket.bucket, "large/video.mp4")
    assert hashlib.sha256(got).digest() == hashlib.sha256(large).digest()


class _Breaks(io.RawIOBase):
    """A body that fails after `n` bytes, like a bundle cut short."""

    def __init__(self, n: int):
        self._left = n

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError("the archive ended early")
        size = self._left if size < 0 else min(size, self._left)
        self._left -= size
        return b"x" * size


def test_a_large_upload_that_fails_leaves_nothing_behind(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    with ObjectUploads(scratch_bucket, threads=4, budget=3 * MIB, part=PART) as uploads:
        with pytest.raises(OSError, match="ended early"):
            uploads.put_large("cut.bin", _Breaks(PART + 10), 3 * PART, ObjectAttributes("application/octet-stream"))
    assert s3.list_objects_v2(Bucket=scratch_bucket.bucket).get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket=scratch_bucket.bucket).get("Uploads", []) == []


def test_an_upload_error_reaches_the_caller(scratch_bucket):
    missing = f"{scratch_bucket.bucket}-gone"
    with ObjectUploads(dataclasses.replace(scratch_bucket, bucket=missing), threads=2, budget=MIB) as uploads:
        uploads.put("a", b"x", ObjectAttributes("text/plain"))
        with pytest.raises(Exception, match="NoSuchBucket"):
            uploads.wait()


def test_leaving_early_waits_for_requests_already_sent_and_returns(scratch_bucket):
    """A restore that fails while PUTs are still in flight (here: to a port nothing listens on)
    leaves the block once those requests have ended, instead of waiting forever for them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        gone = dataclasses.replace(scratch_bucket, endpoint_url=f"http://127.0.0.1:{probe.getsockname()[1]}")
    left: list[float] = []

    def restore_that_fails() -> None:
        started = time.monotonic()
        try:
            with ObjectUploads(gone, threads=2, budget=MIB) as uploads:
                for i in range(20):
                    uploads.put(f"k/{i}", b"x" * 100, ObjectAttributes("text/plain"))
                raise RuntimeError("the archive is damaged")
        except RuntimeError:
            left.append(time.monotonic() - started)

    thread = threading.Thread(target=restore_that_fails, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert left, "ObjectUploads did not return after an error with requests in flight"


def test_send_reads_each_size_its_own_way_and_every_object_arrives_whole(scratch_bucket):
    rng = random.Random(9)
    bodies = {
        "small.bin": rng.randbytes(1000),
        "middle.bin": rng.randbytes(2 * MIB),
        "large.bin": rng.randbytes(PART + 7),
    }
    read = []
    with ObjectUploads(scratch_bucket, threads=4, budget=3 * MIB, part=PART) as uploads:
        for key, body in bodies.items():
            uploads.send(
                key, io.BytesIO(body), len(body), ObjectAttributes("application/octet-stream"), on_read=read.append
            )
        uploads.wait()
    s3 = s3io.client(scratch_bucket)
    assert {key: _body(s3, scratch_bucket.bucket, key) for key in bodies} == bodies
    assert sum(read) == sum(len(b) for b in bodies.values())
    assert s3.head_object(Bucket=scratch_bucket.bucket, Key="large.bin")["ETag"].strip('"').endswith("-2")


ATTRIBUTES = ObjectAttributes(
    content_type="text/html; charset=utf-8",
    headers={
        "Cache-Control": "max-age=60",
        "Content-Disposition": 'attachment; filename="report.html"',
        "Content-Encoding": "gzip",
        "Content-Language": "es-CL",
        "Expires": "Thu, 01 Dec 2044 16:00:00 GMT",
    },
    metadata={"owner": "team-7"},
    tags={"retention": "long", "class": "a b+c=d.e_f:g/h@i"},
)


@pytest.mark.parametrize(
    "size", [1000, NATIVE_PUT + 1, 2 * PART + 1], ids=["native put", "boto3 put", "multipart upload"]
)
def test_every_header_and_tag_arrives_whichever_way_the_object_is_sent(scratch_bucket, size):
    s3 = s3io.client(scratch_bucket)
    with ObjectUploads(scratch_bucket, threads=2, budget=3 * MIB, part=PART) as uploads:
        uploads.send("page.html", io.BytesIO(b"x" * size), size, ATTRIBUTES)
        uploads.wait()
    head = s3.head_object(Bucket=scratch_bucket.bucket, Key="page.html")
    tags = s3.get_object_tagging(Bucket=scratch_bucket.bucket, Key="page.html")
    assert from_get_object(head, tag_set(tags)) == ATTRIBUTES


@pytest.mark.parametrize(
    "size",
    [1000, NATIVE_PUT + 1, 2 * PART + 1],
    ids=["small, through awscrt", "one PUT, through botocore", "multipart"],
)
def test_every_body_carries_a_checksum_the_server_checks(scratch_bucket, monkeypatch, size):
    s3 = s3io.client(scratch_bucket)
    body = random.Random(size).randbytes(size)
    with ObjectUploads(scratch_bucket, threads=2, budget=3 * PART, part=PART) as uploads:
        uploads.send("checked.bin", io.BytesIO(body), size, ObjectAttributes("application/octet-stream"))
        uploads.wait()
    head = s3.head_object(Bucket=scratch_bucket.bucket, Key="checked.bin", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32C")  # the server got the sum, and kept it with the object
    monkeypatch.setattr(object_uploads, "crc32c", lambda body: "AAAAAA==")  # the sum of other bytes
    with ObjectUploads(scratch_bucket, threads=2, budget=3 * PART, part=PART) as uploads:
        with pytest.raises(ClientError):
            uploads.send("refused.bin", io.BytesIO(body), size, ObjectAttributes("application/octet-stream"))
            uploads.wait()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket.bucket)["Contents"]] == ["checked.bin"]
