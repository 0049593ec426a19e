"""The storage job: every object of the application bucket into one tgz, and back.

Objects stream from S3 into the tar and from the tar into S3, one at a time.
Each tar entry carries the object's exact key, content type and user
metadata in its PAX header, so a restore needs nothing else; a manifest with
the same facts, one JSON line per object, sits beside the tgz for other tools.
"""

from __future__ import annotations

import gzip
import logging
import mimetypes
import tarfile
import time
from collections.abc import Iterator
from typing import IO, Any

import orjson
from boto3.s3.transfer import TransferConfig

from archivist import bundle, s3io
from archivist.bundle import JobResult
from archivist.config import S3Settings
from archivist.errors import ConfigurationError, TargetNotEmptyError, VerificationError
from archivist.progress import Progress, ProgressReader

log = logging.getLogger(__name__)

PAX_KEY = "ARCHIVIST.key"
PAX_CONTENT_TYPE = "ARCHIVIST.content_type"
PAX_METADATA = "ARCHIVIST.metadata"
# Objects are often compressed already; a light level keeps the job fast.
GZIP_LEVEL = 1
RESTORE_TRANSFER = TransferConfig(multipart_threshold=s3io.CHUNK, multipart_chunksize=s3io.CHUNK, max_concurrency=4)


def check(settings: S3Settings, s3: Any | None = None) -> None:
    s3 = s3 or s3io.client(settings)
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except Exception as exc:
        raise s3io.explain(exc, settings, "reach") from None


def iter_objects(s3: Any, bucket: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        yield from page.get("Contents", [])


def _tar_name(key: str) -> str:
    """A relative path for the key; the exact key is in the PAX header."""
    return key.lstrip("/") or "_"


def dump(settings: S3Settings, staging, backup_id: str) -> JobResult:
    """Streams every object of the bucket into `jobs.storage/storage-<id>.tgz` plus its manifest."""
    started = time.monotonic()
    s3 = s3io.client(settings)
    check(settings, s3)
    objects = total = 0
    progress = Progress(f"storage {settings.bucket}")
    tgz_path, manifest_path = bundle.storage_path(backup_id), bundle.storage_manifest_path(backup_id)
    with staging.writer(tgz_path, "application/gzip") as out, \
         staging.writer(manifest_path, "application/x-ndjson") as manifest:
        with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz, \
             tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for listed in iter_objects(s3, settings.bucket):
                key = listed["Key"]
                try:
                    obj = s3.get_object(Bucket=settings.bucket, Key=key)
                except s3.exceptions.NoSuchKey:  # deleted since it was listed: not part of this backup
                    log.warning("object %s was deleted during the backup; skipped", key)
                    continue
                content_type = obj.get("ContentType") or "binary/octet-stream"
                metadata = obj.get("Metadata") or {}
                info = tarfile.TarInfo(_tar_name(key))
                info.size, info.mode = obj["ContentLength"], 0o644
                info.mtime = int(obj["LastModified"].timestamp())
                info.pax_headers = {PAX_KEY: key, PAX_CONTENT_TYPE: content_type,
                                    PAX_METADATA: orjson.dumps(metadata).decode()}
                try:
                    tar.addfile(info, ProgressReader(obj["Body"], progress))
                finally:
                    obj["Body"].close()
                manifest.write(orjson.dumps({"key": key, "size": info.size, "content_type": content_type,
                                             "metadata": metadata, "etag": obj.get("ETag", "").strip('"')}) + b"\n")
                objects += 1
                total += info.size
    progress.done()
    artifacts = [bundle.Artifact(tgz_path, out.size, out.sha256),
                 bundle.Artifact(manifest_path, manifest.size, manifest.sha256)]
    return JobResult("storage", artifacts, {"objects": objects, "bytes": total}, time.monotonic() - started, "S3")


def bucket_is_empty(s3: Any, bucket: str) -> bool:
    return not s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents")


def restore(settings: S3Settings, tgz: IO[bytes], mode: str = "empty") -> dict[str, int]:
    """Puts every object of the tgz back under its key, with its content type and metadata."""
    s3 = s3io.client(settings)
    check(settings, s3)
    if mode == "empty" and not bucket_is_empty(s3, settings.bucket):
        raise TargetNotEmptyError(
            f"bucket '{settings.bucket}' ({settings.source}) already holds objects: restore with mode "
            "'replace' to overwrite the objects the bundle contains, or empty the bucket first"
        )
    objects = total = 0
    progress = Progress(f"restore storage {settings.bucket}")
    try:
        with tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key = member.pax_headers.get(PAX_KEY, member.name)
                content_type = member.pax_headers.get(PAX_CONTENT_TYPE) or \
                    mimetypes.guess_type(key)[0] or "binary/octet-stream"
                metadata = orjson.loads(member.pax_headers.get(PAX_METADATA, "{}"))
                s3.upload_fileobj(
                    ProgressReader(tar.extractfile(member), progress), settings.bucket, key,
                    ExtraArgs={"ContentType": content_type, "Metadata": metadata}, Config=RESTORE_TRANSFER,
                )
                objects += 1
                total += member.size
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, (EOFError, gzip.BadGzipFile)):
            raise
        raise VerificationError(f"the storage archive in the bundle is damaged: {exc}") from None
    progress.done()
    return {"objects": objects, "bytes": total}


def counts(settings: S3Settings) -> dict[str, int]:
    s3 = s3io.client(settings)
    objects = total = 0
    for obj in iter_objects(s3, settings.bucket):
        objects += 1
        total += obj["Size"]
    return {"objects": objects, "bytes": total}
