"""The backup store: the bucket that holds bundles, and their rotation.

Rotation is stateless: it lists the bucket, keeps the newest N bundles by the
date in their names, and deletes only objects whose names are bundle names.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from archivist import s3io
from archivist.bundle import BackupKey, closest_keys
from archivist.bundle_index import BundleSource
from archivist.config import MIN_BACKUPS_KEPT, S3Settings, parse_backups_kept
from archivist.errors import BackupNotFoundError, ConfigurationError
from archivist.s3io import HashingWriter
from archivist.staging import STAGING_ROOT, S3Staging

log = logging.getLogger(__name__)

# Far longer than any backup runs: staging younger than this may belong to one in progress.
STALE_STAGING = dt.timedelta(hours=6)


@dataclass(frozen=True)
class StoredBundle:
    """A bundle object in the backup bucket."""

    key: BackupKey
    size: int
    last_modified: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key.name, "object": self.key.object_key, "date": self.key.date.isoformat(),
                "size": self.size, "last_modified": self.last_modified.isoformat()}


def plan_rotation(bundles: list[StoredBundle], keep: int, protect: set[str] = frozenset()) -> list[StoredBundle]:
    """The bundles rotation deletes: all but the newest `keep`, never one in `protect`."""
    keep = parse_backups_kept(keep)
    newest_first = sorted(bundles, key=lambda b: (b.key.date, b.last_modified), reverse=True)
    return [b for b in newest_first[keep:] if b.key.name not in protect]


class BackupStore:
    """The backup bucket, reached with `settings`."""

    def __init__(self, settings: S3Settings, s3: Any | None = None):
        self.settings = settings
        self.bucket = settings.bucket
        self.s3 = s3 or s3io.client(settings)

    def check(self, writable: bool = True) -> None:
        """Raises an error naming the bucket and the setting to fix if the bucket is out of
        reach or, with `writable`, if these credentials may not write and delete in it."""
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "reach") from None
        if not writable:
            return
        probe = f"{STAGING_ROOT}.archivist-check-{secrets.token_hex(6)}"
        try:
            self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self.s3.delete_object(Bucket=self.bucket, Key=probe)
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "write to") from None

    def list_bundles(self) -> list[StoredBundle]:
        """Every bundle in the bucket, newest first; other objects are ignored."""
        found = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for obj in page.get("Contents", []):
                    if "/" not in obj["Key"] and BackupKey.is_bundle_object(obj["Key"]):
                        found.append(StoredBundle(BackupKey.parse(obj["Key"]), obj["Size"], obj["LastModified"]))
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "list") from None
        return sorted(found, key=lambda b: (b.key.date, b.last_modified), reverse=True)

    def locate(self, text: str) -> StoredBundle:
        """The bundle named by `text` (a key, with or without .tgz, or `latest`)."""
        bundles = self.list_bundles()
        if text.strip() == "latest":
            if not bundles:
                raise BackupNotFoundError(f"there is no bundle in bucket '{self.bucket}' yet: run a backup first")
            return bundles[0]
        wanted = text.strip().removesuffix(".tgz")
        for bundle in bundles:
            if bundle.key.name == wanted:
                return bundle
        near = closest_keys(wanted, [b.key.name for b in bundles])
        hint = f"; closest: {', '.join(near)}" if near else ("; the bucket holds no bundle" if not bundles else "")
        raise BackupNotFoundError(f"no bundle named {wanted!r} in bucket '{self.bucket}'{hint}")

    def staging(self, key: BackupKey) -> S3Staging:
        return S3Staging(self.s3, self.bucket, key.name)

    @contextmanager
    def bundle_writer(self, key: BackupKey) -> Iterator[HashingWriter]:
        """Streams a new bundle to its final name; it appears only if the block succeeds."""
        with s3io.upload_writer(self.s3, self.bucket, key.object_key, "application/gzip") as out:
            yield out

    def sweep_stale_staging(self, older_than: dt.timedelta = STALE_STAGING) -> int:
        """Deletes staging objects and unfinished uploads older than `older_than`: what runs
        that died with the bucket unreachable could not clean. Younger ones may belong to a
        backup still running, so they are left alone."""
        cutoff = dt.datetime.now(dt.timezone.utc) - older_than
        swept = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=STAGING_ROOT):
            for obj in page.get("Contents", []):
                if obj["LastModified"] <= cutoff:
                    self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                    swept += 1
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= cutoff and (upload["Key"].startswith(STAGING_ROOT)
                                                       or BackupKey.is_bundle_object(upload["Key"])):
                    self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    swept += 1
        if swept:
            log.info("swept %d stale staging object(s) and upload(s) left by earlier failed runs", swept)
        return swept

    def abort_unfinished_bundle(self, key: BackupKey) -> int:
        """Aborts the multipart upload of a bundle whose writer was killed; a finished one is untouched."""
        return s3io.abort_uploads(self.s3, self.bucket, key.object_key)

    def open_bundle(self, key: BackupKey) -> IO[bytes]:
        return s3io.open_object(self.s3, self.bucket, key.object_key)

    def bundle_source(self, key: BackupKey, etag: str | None = None) -> BundleSource:
        """The bundle as a source a restore reads whole or, through its seek index, by ranges;
        every read is pinned to `etag` (when given) or to the ETag the first read sees."""
        return BundleSource.s3(self.s3, self.bucket, key.object_key, etag=etag)

    def rotate(self, keep: int, protect: set[str] = frozenset(), dry_run: bool = False) -> list[StoredBundle]:
        """Deletes all but the newest `keep` bundles (at least 7); returns what it deleted."""
        try:
            keep = parse_backups_kept(keep)
        except ConfigurationError as exc:
            raise ConfigurationError(f"rotation refused, nothing deleted: {exc}") from None
        doomed = plan_rotation(self.list_bundles(), keep, set(protect))
        for bundle in doomed:
            if not BackupKey.is_bundle_object(bundle.key.object_key):  # belt and braces
                continue
            log.info("%s %s (%s, %d bytes)", "would delete" if dry_run else "deleting",
                     bundle.key.object_key, bundle.key.date, bundle.size)
            if not dry_run:
                self.s3.delete_object(Bucket=self.bucket, Key=bundle.key.object_key)
        log.info("rotation kept the newest %d bundles (minimum %d); %s %d", keep, MIN_BACKUPS_KEPT,
                 "would delete" if dry_run else "deleted", len(doomed))
        return doomed
