"""Tests of archivist.transport.s3crt against the real S3 server: awkward keys, content types and metadata
arrive as sent, and failures come back as the errors archivist explains elsewhere."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from botocore.exceptions import ClientError

from archivist.transport import s3io
from archivist.transport.multipart import crc32c
from archivist.transport.object_uploads import CHECKSUM_HEADER
from archivist.transport.s3crt import NativePuts

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
