"""The application bucket as a Source: every object with its metadata in one tar.gz."""

from __future__ import annotations

import logging
from typing import Any

from archivist import config
from archivist.config import S3Settings
from archivist.errors import VerificationError
from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener, finish, members
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.storage import job, targets
from archivist.transport import s3io
from archivist.transport.staging import Staging

log = logging.getLogger(__name__)

SHOWN = 10  # keys named in the list of what a replace restore overwrites; the rest are counted


class StorageSource:
    """One bucket, every object with its content type and metadata."""

    name = "storage"
    check_item = "storage"
    is_archive = staticmethod(lambda path: path.startswith("jobs.storage/storage-") and path.endswith(".tgz"))
    is_manifest = staticmethod(lambda path: path.startswith("jobs.storage/manifest-") and path.endswith(".ndjson"))

    load_settings = staticmethod(config.load_storage)

    def check_options(self, options: RestoreOptions) -> None:
        targets.check_options(options)

    def check(self, settings: S3Settings) -> str:
        job.check_bucket(settings)
        return f"bucket '{settings.bucket}' at {settings.endpoint_url or 'AWS S3'}"

    def dump(self, settings: S3Settings, staging: Staging, backup_id: str, options: DumpOptions) -> JobResult:
        """Every object (of the part's key range) into one tar.gz in staging, beside a manifest of
        keys, sizes and sums."""
        return job.dump(settings, staging, backup_id, options.key_range, options.part)

    def occupied(
        self, settings: S3Settings, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        settings, prefix = targets.target(settings, options), options.storage_prefix
        s3 = s3io.client(settings)
        job.check_bucket(settings, s3)  # a bucket named by storage_bucket may not exist
        if job.bucket_is_empty(s3, settings.bucket, prefix):
            return []
        return [f"bucket '{settings.bucket}' holds objects" + (f" under {prefix!r}" if prefix else "")]

    def replaced(
        self, settings: S3Settings, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        """The bucket's objects under a key the bundle holds: the restore overwrites each of them."""
        settings, prefix = targets.target(settings, options), options.storage_prefix
        s3 = s3io.client(settings)
        job.check_bucket(settings, s3)
        if job.bucket_is_empty(s3, settings.bucket, prefix):
            return []
        where = f"bucket '{settings.bucket}'"
        keys: set[str] | None = None
        if open_bundle is not None:
            for _, manifest in members(open_bundle, self.is_manifest):  # one, or one per part
                keys = (keys or set()) | {prefix + key for key in job.manifest_keys(manifest)}
        if keys is None:  # a bundle of the original tool lists its keys only inside the archive
            return [f"every object of {where} under a key the bundle holds, overwritten"]
        hit = [o["Key"] for o in job.iter_objects(s3, settings.bucket, prefix=prefix) if o["Key"] in keys]
        if not hit:
            return []
        shown = ", ".join(hit[:SHOWN]) + (f" and {len(hit) - SHOWN} more" if len(hit) > SHOWN else "")
        return [f"{len(hit):,} object(s) of {where}, overwritten: {shown}"]

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """Each archive entry's key and size is checked as it is restored (sources/storage/keys.py)."""

    def restore(
        self, open_bundle: BundleOpener, settings: S3Settings, mode: str, options: RestoreOptions, dry_run: bool
    ) -> dict[str, Any]:
        """The bundle's archive, or each of its parts' archives in turn (options.archives: only those),
        into the target bucket under the target prefix."""
        self.check_options(options)
        into, prefix = targets.target(settings, options), options.storage_prefix
        wanted = options.archives
        chosen = (lambda p: self.is_archive(p) and p in wanted) if wanted is not None else self.is_archive
        restored: dict[str, Any] = {"objects": 0, "bytes": 0}
        done = []
        for path, tgz in members(open_bundle, chosen):
            if dry_run:
                log.info("dry run: would restore %s into bucket %s, key prefix %r", path, into.bucket, prefix)
                done.append(path)
                continue
            log.info("restoring %s into bucket %s, key prefix %r (%s mode)", path, into.bucket, prefix, mode)
            # the bucket held nothing before the first archive; the next ones meet its objects
            got = job.restore(into, tgz, mode if not done else "replace", prefix)
            finish(tgz)
            restored = {k: restored[k] + got[k] for k in restored}
            done.append(path)
        if not done:
            raise VerificationError("the bundle has no storage archive (jobs.storage/storage-<id>.tgz)")
        if dry_run:
            restored = {"dry_run": True, "artifacts": done}
        if into is not settings or prefix:
            restored.update(bucket=into.bucket, prefix=prefix)
        return restored

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], options: RestoreOptions) -> list[str]:
        if (got.get("objects"), got.get("bytes")) == (want.get("objects"), want.get("bytes")):
            return []
        return [
            f"storage: {got.get('objects')} objects / {got.get('bytes')} bytes restored, "
            f"bundle has {want.get('objects')} / {want.get('bytes')}"
        ]
