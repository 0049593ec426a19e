"""The backup store: the bucket that holds bundles, and their rotation.

Anyone who can write one object to the bucket chooses its name, so nothing here trusts the date
in a bundle's name for order: bundles are ordered by when the bucket received them (the object's
Last-Modified, set by the server), and names dated after tomorrow are ignored. Rotation is
stateless: it lists the bucket, applies the retention rules (archivist.retention: the newest N
in that order, and the calendar rules) to the listing, and deletes only objects whose names are
bundle names. A failed or unfinished backup leaves no bundle object (its upload completes only
when whole), so it is never listed and never counts. Several stacks may share one bucket, each under its own
key prefix (`S3Settings.prefix`); a store sees only the bundles and staging under its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import IO, Any

from archivist.config import MIN_BACKUPS_KEPT, S3Settings, load_encryption, load_timeouts, parse_backups_kept
from archivist.errors import BackupNotFoundError, ConfigurationError, VerificationError
from archivist.format import limits
from archivist.format.artifact import HashingWriter
from archivist.format.bundle import (
    ENCRYPTED_SUFFIX,
    ENCRYPTED_VERSION,
    ENCRYPTION_SCHEME,
    KEY_RE,
    MAX_META_BYTES,
    META,
    BackupKey,
    MetaNeedsMore,
    closest_keys,
    meta_from_prefix,
    parse_meta,
)
from archivist.format.bundle_index import BundleSource
from archivist.format.encryption import DecryptingReader
from archivist.format.streams import ReadableStream
from archivist.retention import RetentionPolicy, Verdict, apply_policy
from archivist.transport import s3io
from archivist.transport.operation_lock import LOCK_OBJECT, OperationLock
from archivist.transport.staging import LEASE, STAGING_ROOT, S3Staging

log = logging.getLogger(__name__)

# Far longer than any backup goes without a sign of life: a running backup refreshes its staging
# lease every minute (staging.LEASE_EVERY), and its tasks wait between retries for minutes at most.
STALE_STAGING = dt.timedelta(hours=6)
# meta.json of a bundle without a seek index is looked for in its first bytes, read in growing
# ranges; not found within LAST_PROBE bytes, the object is no bundle of ours.
FIRST_PROBE = 256 * 1024
LAST_PROBE = 16 * 1024 * 1024
PROBE = ".archivist-check-"  # a write test of `check`, deleted at once; left only by a killed check
# What an encrypted bundle's object tells without its identity, as S3 user metadata: the scheme and
# the format version, no key and no data (docs/FORMAT.md#encrypted-bundles).
ENCRYPTED_METADATA = {"archivist-encryption": ENCRYPTION_SCHEME, "archivist-format-version": str(ENCRYPTED_VERSION)}


@dataclass(frozen=True)
class StoredBundle:
    """A bundle object in the backup bucket; `prefix` is the key prefix of its stack."""

    key: BackupKey
    size: int
    last_modified: dt.datetime
    prefix: str = ""
    encrypted: bool = False  # stored as `.tgz.age`, readable only with the identity

    @property
    def object_key(self) -> str:
        return self.prefix + self.key.object_key_for(self.encrypted)

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def date(self) -> dt.date:
        """The UTC day its backup started, from its name: the period the calendar rules put it in."""
        return self.key.date

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key.name,
            "object": self.object_key,
            "date": self.key.date.isoformat(),
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
            "encrypted": self.encrypted,
        }


def newest_first(bundles: Iterable[StoredBundle]) -> list[StoredBundle]:
    """By when the bucket received them; the name's date and id only break ties."""
    return sorted(bundles, key=lambda b: (b.last_modified, b.key.date, b.key.backup_id), reverse=True)


def is_future(key: BackupKey, today: dt.date | None = None) -> bool:
    """Whether the name is dated after tomorrow (UTC): no backup of ours can be, whatever the
    time zone of the machine that made it, so such a name was planted or its clock is wrong."""
    today = today or dt.datetime.now(dt.UTC).date()
    return key.date > today + dt.timedelta(days=1)


PROTECTED = "new"  # the reason given for the bundle a backup just made, kept whatever the rules say


def as_policy(keep: RetentionPolicy | int | str | None) -> RetentionPolicy:
    """A policy, or a number of newest bundles to keep (at least 7) and no calendar rule."""
    if isinstance(keep, RetentionPolicy):
        parse_backups_kept(keep.last)
        return keep
    return RetentionPolicy(last=parse_backups_kept(keep))


