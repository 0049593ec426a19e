"""Each server killed in the middle of a backup and of a restore.

A backup that loses a server fails with a message naming it, leaves no bundle under
a final name and no earlier bundle changed; staging is cleaned at once, or by the next
run's sweep when the bucket itself was down. A restore that loses a server fails
naming it; PostgreSQL rolls back, and a rerun in `replace` mode completes.
"""

from __future__ import annotations

import datetime as dt

import pytest

from archivist.errors import ArchivistError
from archivist.format.bundle import BackupKey
from archivist.runner import backup, restore
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import wipe_bucket, wipe_postgres
from tests.faults.faults_support import HEAVY_INDEX, Background, kill_server, process_running, start_servers
from tests.support import wait_until


def bundles(store: BackupStore) -> dict:
    return {b.key.name: (b.size, b.last_modified) for b in store.list_bundles()}


def leftovers(store: BackupStore) -> tuple[list, list]:
    staged = [o["Key"] for o in store.s3.list_objects_v2(Bucket=store.bucket, Prefix="staging/").get("Contents", [])]
    uploads = [u["Key"] for u in store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
    return staged, uploads


def staged_under(store: BackupStore, fragment: str) -> bool:
    return any(
        fragment in o["Key"]
        for o in store.s3.list_objects_v2(Bucket=store.bucket, Prefix="staging/").get("Contents", [])
    )


def copying_into(pg_settings, table: str) -> bool:
    """Whether psql is running the COPY that loads `table`."""
    with postgres.connect(pg_settings) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql' AND query LIKE %s",
                (f"COPY {table} %",),
            ).fetchone()[0]
        )


def documents_indexed(es_client, index: str) -> int:
    """How many documents the index has taken in, refreshed or not (none while its shard starts)."""
    primaries = es_client.indices.stats(index=index, metric="indexing")["_all"]["primaries"]
    return primaries.get("indexing", {}).get("index_total", 0)


def writing_into(settings) -> bool:
    """Whether the bucket holds an object or an unfinished upload."""
    s3 = s3io.client(settings)
    return bool(
        s3.list_objects_v2(Bucket=settings.bucket, MaxKeys=1).get("Contents")
        or s3.list_multipart_uploads(Bucket=settings.bucket).get("Uploads")
    )


@pytest.fixture
def store(backups_settings):
    store = BackupStore(backups_settings)
    if not store.list_bundles():
        backup.run_backup(jobs=("postgres",))  # an earlier good bundle that must survive
    return store


def test_postgres_killed_during_backup(heavy_table, store, restart_after, pg_settings):
    before = bundles(store)
    job = Background(lambda: backup.run_backup(jobs=("postgres",)))
    wait_until(lambda: process_running("pg_dump"), what="pg_dump to start")
    kill_server("postgres")  # at once: on a fast machine the dump takes only a few seconds
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    # pg_dump's own error, or our connection's when the kill lands on it first: both name the database
    assert f"database 'archivist_demo' at 127.0.0.1:{pg_settings.port}" in str(job.error)
    start_servers()
    assert bundles(store) == before
    assert leftovers(store) == ([], [])


def test_elasticsearch_killed_during_backup(heavy_index, store, restart_after, es_settings):
    before = bundles(store)
    job = Background(lambda: backup.run_backup(jobs=("elasticsearch",), options=DumpOptions("heavy*")))
    wait_until(lambda: staged_under(store, "/jobs.elasticsearch/indices-"), what="the export to start")
    kill_server("elasticsearch")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert f"Elasticsearch at {es_settings.url}" in str(job.error)
    start_servers()
    assert bundles(store) == before
    assert leftovers(store) == ([], [])


def test_s3_server_killed_during_backup(heavy_objects, store, restart_after):
    before = bundles(store)
    job = Background(lambda: backup.run_backup(jobs=("storage",)))
    wait_until(lambda: bool(leftovers(store)[1]), what="a multipart upload to start")
    kill_server("minio")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert "storage" in str(job.error)
    start_servers()
    assert bundles(store) == before, "a bundle appeared, changed or vanished"
    # The bucket was down, so the failed run could not clean up; the next run's sweep does. Nor
    # could it free its lock, which would hold the next backups off for its lease: cleared here.
    store.sweep_stale_staging(older_than=dt.timedelta(0))
    store.lock().clear()
    assert leftovers(store) == ([], [])


@pytest.fixture
def heavy_bundle(heavy_table, heavy_index, heavy_objects, store):
    made = backup.run_backup()
    key = BackupKey.parse(made["key"])
    return lambda: store.open_bundle(key)


def test_postgres_killed_during_restore_rolls_back(heavy_bundle, pg_settings, restart_after):
    wipe_postgres(pg_settings)
    one_transaction = RestoreOptions(postgres_jobs=1)  # the parallel path: test_faults_parallel_restore.py
    job = Background(lambda: restore.restore_job("postgres", heavy_bundle, pg_settings, "empty", one_transaction))
    wait_until(lambda: copying_into(pg_settings, "public.heavy"), what="psql to load the heavy table")
    kill_server("postgres")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert "psql restore into database 'archivist_demo'" in str(job.error)
    start_servers()
    assert postgres.user_tables(pg_settings) == [], "a failed restore left part of the dump behind"


def test_elasticsearch_killed_during_restore_then_replace_completes(
    heavy_bundle, es_settings, es_client, restart_after
):
    es_client.indices.delete(index=HEAVY_INDEX)
    job = Background(
        lambda: restore.restore_job("elasticsearch", heavy_bundle, es_settings, "replace", RestoreOptions(["heavy*"]))
    )
    wait_until(
        lambda: es_client.options(ignore_status=404).indices.exists(index=HEAVY_INDEX), what="the index to be created"
    )
    wait_until(lambda: documents_indexed(es_client, HEAVY_INDEX) > 0, what="the bulk load to start")
    kill_server("elasticsearch")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert f"Elasticsearch at {es_settings.url}" in str(job.error)
    start_servers()
    done = restore.restore_job("elasticsearch", heavy_bundle, es_settings, "replace", RestoreOptions(["heavy*"]))
    assert done["indices"] == {HEAVY_INDEX: 80_000}


def test_s3_server_killed_during_restore_then_replace_completes(heavy_bundle, storage_settings, restart_after):
    wipe_bucket(storage_settings)
    job = Background(lambda: restore.restore_job("storage", heavy_bundle, storage_settings, "empty"))
    wait_until(lambda: writing_into(storage_settings), what="the restore to write into the bucket")
    kill_server("minio")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert "S3" in str(job.error) or "bucket" in str(job.error)
    start_servers()
    done = restore.restore_job("storage", heavy_bundle, storage_settings, "replace")
    assert done["objects"] >= 24
