"""Streaming to and from S3-compatible buckets with bounded memory.

Uploads are multipart, one part sent while the next fills a reused buffer
(`multipart.MultipartWriter`), so an upload holds two parts whatever its size.
Every byte written is counted and hashed on the way, which gives each
artifact its size and sha256 without reading it twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError, ParamValidationError

from archivist.config import S3Settings
from archivist.errors import ConfigurationError, UnreachableError
from archivist.format.artifact import HashingReader, HashingWriter
from archivist.format.streams import Readable
from archivist.transport import s3session
from archivist.transport.multipart import MultipartWriter

CHUNK = 8 * 1024 * 1024


def client(settings: S3Settings, checksums: bool = True) -> Any:
    """A boto3 S3 client for `settings`. Without `checksums`, requests carry no CRC32 of their
    body (ObjectUploads sends its own CRC32C instead)."""
    try:
        return s3session.new_client(
            settings,
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=s3session.region(settings),
            config=client_config(settings, checksums),
        )
    except (BotoCoreError, ClientError) as exc:  # the role could not be assumed, or the profile read
        raise explain(exc, settings, "sign in for") from None


def client_config(settings: S3Settings, checksums: bool = True) -> Config:
    """archivist's botocore config for `settings`, under the connection's own `config_kwargs`."""
    defaults: dict[str, Any] = {
        # No SHA-256 of every body for the signature (botocore's choice over plain http): the
        # checksum sent with each upload (botocore's CRC32, MultipartWriter's own CRC32C) is
        # checked by the server, and the bundle's artifacts carry sha256 sums of their own,
        # checked end to end by verify.
        "s3": {"payload_signing_enabled": False},
        "retries": {"max_attempts": 5, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 60,
        "request_checksum_calculation": "when_supported" if checksums else "when_required",
        "max_pool_connections": 24,  # room for the storage job's transfer threads plus multipart parts
    }
    if not settings.conn_id:
        # The original tool's variables always meant path-style, which MinIO and AWS both accept.
        # A connection is left to botocore, as the Amazon provider leaves it: path-style for a
        # custom endpoint such as MinIO's (whose buckets are not DNS names unless MINIO_DOMAIN is
        # set), virtual-hosted for AWS, and whatever `config_kwargs.s3.addressing_style` says.
        defaults["s3"]["addressing_style"] = "path"
    return s3session.merged_config(defaults, s3session.client_source(settings).config)


def bucket_url(settings: S3Settings) -> str:
    """The URL under which the clients of `settings` address the bucket's objects, ending in
    '/': path-style (`http://host/bucket/`) or virtual-hosted (`https://bucket.host/`), for
    clients that sign their own requests (s3crt). Taken from a PutObject that an unsigned twin
    of the client prepares and never sends, so it is the URL botocore itself would use."""
    unsigned = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=s3session.region(settings),
        config=client_config(settings).merge(Config(signature_version=UNSIGNED)),
    )
    urls = []

    def keep_url(request: Any, **_: Any) -> AWSResponse:  # answering here stops the request before it is sent
        urls.append(request.url)
        return AWSResponse(request.url, 200, {}, _EmptyBody())

    unsigned.meta.events.register("before-send.s3.PutObject", keep_url)
    unsigned.put_object(Bucket=settings.bucket, Key="k", Body=b"")
    return urls[0].split("?")[0][: -len("k")]


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def explain(exc: Exception, settings: S3Settings, action: str) -> Exception:
    """Turns a botocore error into one that names the bucket and the setting to fix."""
    where = f"bucket '{settings.bucket}' at {settings.endpoint_url or 'AWS S3'} ({settings.source})"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "403", "Forbidden") and action.startswith("write"):
            return ConfigurationError(
                f"cannot {action} {where}: access denied ({code}); these credentials may "
                "read but not write: grant s3:PutObject and s3:DeleteObject on the bucket"
            )
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403",
            "Forbidden",
            "InvalidTokenId",
            "InvalidClientTokenId",
            "InvalidToken",
            "ExpiredToken",
        ):
            return ConfigurationError(
                f"cannot {action} {where}: access denied ({code}); check {settings.credentials_hint}"
            )
        if code in ("NoSuchBucket", "404", "NotFound"):
            return ConfigurationError(
                f"cannot {action} {where}: the bucket does not exist; create it or fix the bucket name"
            )
        return UnreachableError(f"cannot {action} {where}: {code or exc}")
    if isinstance(exc, NoRegionError):  # as the STS client that assumes a role needs one
        return ConfigurationError(
            f"cannot {action} {where}: no region is set: add region_name to the connection's extra, "
            "or set AWS_DEFAULT_REGION"
        )
    if isinstance(exc, ParamValidationError):  # such as a role_arn or assume_role_kwargs STS refuses
        return ConfigurationError(f"cannot {action} {where}: {exc}")
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return UnreachableError(f"cannot {action} {where}: {exc}")
    return exc


@contextmanager
def upload_writer(
    s3: Any,
    bucket: str,
    key: str,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
) -> Iterator[HashingWriter]:
    """A writable stream whose bytes become the object `key` (with user `metadata`), uploaded a
    part at a time.

    The object appears only when the block ends without error: S3 makes a
    multipart upload visible atomically on completion, and an error aborts it.
    """
    with MultipartWriter(s3, bucket, key, content_type, metadata=metadata) as sink:
        yield HashingWriter(sink)


def upload_reader(
    s3: Any, bucket: str, key: str, stream: Readable, content_type: str = "application/octet-stream"
) -> HashingReader:
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