def _rotation_policy(keep: RetentionPolicy | int | str | None) -> RetentionPolicy:
    try:
        return as_policy(keep)
    except ConfigurationError as exc:
        raise ConfigurationError(f"rotation refused, nothing deleted: {exc}") from None


def plan_retention(
    bundles: list[StoredBundle],
    keep: RetentionPolicy | int | str | None,
    protect: AbstractSet[str] = frozenset(),
    today: dt.date | None = None,
) -> list[Verdict[StoredBundle]]:
    """Each bundle, newest first by Last-Modified, with the rules that keep it (none: rotation
    deletes it). A bundle in `protect` is kept whatever the rules say; one dated after tomorrow
    is left out of the plan, neither counted nor deleted."""
    ordered = newest_first(b for b in bundles if not is_future(b.key, today))
    verdicts = apply_policy(ordered, as_policy(keep))
    return [Verdict(v.bundle, (PROTECTED,)) if not v.kept and v.bundle.key.name in protect else v for v in verdicts]


def plan_rotation(
    bundles: list[StoredBundle],
    keep: RetentionPolicy | int | str | None,
    protect: AbstractSet[str] = frozenset(),
    today: dt.date | None = None,
) -> list[StoredBundle]:
    """The bundles rotation deletes, newest first: those no rule of `keep` keeps."""
    return [v.bundle for v in plan_retention(bundles, keep, protect, today) if not v.kept]


class BackupStore:
    """The backup bucket, reached with `settings`, under `settings.prefix`."""

    def __init__(self, settings: S3Settings, s3: Any | None = None):
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.s3 = s3 or s3io.client(settings)

    def object_key(self, key: str) -> str:
        """The object key of `key` (a bundle's object name, or a staging path) in this stack."""
        return self.prefix + key

    @property
    def where(self) -> str:
        """How messages name this store: the bucket, and the prefix when there is one."""
        return f"bucket '{self.bucket}'" + (f" under prefix '{self.prefix}'" if self.prefix else "")

    def check(self, writable: bool = True) -> None:
        """Raises an error naming the bucket and the setting to fix if the bucket is out of
        reach or, with `writable`, if these credentials may not write and delete in it."""
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "reach") from None
        if not writable:
            return
        probe = self.object_key(f"{STAGING_ROOT}{PROBE}{secrets.token_hex(6)}")
        try:
            self.s3.put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self.s3.delete_object(Bucket=self.bucket, Key=probe)
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "write to") from None

    def list_bundles(self) -> list[StoredBundle]:
        """This stack's bundles, newest first (by Last-Modified); other objects are ignored, and
        so, with a warning naming them, are bundles dated after tomorrow."""
        found: list[StoredBundle] = []
        future: list[StoredBundle] = []
        try:
            # Delimiter: only objects directly under the prefix, not other stacks' folders.
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) :]
                    if "/" in name or not BackupKey.is_bundle_object(name):
                        continue
                    stored = StoredBundle(
                        BackupKey.parse(name),
                        obj["Size"],
                        obj["LastModified"],
                        self.prefix,
                        name.endswith(ENCRYPTED_SUFFIX),
                    )
                    (future if is_future(stored.key) else found).append(stored)
        except Exception as exc:
            raise s3io.explain(exc, self.settings, "list") from None
        if future:
            log.warning(
                "ignored %d bundle(s) in %s dated after tomorrow, which no backup can be (planted, "
                "or made on a machine whose clock is wrong): %s",
                len(future),
                self.where,
                ", ".join(b.object_key for b in future),
            )
        return newest_first(found)

    def locate(self, text: str) -> StoredBundle:
        """The bundle named by `text` (a key, with or without .tgz or .tgz.age, or `latest`)."""
        bundles = self.list_bundles()
        if text.strip() == "latest":
            if not bundles:
                raise BackupNotFoundError(f"there is no bundle in {self.where} yet: run a backup first")
            return bundles[0]
        wanted = text.strip().removesuffix(ENCRYPTED_SUFFIX).removesuffix(".tgz")
        for bundle in bundles:
            if bundle.key.name == wanted:
                return bundle
        near = closest_keys(wanted, [b.key.name for b in bundles])
        hint = f"; closest: {', '.join(near)}" if near else ("; it holds no bundle" if not bundles else "")
        if BackupKey.is_bundle_object(f"{wanted}.tgz") and is_future(BackupKey.parse(wanted)):
            hint = "; it is dated after tomorrow, and such bundles are ignored (planted, or a wrong clock)"
        raise BackupNotFoundError(f"no bundle named {wanted!r} in {self.where}{hint}")

    def lock(self) -> OperationLock:
        """The lock that lets one backup or restore of this stack run at a time."""
        return OperationLock(self.s3, self.bucket, self.object_key(LOCK_OBJECT), self.where, load_timeouts().run)

    def staging(self, key: BackupKey) -> S3Staging:
        return S3Staging(self.s3, self.bucket, self.object_key(f"{STAGING_ROOT}{key.name}/"))

    @contextmanager
    def bundle_writer(self, key: BackupKey, encrypted: bool = False) -> Iterator[HashingWriter]:
        """Streams a new bundle to its final name; it appears only if the block succeeds. An
        `encrypted` one is named `.tgz.age` and says so in its metadata; the caller encrypts."""
        with s3io.upload_writer(
            self.s3,
            self.bucket,
            self.object_key(key.object_key_for(encrypted)),
            "application/octet-stream" if encrypted else "application/gzip",
            ENCRYPTED_METADATA if encrypted else None,
        ) as out:
            yield out

    def sweep_stale_staging(self, older_than: dt.timedelta = STALE_STAGING) -> int:
        """Deletes the staging, and aborts the unfinished bundle uploads, of backups that have
        shown no sign of life for `older_than`: what runs that died with the bucket unreachable
        could not clean. A backup's signs of life are its staging lease, which its tasks refresh
        while they run, and every object and upload it made; one newer than `older_than` leaves
        all of that backup alone. Returns how many objects and uploads it removed."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        root = self.object_key(STAGING_ROOT)
        runs: dict[str, _Run] = {}
        swept = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root):
            for obj in page.get("Contents", []):
                name, sep, _ = obj["Key"][len(root) :].partition("/")
                if sep and KEY_RE.match(name):
                    runs.setdefault(name, _Run()).add_object(obj["Key"], obj["LastModified"])
                elif not sep and name.startswith(PROBE) and obj["LastModified"] <= cutoff:
                    self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                    swept += 1
        # Filtered here, not by the server: MinIO matches a Prefix only against whole keys.
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
            for upload in page.get("Uploads", []):
                name = self._run_of_upload(upload["Key"], root)
                if name:
                    runs.setdefault(name, _Run()).add_upload(upload["Key"], upload["UploadId"], upload["Initiated"])
        for name, run in runs.items():
            if run.last_seen > cutoff or self._lease_renewed_since(name, cutoff):
                log.info(
                    "staging of %s was active at %s: a backup still running, left alone",
                    name,
                    run.last_seen.isoformat(),
                )
                continue
            for key in run.objects:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            for key, upload_id in run.uploads:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            swept += len(run.objects) + len(run.uploads)
        if swept:
            log.info("swept %d stale staging object(s) and upload(s) left by earlier failed runs", swept)
        return swept

    def _run_of_upload(self, object_key: str, root: str) -> str | None:
        """The backup an unfinished upload belongs to (a staged artifact, or the bundle itself)."""
        if object_key.startswith(root):
            name, sep, _ = object_key[len(root) :].partition("/")
            return name if sep and KEY_RE.match(name) else None
        name = object_key[len(self.prefix) :] if object_key.startswith(self.prefix) else ""
        if "/" in name or not BackupKey.is_bundle_object(name):
            return None
        return name.removesuffix(ENCRYPTED_SUFFIX).removesuffix(".tgz")

    def _lease_renewed_since(self, name: str, cutoff: dt.datetime) -> bool:
        """Looks at the lease again just before deleting: the listing may be minutes old."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=self.object_key(f"{STAGING_ROOT}{name}/{LEASE}"))
        except Exception:  # no lease (an older archivist's staging, or a run that never wrote one)
            return False
        return head["LastModified"] > cutoff

    def abort_unfinished_bundle(self, key: BackupKey) -> int:
        """Aborts the multipart upload of a bundle whose writer was killed; a finished one is untouched."""
        return sum(
            s3io.abort_uploads(self.s3, self.bucket, self.object_key(key.object_key_for(encrypted)))
            for encrypted in (False, True)
        )

    def open_bundle(self, key: BackupKey) -> IO[bytes]:
        return s3io.open_object(self.s3, self.bucket, self.object_key(key.object_key))

    def bundle_source(
        self, key: BackupKey, etag: str | None = None, encrypted: bool = False, size: int | None = None
    ) -> BundleSource:
        """The bundle as a source a restore reads whole or, through its seek index, by ranges;
        every read is pinned to `etag` (when given) or to the ETag the first read sees. An
        `encrypted` one is read whole, decrypted with the identity of the encryption settings."""
        object_key = self.object_key(key.object_key_for(encrypted))
        decrypt = decrypter(f"bundle object {object_key!r}") if encrypted else None
        return BundleSource.s3(self.s3, self.bucket, object_key, size=size, etag=etag, decrypt=decrypt)

    def read_meta(self, stored: StoredBundle) -> dict[str, Any]:
        """A bundle's meta.json without a download: from its range when the bundle has a seek
        index (two small ranged GETs), else from as few of its first bytes as will do. An
        encrypted bundle's is decrypted from its first bytes, which needs the identity."""
        source = self.bundle_source(stored.key, encrypted=stored.encrypted, size=stored.size)
        if stored.encrypted:
            with closing(source()) as stream:
                return meta_from_prefix(stream, complete=True)
        ranges = source.ranges()
        if ranges and META in ranges and ranges[META][1] - ranges[META][0] <= MAX_META_BYTES:
            for fileobj in source.open_member(META):
                return parse_meta(limits.read_at_most(fileobj, MAX_META_BYTES, META))
        want = min(FIRST_PROBE, stored.size)
        while True:
            body = self.s3.get_object(Bucket=self.bucket, Key=stored.object_key, Range=f"bytes=0-{max(want, 1) - 1}")[
                "Body"
            ]
            try:
                return meta_from_prefix(body, complete=want >= stored.size)
            except MetaNeedsMore:
                if want >= LAST_PROBE:
                    raise VerificationError(f"no {META} in the first {want} bytes: not a bundle, or damaged") from None
                want = min(want * 4, stored.size, LAST_PROBE)
            finally:
                body.close()

    def retention_plan(
        self, keep: RetentionPolicy | int | str | None, protect: AbstractSet[str] = frozenset()
    ) -> list[Verdict[StoredBundle]]:
        """This stack's bundles, newest first, each with the rules that keep it; refuses a
        policy that keeps fewer than 7, before anything is listed."""
        return plan_retention(self.list_bundles(), _rotation_policy(keep), set(protect))

    def rotate(
        self,
        keep: RetentionPolicy | int | str | None,
        protect: AbstractSet[str] = frozenset(),
        dry_run: bool = False,
        plan: list[Verdict[StoredBundle]] | None = None,
    ) -> list[StoredBundle]:
        """Deletes the bundles of this stack that no retention rule keeps (`keep`: a policy, or
        a number of newest bundles, at least 7); returns what it deleted, or with `dry_run`
        would delete. `plan` is a retention_plan already made, to apply as it is."""
        policy = _rotation_policy(keep)
        plan = plan_retention(self.list_bundles(), policy, set(protect)) if plan is None else plan
        doomed = [v.bundle for v in plan if not v.kept]
        for verdict in plan:
            if verdict.kept:
                log.info("keeping %s (%s)", verdict.bundle.object_key, ", ".join(verdict.reasons))
        for bundle in doomed:
            if not bundle.object_key.startswith(self.prefix) or not BackupKey.is_bundle_object(bundle.key.object_key):
                continue  # belt and braces
            log.info(
                "%s %s (%s, received %s, %d bytes): no rule keeps it",
                "would delete" if dry_run else "deleting",
                bundle.object_key,
                bundle.key.date,
                bundle.last_modified.isoformat(),
                bundle.size,
            )
            if not dry_run:
                self.s3.delete_object(Bucket=self.bucket, Key=bundle.object_key)
        log.info(
            "rotation kept %d bundles by the rules %s (never fewer than the newest %d) in %s; %s %d",
            len(plan) - len(doomed),
            policy.describe(),
            MIN_BACKUPS_KEPT,
            self.where,
            "would delete" if dry_run else "deleted",
            len(doomed),
        )
        return doomed


def decrypter(name: str) -> Callable[[ReadableStream], ReadableStream]:
    """Decrypts `name`'s body with the identity the encryption settings hold when it is read; none
    there is a verification failure that names where to put it."""

    def decrypt(body: ReadableStream) -> ReadableStream:
        settings = load_encryption()
        return DecryptingReader(body, settings.identity_keys(name), name, settings.source)

    return decrypt


class _Run:
    """What one backup left in the bucket: staged objects and unfinished uploads, and when it last did anything."""

    def __init__(self) -> None:
        self.objects: list[str] = []
        self.uploads: list[tuple[str, str]] = []
        self.last_seen = dt.datetime.min.replace(tzinfo=dt.UTC)

    def add_object(self, key: str, modified: dt.datetime) -> None:
        self.objects.append(key)
        self.last_seen = max(self.last_seen, modified)

    def add_upload(self, key: str, upload_id: str, initiated: dt.datetime) -> None:
        self.uploads.append((key, upload_id))
        self.last_seen = max(self.last_seen, initiated)
