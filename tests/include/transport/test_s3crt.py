"""Tests of archivist.transport.s3crt against the real S3 server: awkward keys, content types and metadata
arrive as sent, a GET reads every header archivist keeps as botocore reads it, and failures come back
as the errors archivist explains elsewhere."""

from __future__ import annotations

import base64
import dataclasses
import socket
import zlib

import pytest
from botocore.exceptions import ClientError, FlexibleChecksumError

from archivist.transport import s3io
from archivist.transport.multipart import crc32c
from archivist.transport.object_uploads import CHECKSUM_HEADER
from archivist.transport.s3crt import NativeGets, NativePuts, NotNative, read_answer

PART = 5 * 1024 * 1024
KEYS = [
    "plain.txt",
    "shared/Quarterly Report (final).pdf",
    "shared/résumé – José Álvarez.txt",
    "shared/日本語/ファイル 1.txt",
    "shared/emoji 🎉/party [2026] #1.json",
    "photo+plus&amp;=%20?.png",
    "tilde~/a..b/c",
    "uploads/.keep",
]


def test_awkward_keys_bodies_and_metadata_arrive_as_sent(scratch_bucket):
    puts = NativePuts(scratch_bucket, PART)
    bodies = {key: (key * 50).encode() if not key.endswith(".keep") else b"" for key in KEYS}
    sent = [
        puts.put(
            key,
            body,
            [
                ("Content-Type", "text/x-test"),
                (CHECKSUM_HEADER, crc32c(body)),
                ("x-amz-meta-original-name", "Quarterly%20Report.pdf"),
            ],
        )
        for key, body in bodies.items()
    ]
    assert [future.result(timeout=30) for future in sent] == [None] * len(KEYS)
    s3 = s3io.client(scratch_bucket)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket.bucket)["Contents"]]
    assert sorted(listed) == sorted(KEYS)
    for key, body in bodies.items():
        got = s3.get_object(Bucket=scratch_bucket.bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ContentType"] == "text/x-test"
        assert got["Metadata"] == {"original-name": "Quarterly%20Report.pdf"}


def test_a_body_that_does_not_match_its_checksum_is_refused(scratch_bucket):
    puts = NativePuts(scratch_bucket, PART)
    with pytest.raises(ClientError, match="BadDigest|XAmzContentChecksumMismatch"):
        puts.put("damaged", b"what was read", [(CHECKSUM_HEADER, crc32c(b"what was written"))]).result(timeout=30)
    assert s3io.client(scratch_bucket).list_objects_v2(Bucket=scratch_bucket.bucket).get("KeyCount", 0) == 0


def test_a_wrong_secret_is_an_s3_error_that_explain_names(scratch_bucket):
    wrong = dataclasses.replace(scratch_bucket, secret_access_key=scratch_bucket.secret_access_key + "-wrong")
    with pytest.raises(ClientError) as raised:
        NativePuts(wrong, PART).put("a", b"x", []).result(timeout=30)
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    explained = str(s3io.explain(raised.value, wrong, "write to"))
    assert f"bucket '{wrong.bucket}'" in explained and "check the access key and secret" in explained


def test_no_server_is_a_connection_error_naming_the_object(scratch_bucket):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = dataclasses.replace(scratch_bucket, endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionError, match="'a'.*got no answer"):
        NativePuts(gone, PART).put("a", b"x", []).result(timeout=120)


# What archivist reads of a GetObject answer (sources/storage/job.py, object_attributes.from_get_object).
KEPT = (
    "ContentLength",
    "LastModified",
    "ETag",
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "ExpiresString",
    "Metadata",
    "TagCount",
)


def test_a_get_reads_what_botocore_reads_of_every_header_archivist_keeps(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    extra = {
        "ContentType": "text/html; charset=utf-8",
        "CacheControl": "max-age=60",
        "ContentDisposition": 'attachment; filename="report.html"',
        "ContentEncoding": "gzip",
        "ContentLanguage": "es-CL",
        "Expires": "Thu, 01 Dec 2044 16:00:00 GMT",
        "Metadata": {"original-name": "Quarterly%20Report.pdf", "Camera": "2"},
        "Tagging": "retention=long&team=finance",
    }
    for key in KEYS:
        s3.put_object(Bucket=scratch_bucket.bucket, Key=key, Body=key.encode() * 40, **extra)
    s3.put_object(Bucket=scratch_bucket.bucket, Key="bare", Body=b"")
    gets = NativeGets(scratch_bucket)
    for key in [*KEYS, "bare"]:
        answer, body = gets.get(key).result(timeout=30)
        expected = s3.get_object(Bucket=scratch_bucket.bucket, Key=key)
        assert bytes(body) == expected["Body"].read()
        assert {name: answer.get(name) for name in KEPT} == {name: expected.get(name) for name in KEPT}, key


def test_a_get_of_a_missing_key_is_none_and_of_a_missing_bucket_a_client_error(scratch_bucket):
    assert NativeGets(scratch_bucket).get("never-written").result(timeout=30) is None
    gone = dataclasses.replace(scratch_bucket, bucket=scratch_bucket.bucket + "-missing")
    with pytest.raises(ClientError) as raised:
        NativeGets(gone).get("a").result(timeout=30)
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"
    assert raised.value.operation_name == "GetObject"


def test_a_get_with_a_wrong_secret_or_no_server_fails_as_a_put_does(scratch_bucket):
    wrong = dataclasses.replace(scratch_bucket, secret_access_key=scratch_bucket.secret_access_key + "-wrong")
    with pytest.raises(ClientError) as raised:
        NativeGets(wrong).get("a").result(timeout=30)
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = dataclasses.replace(scratch_bucket, endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionError, match="GET of 'a'.*got no answer"):
        NativeGets(gone).get("a").result(timeout=120)


BODY = bytearray(b"what the server sent")
HEADERS = [
    ("Content-Length", str(len(BODY))),
    ("Last-Modified", "Mon, 07 Dec 2026 09:38:07 GMT"),
    ("x-amz-checksum-crc32", base64.b64encode(zlib.crc32(BODY).to_bytes(4, "big")).decode()),
    ("Vary", "Origin"),
    ("Vary", "Accept-Encoding"),  # a header archivist does not keep may repeat
]


def test_an_answer_is_read_and_its_body_checked_against_its_checksum():
    answer, body = read_answer(HEADERS, BODY, "k")
    assert answer["ContentLength"] == len(BODY) and answer["Metadata"] == {} and body is BODY
    named = read_answer([*HEADERS, ("X-Amz-Meta-Camera", "2")], BODY, "k")[0]
    assert named["Metadata"] == {"Camera": "2"}, "botocore keeps the name as the server sent it"
    with pytest.raises(FlexibleChecksumError, match="'k'"):
        read_answer(HEADERS, bytearray(b"what the server sen!"), "k")
    with pytest.raises(ConnectionError, match="after 4 of its 20 bytes"):
        read_answer(HEADERS, bytearray(b"what"), "k")
    composite = [*HEADERS[:2], ("x-amz-checksum-crc32", "AAAAAA==-3")]  # of the parts' checksums: not checked
    assert read_answer(composite, bytearray(b"what the server sen!"), "k")[0]["ContentLength"] == 20


@pytest.mark.parametrize(
    "header",
    [("x-amz-meta-name", "résumé"), ("Content-Type", "text/plain"), ("x-amz-meta-Name", "b")],
    ids=["not ascii", "repeated", "repeated in another case"],
)
def test_an_answer_botocore_would_read_otherwise_is_left_to_botocore(header):
    headers = [*HEADERS, ("Content-Type", "text/plain"), ("x-amz-meta-name", "a"), header]
    with pytest.raises(NotNative):
        read_answer(headers, BODY, "k")
