"""The sweep of stale staging runs at the start of every backup; it must never take the staging
of a backup that is still running, even one that has run far longer than the sweep's age limit.
A real storage job (`backup.run_job`, as the DAG's task runs it) streams a bucket of objects to
staging while another process's sweep runs again and again with an age limit shorter than the
job: the job's uploads and artifacts survive and it succeeds, because its lease stays fresh.
A dead backup's staging of the same age is swept by the same sweeps."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.storage import job as storage
from archivist.transport import staging
from archivist.transport.backup_bucket import BackupStore
from tests.support import wait_until

AGE_LIMIT = dt.timedelta(seconds=0.5)
LEASE_EVERY = 0.1


def _older_than_the_limit(store: BackupStore, key: BackupKey) -> int:
    """How many of the job's staged objects and uploads (its lease aside) the age limit alone
    would sweep now."""
    cutoff = dt.datetime.now(dt.UTC) - AGE_LIMIT
    prefix = f"staging/{key.name}/"
    uploads = [
        u
        for u in store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        if u["Key"].startswith(prefix) and u["Initiated"] <= cutoff
    ]
    objects = [
        o
        for o in store.s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", [])
        if not o["Key"].endswith(staging.LEASE) and o["LastModified"] <= cutoff
    ]
    return len(uploads) + len(objects)


def _last_written(store: BackupStore, key: BackupKey) -> dt.datetime:
    """When the backup's staging (its lease included) was last written, as the sweep reads it."""
    listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"staging/{key.name}/")["Contents"]
    return max(o["LastModified"] for o in listed)


def test_a_running_backups_staging_survives_the_sweep(make_bucket, monkeypatch):
    backups, app = make_bucket(), make_bucket()
    store = BackupStore(backups)
    for n in range(24):  # incompressible, so the job runs seconds past its first upload
        store.s3.put_object(Bucket=app.bucket, Key=f"blob/{n:03d}", Body=os.urandom(4 * 1024 * 1024))
    dead = BackupKey.new()
    with store.staging(dead).writer("jobs.postgres/postgres.sql") as out:
        out.write(b"SELECT 1;\n")  # a backup that died without its lease: sweepable once old enough
    monkeypatch.setattr(staging, "LEASE_EVERY", LEASE_EVERY)
    fetch, swept_past_the_limit = storage._get, threading.Event()

    def held_fetch(s3, gets, bucket, object_key, whole):  # holds the job mid-upload until a sweep met it old
        if object_key == "blob/012":
            swept_past_the_limit.wait(timeout=60)
        return fetch(s3, gets, bucket, object_key, whole)

    monkeypatch.setattr(storage, "_get", held_fetch)

    key, outcome = BackupKey.new(), {}
    started = time.monotonic()

    def job() -> None:
        try:
            outcome["result"] = backup.run_job("storage", key, store.staging(key), app)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=job)
    worker.start()
    sweeper = BackupStore(backups)  # as another backup's check would, with its own client
    swept = exposed = 0
    while worker.is_alive():
        time.sleep(0.2)
        old = _older_than_the_limit(store, key)
        swept += sweeper.sweep_stale_staging(older_than=AGE_LIMIT)
        if old:  # a sweep ran with the job's staging older than the limit: let the job go on
            exposed += old
            swept_past_the_limit.set()
    worker.join()

    assert "error" not in outcome, outcome.get("error")
    assert exposed, "no sweep met the job's uploads older than the age limit: the test showed nothing"
    staged = {
        o["Key"]: o["Size"]
        for o in store.s3.list_objects_v2(Bucket=backups.bucket, Prefix=f"staging/{key.name}/")["Contents"]
    }
    for artifact in outcome["result"].artifacts:
        assert staged[f"staging/{key.name}/{artifact.path}"] == artifact.size
    assert swept == 1, "the dead backup's staging should have gone, and nothing else"
    assert not store.s3.list_objects_v2(Bucket=backups.bucket, Prefix=f"staging/{dead.name}/").get("Contents")

    wait_until(
        lambda: _last_written(store, key) < dt.datetime.now(dt.UTC) - AGE_LIMIT,
        timeout=30,
        what="the ended job's staging to pass the age limit",
    )  # its lease is no longer refreshed
    assert sweeper.sweep_stale_staging(older_than=AGE_LIMIT) == len(staged)
