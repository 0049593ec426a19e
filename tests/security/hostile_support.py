"""What the hostile-bundle tests share: storage archives built entry by entry the way archivist
writes them (or with headers it never writes), and the environment that points the `archivist`
command at them."""

from __future__ import annotations

import gzip
import tarfile

from archivist.config import S3Settings
from archivist.sources.storage import pax as storage_pax
from archivist.transport import s3io


def storage_entry(key: str, body: bytes, name: str | None = None, **pax: str) -> bytes:
    """One tar entry as archivist writes it: the exact key in the pax header, then the body."""
    info = tarfile.TarInfo(name or (key.lstrip("/") or "_"))
    info.size, info.mode = len(body), 0o644
    info.pax_headers = {storage_pax.KEY: key, storage_pax.CONTENT_TYPE: "text/plain", storage_pax.METADATA: "{}", **pax}
    padding = b"\0" * (-len(body) % tarfile.BLOCKSIZE)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + body + padding


def lying_entry(key: str, declared: int, body: bytes) -> bytes:
    """An entry whose header claims `declared` bytes, followed by only `body`: a forged size."""
    info = tarfile.TarInfo(key)
    info.size, info.mode = declared, 0o644  # above 8 GiB tarfile records the size in the pax header
    info.pax_headers = {storage_pax.KEY: key}
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + body


def storage_tgz(*entries: bytes, end: bool = True) -> bytes:
    """A storage archive of `entries`, gzipped; `end=False` leaves out the tar's end blocks."""
    return gzip.compress(b"".join(entries) + (b"\0" * 2 * tarfile.BLOCKSIZE if end else b""), mtime=0)


def storage_files(tgz: bytes) -> dict[str, bytes]:
    """The files of a bundle whose only job is storage (for forge.forge)."""
    return {"jobs.storage/storage-{id}.tgz": tgz, "jobs.storage/manifest-{id}.ndjson": b""}


def s3_env(prefix: str, settings: S3Settings) -> dict[str, str]:
    """The spec's variables (`S3_` or `BACKUP_`) for `settings`' bucket."""
    return {
        f"{prefix}BUCKET_NAME": settings.bucket,
        f"{prefix}ACCESS_KEY_ID": settings.access_key_id,
        f"{prefix}SECRET_ACCESS_KEY": settings.secret_access_key,
        f"{prefix}ENDPOINT_URL": settings.endpoint_url or "",
    }


def objects(settings: S3Settings) -> dict[str, bytes]:
    """Every object of the bucket with its body."""
    s3 = s3io.client(settings)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
    return found


def unfinished_uploads(settings: S3Settings) -> list[str]:
    return [u["Key"] for u in s3io.client(settings).list_multipart_uploads(Bucket=settings.bucket).get("Uploads", [])]
