"""Everything S3 keeps with an object comes back from a backup: the headers it stores and serves
(Content-Encoding, Content-Disposition, Cache-Control, …), user metadata and the tag set, on every
upload path; folder-marker keys; and, on a versioned bucket, the current version of each object.
Against the real S3 server, compared the way a client would notice: HEAD and GetObjectTagging."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os

import pytest
from boto3.s3.transfer import TransferConfig

from archivist.errors import JobFailedError, VerificationError
from archivist.format import bundle
from archivist.sources.storage import job, pax
from archivist.sources.storage.keys import describe_key
from archivist.transport import s3io
from archivist.transport.staging import LocalStaging
from tests.security.hostile_support import storage_entry, storage_tgz

MIB = 1024 * 1024
PAGE = gzip.compress(b"<html><body>quarterly report</body></html>", mtime=0)
HEADERS = {
    "CacheControl": "max-age=60",
    "ContentDisposition": 'attachment; filename="report.html"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "es-CL",
    "Expires": "Thu, 01 Dec 2044 16:00:00 GMT",
}
# keys → (body, extra PUT arguments): one per upload path of the restore, a folder marker, a plain one
OBJECTS = {
    "reports/q3.html": (PAGE, {"ContentType": "text/html", **HEADERS, "Tagging": "retention=long&team=finance"}),
    "reports/": (b"", {"ContentType": "application/x-directory"}),
    "media/clip.bin": (
        b"c" * (2 * MIB),
        {"ContentType": "video/mp4", "Tagging": "kind=clip", "CacheControl": "no-store"},
    ),
    "media/huge.bin": (b"h" * (12 * MIB), {"ContentDisposition": "inline", "Metadata": {"origin": "camera-2"}}),
    "plain.txt": (b"nothing special", {}),
}


def _seed(s3, bucket: str) -> None:
    for key, (body, extra) in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


def _seen(s3, bucket: str) -> dict:
    """Each object as a client sees it: body digest, every header S3 stores and serves, tags. (Not
    the ETag: a restored large object is a multipart upload, whose ETag is of another kind.)"""
    seen = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for listed in page.get("Contents", []):
            key = listed["Key"]
            got = s3.get_object(Bucket=bucket, Key=key)
            head = {**got, "Body": hashlib.sha256(got["Body"].read()).hexdigest()}
            tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
            seen[key] = {
                "size": head["ContentLength"],
                "sha256": head["Body"],
                "content_type": head.get("ContentType"),
                "metadata": head.get("Metadata"),
                **{name: head.get(name) for name in HEADERS if name != "Expires"},
                "expires": head.get("ExpiresString"),
                "tags": sorted((t["Key"], t["Value"]) for t in tags),
            }
    return seen


def _backup(settings, tmp_path) -> tuple[LocalStaging, str]:
    staging = LocalStaging(parent=str(tmp_path))
    job.dump(settings, staging, "fidelityid01")
    return staging, "fidelityid01"


def test_every_header_tag_and_folder_marker_round_trips(make_bucket, tmp_path):
    source, target = make_bucket(), make_bucket()
    s3 = s3io.client(source)
    _seed(s3, source.bucket)
    before = _seen(s3, source.bucket)
    assert before["reports/q3.html"]["ContentEncoding"] == "gzip" and before["reports/"]["size"] == 0

    staging, backup_id = _backup(source, tmp_path)
    with staging.open(bundle.storage_path(backup_id)) as tgz:
        restored = job.restore(target, tgz)

    assert restored == {"objects": len(OBJECTS), "bytes": sum(len(body) for body, _ in OBJECTS.values())}
    after = _seen(s3, target.bucket)
    assert after == before
    served = s3.get_object(Bucket=target.bucket, Key="reports/q3.html")
    assert gzip.decompress(served["Body"].read()).startswith(b"<html>"), "the page is not the gzip it was"

    with staging.open(bundle.storage_manifest_path(backup_id)) as manifest:
        lines = {line["key"]: line for line in map(json.loads, manifest)}
    assert lines["reports/q3.html"]["headers"] == {
        "Cache-Control": "max-age=60",
        "Content-Disposition": 'attachment; filename="report.html"',
        "Content-Encoding": "gzip",
        "Content-Language": "es-CL",
        "Expires": "Thu, 01 Dec 2044 16:00:00 GMT",
    }
    assert lines["reports/q3.html"]["tags"] == {"retention": "long", "team": "finance"}
    assert "headers" not in lines["plain.txt"] and "tags" not in lines["plain.txt"]


def test_a_versioned_bucket_backs_up_the_current_version_of_each_object(make_bucket, tmp_path):
    source, target = make_bucket(), make_bucket()
    s3 = s3io.client(source)
    s3.put_bucket_versioning(Bucket=source.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=source.bucket, Key="doc.txt", Body=b"first draft")
    s3.put_object(Bucket=source.bucket, Key="doc.txt", Body=b"final text", ContentLanguage="en")
    s3.put_object(Bucket=source.bucket, Key="gone.txt", Body=b"deleted later")
    s3.delete_object(Bucket=source.bucket, Key="gone.txt")  # leaves a delete marker as its current version

    staging, backup_id = _backup(source, tmp_path)
    with staging.open(bundle.storage_path(backup_id)) as tgz:
        job.restore(target, tgz)

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=target.bucket).get("Contents", [])]
    assert keys == ["doc.txt"]
    doc = s3.get_object(Bucket=target.bucket, Key="doc.txt")
    assert doc["Body"].read() == b"final text" and doc["ContentLanguage"] == "en"


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ({pax.HEADERS: '{"x-amz-website-redirect-location": "https://evil.example"}'}, "is not one S3 stores"),
        ({pax.HEADERS: '{"Cache-Control": "max-age=1\\r\\nx-amz-acl: public-read"}'}, "holds a control character"),
        ({pax.TAGS: json.dumps({f"t{i}": "v" for i in range(11)})}, "11 tags, over S3's limit of 10"),
        ({pax.METADATA: '{"bad name": "v"}'}, "is not a valid header name"),
        ({pax.METADATA: '["not", "an", "object"]'}, "is not a JSON object"),
    ],
    ids=["foreign header", "split header", "too many tags", "metadata name", "metadata shape"],
)
def test_a_forged_attribute_skips_its_object_by_name_and_the_rest_restore(scratch_bucket, records, problem):
    archive = storage_tgz(storage_entry("forged.txt", b"f", **records), storage_entry("fine.txt", b"ok"))
    with pytest.raises(JobFailedError) as failed:
        job.restore(scratch_bucket, io.BytesIO(archive))
    assert f"{describe_key('forged.txt')} (" in str(failed.value) and problem in str(failed.value)
    s3 = s3io.client(scratch_bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket.bucket)["Contents"]] == ["fine.txt"]


def test_an_archive_whose_deflate_stream_is_damaged_is_a_verification_error(scratch_bucket):
    archive = bytearray(storage_tgz(*(storage_entry(f"k/{i}.txt", b"body %d" % i) for i in range(100))))
    archive[30:50] = b"\xff" * 20  # no valid deflate block starts there
    with pytest.raises(VerificationError, match="the storage archive in the bundle is damaged"):
        job.restore(scratch_bucket, io.BytesIO(bytes(archive)))
    assert s3io.client(scratch_bucket).list_objects_v2(Bucket=scratch_bucket.bucket).get("KeyCount", 0) == 0


class _Pattern(io.RawIOBase):
    """`size` bytes that deflate cannot shrink (a random MiB repeated, farther apart than its
    window), made as they are read and hashed on the way: a large object without holding or
    generating it whole, nor reading it back to know its digest."""

    def __init__(self, size: int):
        self.left, self.block, self.offset = size, os.urandom(MIB), 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left, MIB - self.offset)
        buffer[:n] = self.block[self.offset : self.offset + n]
        self.sha256.update(self.block[self.offset : self.offset + n])
        self.offset, self.left = (self.offset + n) % MIB, self.left - n
        return n


def _digest(s3, bucket: str, key: str) -> tuple[int, str]:
    body, sha, size = s3.get_object(Bucket=bucket, Key=key)["Body"], hashlib.sha256(), 0
    while chunk := body.read(8 * MIB):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def test_an_object_above_5_gib_round_trips(make_bucket, tmp_path):
    """Above 5 GiB an object can be neither PUT nor copied in one request: it goes back as a
    multipart upload of bounded parts, streamed from the archive."""
    source, target = make_bucket(), make_bucket()
    s3 = s3io.client(source)
    size = 5 * 1024**3 + 3 * MIB + 17
    config = TransferConfig(multipart_chunksize=64 * MIB, max_concurrency=4)
    pattern = _Pattern(size)
    s3.upload_fileobj(pattern, source.bucket, "archive/huge.bin", ExtraArgs={"Tagging": "tier=cold"}, Config=config)
    original = (size, pattern.sha256.hexdigest())

    staging, backup_id = _backup(source, tmp_path)
    with staging.open(bundle.storage_path(backup_id)) as tgz:
        assert job.restore(target, tgz) == {"objects": 1, "bytes": size}
    staging.cleanup()

    assert _digest(s3, target.bucket, "archive/huge.bin") == original
    tags = s3.get_object_tagging(Bucket=target.bucket, Key="archive/huge.bin")["TagSet"]
    assert tags == [{"Key": "tier", "Value": "cold"}]
