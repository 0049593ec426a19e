"""Streaming to and from S3-compatible buckets with bounded memory.

Uploads are multipart, one part sent while the next fills a reused buffer
(`multipart.MultipartWriter`), so an upload holds two parts whatever its size.
Every byte written is counted and hashed on the way, which gives each
artifact its size and sha256 without reading it twice.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from archivist.config import S3Settings
from archivist.errors import ConfigurationError, UnreachableError
from archivist.multipart import MultipartWriter

CHUNK = 8 * 1024 * 1024
M_ARENA_MAX = -8  # mallopt's parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
GLIBC_MMAP_THRESHOLD = 128 * 1024  # where glibc's threshold starts
# Blocks this large (multipart parts, bulk bodies, export pages) are mapped on their own; the 1 MiB
# blocks that come and go by the thousand (read windows, small objects) stay in the arenas, where
# mapping them costs page faults (docs/PERFORMANCE.md#mmap-threshold).
MMAP_THRESHOLD = 2 * 1024 * 1024


@contextmanager
def malloc_arenas(arenas: int, mmap_threshold: int = MMAP_THRESHOLD) -> Iterator[None]:
    """Caps glibc's malloc arenas while the block runs, then puts glibc's default back (a no-op
    without glibc). Scoped, so a task run inside a longer-lived process (`airflow dags test`, a
    worker that runs several tasks) does not keep the cap after the task.

    glibc gives threads that allocate their own arenas, up to 8 per core, and keeps freed memory
    in each; a dozen threads handling bodies of every size so fragment the heap that peak RSS grows
    with the data. Two arenas keep it bounded (docs/PERFORMANCE.md#malloc-arenas).

    Every block of at least `mmap_threshold` bytes is mapped on its own and given back when freed.
    Left alone, glibc raises its threshold to the largest block freed so far, so that after the
    first multi-MiB body or part all of them come from the arenas, which they fragment
    (docs/PERFORMANCE.md#mmap-threshold).
    glibc has no way back to that moving threshold: afterwards it stays at glibc's starting value."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_ARENA_MAX, arenas)
    mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    try:
        yield
    finally:
        mallopt(M_ARENA_MAX, 0)  # 0: glibc's own limit again
        mallopt(M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD)


def client(settings: S3Settings, checksums: bool = True) -> Any:
    """A boto3 S3 client for `settings`, path-style so MinIO and AWS both work. Without
    `checksums`, requests carry no CRC32 of their body (ObjectUploads sends Content-MD5 instead)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=settings.secret_access_key or None,
        aws_session_token=settings.session_token or None,
        region_name=settings.region_name or "us-east-1",
        config=Config(
            # No SHA-256 of every body for the signature (botocore's choice over plain http): the
            # checksum sent with each upload (botocore's CRC32, MultipartWriter's own CRC32C) is
            # checked by the server, and the bundle's artifacts carry sha256 sums of their own,
            # checked end to end by verify.
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            request_checksum_calculation="when_supported" if checksums else "when_required",
            max_pool_connections=24,  # room for the storage job's transfer threads plus multipart parts
        ),
    )


def explain(exc: Exception, settings: S3Settings, action: str) -> Exception:
    """Turns a botocore error into one that names the bucket and the setting to fix."""
    where = f"bucket '{settings.bucket}' at {settings.endpoint_url or 'AWS S3'} ({settings.source})"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "403", "Forbidden") and action.startswith("write"):
            return ConfigurationError(f"cannot {action} {where}: access denied ({code}); these credentials may "
                                      "read but not write: grant s3:PutObject and s3:DeleteObject on the bucket")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden",
                    "InvalidTokenId", "InvalidToken", "ExpiredToken"):
            what = "the access key, secret and session token" if settings.session_token else "the access key and secret"
            return ConfigurationError(f"cannot {action} {where}: access denied ({code}); check {what}")
        if code in ("NoSuchBucket", "404", "NotFound"):
            return ConfigurationError(f"cannot {action} {where}: the bucket does not exist; create it or fix the bucket name")
        return UnreachableError(f"cannot {action} {where}: {code or exc}")
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return UnreachableError(f"cannot {action} {where}: {exc}")
    return exc


@dataclass
class Artifact:
    """One file of a bundle: its path inside the bundle folder, size in bytes and sha256."""

    path: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class HashingReader:
    """Wraps a readable stream, counting and hashing what passes through."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self.size = 0
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.size += len(data)
        self._hash.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class HashingWriter:
    """A writable stream that counts and hashes, then hands bytes to `sink`."""

    def __init__(self, sink: IO[bytes]):
        self._sink = sink
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@contextmanager
def upload_writer(s3: Any, bucket: str, key: str, content_type: str = "application/octet-stream") -> Iterator[HashingWriter]:
    """A writable stream whose bytes become the object `key`, uploaded a part at a time.

    The object appears only when the block ends without error: S3 makes a
    multipart upload visible atomically on completion, and an error aborts it.
    """
    with MultipartWriter(s3, bucket, key, content_type) as sink:
        yield HashingWriter(sink)


def upload_reader(s3: Any, bucket: str, key: str, stream: IO[bytes], content_type: str = "application/octet-stream") -> HashingReader:
    """Uploads everything `stream` yields to `key`, returning the counted, hashed reader."""
    reader = HashingReader(stream)
    with MultipartWriter(s3, bucket, key, content_type) as sink:
        sink.copy_from(reader)
    return reader


def open_object(s3: Any, bucket: str, key: str) -> Any:
    """A streaming body for `key`; read it in chunks."""
    return s3.get_object(Bucket=bucket, Key=key)["Body"]


def abort_uploads(s3: Any, bucket: str, prefix: str) -> int:
    """Aborts unfinished multipart uploads under `prefix`, such as those of a killed task."""
    aborted = 0
    # Filtered here, not by the server: MinIO matches a Prefix only against whole keys.
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            if not upload["Key"].startswith(prefix):
                continue
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted


def delete_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Deletes every object under `prefix`; returns how many."""
    if not prefix or not prefix.endswith("/"):
        raise ValueError(f"refusing to delete a prefix that is not a folder: {prefix!r}")
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted
