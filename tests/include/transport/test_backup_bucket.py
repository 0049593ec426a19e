"""Tests of the backup store (archivist.transport.backup_bucket): the pure rotation plan, and BackupStore
against the real S3 server in a fresh scratch bucket: rotation keeps the newest
bundles (by when the bucket received them) and never touches other objects, the
minimum of 7 is enforced before anything is deleted, dry runs delete nothing,
locate finds or explains, a key prefix keeps stacks apart, and the staging sweep
leaves a backup with a fresh lease alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from botocore.exceptions import ClientError

from archivist.errors import BackupNotFoundError, ConfigurationError
from archivist.format import bundle
from archivist.format.artifact import Artifact
from archivist.format.bundle import BackupKey, JobResult
from archivist.retention import RetentionPolicy
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore, StoredBundle, plan_rotation
from archivist.transport.staging import LEASE, LocalStaging
from tests.support import wait_until

START = dt.date(2026, 1, 1)
FOREIGN = ["notes.txt", "bundle-notes.tgz"]
STAGED = "staging/bundle-2025-12-01-AAAAAAAAAAA/jobs.postgres/postgres-AAAAAAAAAAA.sql"
UTC = dt.UTC


def _key(day: int, seed: int | None = None) -> BackupKey:
    rng = random.Random(day if seed is None else seed)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return BackupKey(START + dt.timedelta(days=day), "".join(rng.choice(alphabet) for _ in range(11)))


def _stored(day: int, uploaded_minute: int = 0, seed: int | None = None) -> StoredBundle:
    key = _key(day, seed)
    return StoredBundle(key, 100, dt.datetime.combine(key.date, dt.time(1, uploaded_minute), UTC))


# --- plan_rotation --------------------------------------------------------------------------


def test_plan_keeps_the_newest_by_date_whatever_the_input_order():
    bundles = [_stored(d) for d in range(40)]
    random.Random(1).shuffle(bundles)
    doomed = plan_rotation(bundles, 30)
    assert sorted(b.key.date for b in doomed) == [START + dt.timedelta(days=d) for d in range(10)]


def test_plan_orders_by_upload_time_not_the_date_in_the_name():
    # the name is whatever its writer chose; Last-Modified is the server's
    bundles = [_stored(d) for d in range(1, 10)]
    late_copy = StoredBundle(_key(0), 100, dt.datetime(2026, 6, 1, tzinfo=UTC))
    doomed = plan_rotation(bundles + [late_copy], 9)
    assert doomed == [_stored(1)]


def test_plan_ignores_names_dated_after_tomorrow():
    today = dt.date(2026, 1, 20)
    real = [_stored(d) for d in range(19)]
    tomorrow = StoredBundle(BackupKey(today + dt.timedelta(days=1), "T" * 11), 1, dt.datetime(2026, 1, 20, tzinfo=UTC))
    planted = [
        StoredBundle(BackupKey(dt.date(2099, 1, d), f"{d:011d}"), 1, dt.datetime(2026, 1, 20, tzinfo=UTC))
        for d in range(1, 8)
    ]
    doomed = plan_rotation(real + [tomorrow] + planted, 7, today=today)
    assert not set(doomed) & set(planted)
    assert tomorrow not in doomed  # a clock a day ahead still counts, and is the newest
    assert doomed == list(reversed(real[:13]))


def test_plan_never_deletes_a_bundle_newer_than_one_it_keeps():
    rng = random.Random(7)
    for _ in range(50):
        bundles = [
            StoredBundle(
                _key(rng.randrange(300), seed=i),
                1,
                dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(10_000)),
            )
            for i in range(rng.randrange(40))
        ]
        doomed = plan_rotation(bundles, 7)
        kept = [b for b in bundles if b not in doomed]
        if doomed:
            assert max(b.last_modified for b in doomed) <= min(b.last_modified for b in kept)
            assert len(kept) == 7


def test_plan_breaks_same_day_ties_by_upload_time():
    morning, evening = _stored(20, 0, seed=1), _stored(20, 59, seed=2)
    older = [_stored(d) for d in range(7)]
    doomed = plan_rotation(older + [morning, evening], 8)
    assert doomed == [_stored(0)]
    doomed = plan_rotation(older + [morning, evening], 7)
    assert {b.key.name for b in doomed} == {_key(0).name, _key(1).name}
    # of two backups on the oldest kept day, the later one survives
    same_day = [_stored(d) for d in range(1, 7)] + [_stored(0, 0, seed=1), _stored(0, 59, seed=2)]
    assert plan_rotation(same_day, 7) == [_stored(0, 0, seed=1)]


def test_plan_deletes_nothing_when_there_are_few_bundles():
    assert plan_rotation([_stored(d) for d in range(30)], 30) == []
    assert plan_rotation([_stored(d) for d in range(3)], 7) == []
    assert plan_rotation([], 7) == []


@pytest.mark.parametrize("keep", [0, 1, 6, "5", "abc"])
def test_plan_never_keeps_fewer_than_seven(keep):
    with pytest.raises(ConfigurationError):
        plan_rotation([_stored(d) for d in range(40)], keep)


def test_plan_default_keep_is_thirty():
    assert len(plan_rotation([_stored(d) for d in range(40)], None)) == 10


def test_plan_honours_protect():
    bundles = [_stored(d) for d in range(20)]
    protected = {_key(0).name, _key(3).name, _key(19).name}
    doomed = plan_rotation(bundles, 7, protect=protected)
    assert {b.key.name for b in doomed} == {_key(d).name for d in range(13)} - protected
    assert len(doomed) == 11
    # protecting something never makes rotation delete a newer bundle instead
    assert not {b.key.name for b in doomed} & {_key(d).name for d in range(13, 20)}


# --- BackupStore against the real S3 server -------------------------------------------------


def _objects(s3, bucket: str) -> set[str]:
    return {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }


@pytest.fixture
def filled(scratch_bucket):
    """40 bundles of 40 different days (uploaded oldest first), 2 foreign objects and a staged artifact."""
    s3 = s3io.client(scratch_bucket)
    keys = [_key(d) for d in range(40)]
    for key in keys:
        s3.put_object(Bucket=scratch_bucket.bucket, Key=key.object_key, Body=f"bundle {key}".encode())
    for name in FOREIGN + [STAGED]:
        s3.put_object(Bucket=scratch_bucket.bucket, Key=name, Body=b"not a bundle")
    return BackupStore(scratch_bucket), s3, keys


def test_list_bundles_ignores_other_objects(filled):
    store, _, keys = filled
    listed = store.list_bundles()
    assert [b.key for b in listed] == sorted(keys, reverse=True)
    assert all(b.size == len(f"bundle {b.key}") for b in listed)
    assert all(b.last_modified.tzinfo is not None for b in listed)


def test_rotate_keeps_the_30_newest_and_every_foreign_object(filled):
    store, s3, keys = filled
    deleted = store.rotate(30)
    assert sorted(b.key for b in deleted) == keys[:10]
    remaining = _objects(s3, store.bucket)
    assert remaining == {k.object_key for k in keys[10:]} | set(FOREIGN) | {STAGED}
    assert store.rotate(30) == []  # a second run has nothing to do
    assert _objects(s3, store.bucket) == remaining


def test_rotate_honours_protect(filled):
    store, s3, keys = filled
    deleted = store.rotate(30, protect={keys[0].name})
    assert sorted(b.key for b in deleted) == keys[1:10]
    assert keys[0].object_key in _objects(s3, store.bucket)


@pytest.mark.parametrize("keep", [5, 0, "6", "abc", ""])
def test_rotate_below_minimum_refuses_and_deletes_nothing(filled, keep):
    store, s3, keys = filled
    before = _objects(s3, store.bucket)
    with pytest.raises(ConfigurationError) as info:
        store.rotate(keep)
    assert "nothing deleted" in str(info.value)
    assert _objects(s3, store.bucket) == before
    assert len(before) == 40 + len(FOREIGN) + 1


def test_rotate_dry_run_deletes_nothing(filled):
    store, s3, keys = filled
    before = _objects(s3, store.bucket)
    planned = store.rotate(7, dry_run=True)
    assert sorted(b.key for b in planned) == keys[:33]
    assert _objects(s3, store.bucket) == before


def test_calendar_rotation_deletes_exactly_the_planned_bundles(scratch_bucket):
    """Two years of bundles, one every third day (some days two), uploaded oldest first; a
    bundle whose upload never completed and a staged artifact are neither counted nor deleted."""
    s3 = s3io.client(scratch_bucket)
    store = BackupStore(scratch_bucket)
    first = dt.date(2024, 11, 20)  # to 2026-11-19: all in the past, none ignored as dated after tomorrow
    keys = [
        dataclasses.replace(_key(0, seed=d * 10 + k), date=first + dt.timedelta(days=d))
        for d in range(0, 730, 3)
        for k in range((d % 9 == 0) + 1)
    ]
    for key in keys:
        s3.put_object(Bucket=store.bucket, Key=key.object_key, Body=b"bundle")
    for name in FOREIGN + [STAGED]:
        s3.put_object(Bucket=store.bucket, Key=name, Body=b"not a bundle")
    unfinished = BackupKey(first + dt.timedelta(days=731), "unfinished0")
    upload = s3.create_multipart_upload(Bucket=store.bucket, Key=unfinished.object_key)
    policy = RetentionPolicy(last=7, daily=7, weekly=4, monthly=12, yearly=5)

    plan = store.retention_plan(policy)
    assert {v.bundle.key for v in plan} == set(keys)  # the unfinished one is not there
    assert [v.bundle.key.date for v in plan] == sorted((k.date for k in keys), reverse=True)
    kept = {v.bundle.key.name: v.reasons for v in plan if v.kept}
    newest = sorted(keys)[-1]
    assert kept[newest.name] == ("last 7", "daily 7", "weekly 4", "monthly 12", "yearly 5")
    assert kept[plan[-1].bundle.key.name] == ("yearly 5",)  # three years only: a place left for the oldest
    for rule, places in (("last 7", 7), ("daily 7", 7), ("weekly 4", 4), ("monthly 12", 12), ("yearly 5", 3 + 1)):
        assert sum(rule in reasons for reasons in kept.values()) == places
    assert store.rotate(policy, dry_run=True) == [v.bundle for v in plan if not v.kept]
    assert len(_objects(s3, store.bucket)) == len(keys) + len(FOREIGN) + 1

    deleted = store.rotate(policy)
    assert {b.key.name for b in deleted} == {v.bundle.key.name for v in plan if not v.kept}
    assert _objects(s3, store.bucket) == {BackupKey.parse(n).object_key for n in kept} | set(FOREIGN) | {STAGED}
    uploads = s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [upload["UploadId"]]
    assert store.rotate(policy) == []  # stateless: the same listing plans the same, nothing left to do
    s3.abort_multipart_upload(Bucket=store.bucket, Key=unfinished.object_key, UploadId=upload["UploadId"])


def test_locate(filled):
    store, _, keys = filled
    assert store.locate("latest").key == keys[-1]
    assert store.locate(" latest ").key == keys[-1]
    assert store.locate(keys[5].name).key == keys[5]
    assert store.locate(keys[5].object_key).key == keys[5]


def test_locate_unknown_lists_the_closest_keys(filled):
    store, _, keys = filled
    target = keys[17]
    typo = BackupKey(target.date, target.backup_id[:-1] + ("x" if target.backup_id[-1] != "x" else "y"))
    with pytest.raises(BackupNotFoundError) as info:
        store.locate(typo.object_key)
    message = str(info.value)
    assert typo.name in message and store.bucket in message
    assert "closest:" in message
    assert target.name in message.split("closest:", 1)[1]


def test_locate_in_an_empty_bucket(scratch_bucket):
    store = BackupStore(scratch_bucket)
    with pytest.raises(BackupNotFoundError, match="no bundle"):
        store.locate("latest")
    with pytest.raises(BackupNotFoundError, match="holds no bundle"):
        store.locate(_key(1).name)


def test_check_names_a_missing_bucket(scratch_bucket):
    from archivist.config import S3Settings

    missing = S3Settings(
        bucket=scratch_bucket.bucket + "-missing",
        access_key_id=scratch_bucket.access_key_id,
        secret_access_key=scratch_bucket.secret_access_key,
        endpoint_url=scratch_bucket.endpoint_url,
        region_name=scratch_bucket.region_name,
    )
    BackupStore(scratch_bucket).check()
    with pytest.raises(ConfigurationError, match="does not exist"):
        BackupStore(missing).check()


def test_bundle_written_to_the_store_verifies(scratch_bucket):
    store, key = BackupStore(scratch_bucket), _key(3)
    staging = LocalStaging()
    try:
        with staging.writer(bundle.postgres_path(key.backup_id)) as out:
            out.write(b"CREATE TABLE t (id int);\n" * 1000)
        artifact = Artifact(bundle.postgres_path(key.backup_id), out.size, out.sha256)
        meta = bundle.build_meta(key, [JobResult("postgres", [artifact], {"rows": 0}, 0.1)], dt.datetime.now(UTC))
        with store.bundle_writer(key) as sink:
            bundle.write_bundle(sink, key, meta, [artifact], staging.open)
    finally:
        staging.cleanup()
    located = store.locate("latest")
    assert located.key == key and located.size == sink.size
    body = store.open_bundle(key)
    try:
        report = bundle.verify(body)
    finally:
        body.close()
    assert report.members[artifact.path] == artifact


def test_a_failed_bundle_write_leaves_no_object(scratch_bucket):
    store, key = BackupStore(scratch_bucket), _key(4)
    with pytest.raises(RuntimeError), store.bundle_writer(key) as sink:
        sink.write(b"\x1f\x8b partial bundle" * 1000)
        raise RuntimeError("job failed half way")
    assert _objects(s3io.client(scratch_bucket), scratch_bucket.bucket) == set()
    with pytest.raises(BackupNotFoundError):
        store.locate("latest")


def test_a_failed_bundle_write_reports_the_writers_error(scratch_bucket):
    store, key = BackupStore(scratch_bucket), _key(4)
    with pytest.raises(RuntimeError, match="job failed half way"), store.bundle_writer(key) as sink:
        sink.write(b"\x1f\x8b partial bundle" * 1000)
        raise RuntimeError("job failed half way")


def test_staging_cleanup_removes_only_its_own_prefix(scratch_bucket):
    store, key, other = BackupStore(scratch_bucket), _key(5), _key(6)
    s3 = s3io.client(scratch_bucket)
    for k in (key, other):
        with store.staging(k).writer("jobs.storage/manifest.ndjson") as out:
            out.write(b"{}\n")
    s3.put_object(Bucket=scratch_bucket.bucket, Key=key.object_key, Body=b"x")
    assert store.staging(key).cleanup() == 1
    assert _objects(s3, scratch_bucket.bucket) == {key.object_key, f"staging/{other.name}/jobs.storage/manifest.ndjson"}
    with pytest.raises(ClientError):
        store.staging(key).open("jobs.storage/manifest.ndjson")


def test_an_object_with_an_impossible_date_does_not_break_rotation(filled):
    store, s3, keys = filled
    s3.put_object(Bucket=store.bucket, Key="bundle-2026-02-30-qQUXdfPnayQ.tgz", Body=b"odd")
    deleted = store.rotate(30)
    assert sorted(b.key for b in deleted) == keys[:10]
    assert "bundle-2026-02-30-qQUXdfPnayQ.tgz" in _objects(s3, store.bucket)


def test_cleanup_aborts_uploads_a_killed_task_left_unfinished(scratch_bucket):
    store, key = BackupStore(scratch_bucket), _key(7)
    s3 = s3io.client(scratch_bucket)
    for object_key in (f"staging/{key.name}/jobs.postgres/postgres-{key.backup_id}.sql", key.object_key):
        upload = s3.create_multipart_upload(Bucket=scratch_bucket.bucket, Key=object_key)
        s3.upload_part(
            Bucket=scratch_bucket.bucket,
            Key=object_key,
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"half an artifact",
        )
    store.staging(key).cleanup()
    store.abort_unfinished_bundle(key)
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket.bucket).get("Uploads")
    assert _objects(s3, scratch_bucket.bucket) == set()


# --- key prefixes and the staging sweep -----------------------------------------------------


def _with_prefix(settings, prefix: str):
    return dataclasses.replace(settings, prefix=prefix)


def test_a_prefixed_store_names_every_object_under_its_prefix(scratch_bucket):
    store, key = BackupStore(_with_prefix(scratch_bucket, "stack-a/")), _key(8)
    s3 = s3io.client(scratch_bucket)
    with store.bundle_writer(key) as out:
        out.write(b"bundle")
    with store.staging(key).writer("jobs.storage/manifest.ndjson") as out:
        out.write(b"{}\n")
    assert _objects(s3, scratch_bucket.bucket) == {
        f"stack-a/{key.object_key}",
        f"stack-a/staging/{key.name}/jobs.storage/manifest.ndjson",
    }
    assert store.open_bundle(key).read() == b"bundle"
    assert store.locate("latest").object_key == f"stack-a/{key.object_key}"
    assert store.staging(key).cleanup() == 1
    store.check()  # its write probe goes under the prefix too, and is deleted
    assert _objects(s3, scratch_bucket.bucket) == {f"stack-a/{key.object_key}"}


def test_a_store_without_prefix_sees_only_the_bucket_root(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    root, nested = _key(1), _key(2)
    s3.put_object(Bucket=scratch_bucket.bucket, Key=root.object_key, Body=b"x")
    s3.put_object(Bucket=scratch_bucket.bucket, Key=f"stack-a/{nested.object_key}", Body=b"x")
    assert [b.key for b in BackupStore(scratch_bucket).list_bundles()] == [root]
    assert [b.key for b in BackupStore(_with_prefix(scratch_bucket, "stack-a/")).list_bundles()] == [nested]


def _stage(store: BackupStore, key: BackupKey) -> None:
    with store.staging(key).writer("jobs.postgres/postgres.sql") as out:
        out.write(b"SELECT 1;\n")


def _older_than(s3, bucket: str, key: str, age: dt.timedelta) -> bool:
    """Whether `key` was last written more than `age` ago, by the listing's Last-Modified as the sweep
    reads it (a HEAD's is cut to whole seconds)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    return next(o for o in listed if o["Key"] == key)["LastModified"] < dt.datetime.now(UTC) - age


def test_sweep_removes_staging_without_a_fresh_lease_and_keeps_the_rest(scratch_bucket):
    store, s3 = BackupStore(scratch_bucket), s3io.client(scratch_bucket)
    dead, alive, other_stack = _key(10), _key(11), _key(12)
    limit = dt.timedelta(seconds=1)
    _stage(store, dead)
    _stage(BackupStore(_with_prefix(scratch_bucket, "stack-b/")), other_stack)
    s3.put_object(Bucket=scratch_bucket.bucket, Key="staging/notes.txt", Body=b"not ours")
    with store.staging(alive).alive(every=0.3):
        _stage(store, alive)
        alive_dump = f"staging/{alive.name}/jobs.postgres/postgres.sql"
        wait_until(
            lambda: _older_than(s3, scratch_bucket.bucket, alive_dump, limit),
            timeout=30,
            what="the running backup's staged file to pass the age limit",
        )  # the dead one's is older
        assert store.sweep_stale_staging(older_than=limit) == 1
    assert _objects(s3, scratch_bucket.bucket) == {
        alive_dump,
        f"staging/{alive.name}/{LEASE}",
        f"stack-b/staging/{other_stack.name}/jobs.postgres/postgres.sql",
        "staging/notes.txt",
    }
    # the lease is no longer refreshed: the backup is gone once it passes the age limit
    wait_until(
        lambda: _older_than(s3, scratch_bucket.bucket, f"staging/{alive.name}/{LEASE}", limit),
        timeout=30,
        what="the lease to pass the age limit",
    )
    assert store.sweep_stale_staging(older_than=limit) == 2
    assert f"staging/{alive.name}/{LEASE}" not in _objects(s3, scratch_bucket.bucket)
