"""archivist_restore run for real with `airflow dags test`: round trip, refusals and damage."""

from __future__ import annotations

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import stack_snapshot as fingerprint
from demo.fingerprint import wipe_bucket, wipe_elasticsearch, wipe_postgres
from tests.support import dags_test


def test_restore_dag_round_trip(seeded, pg_settings, es_settings, storage_settings):
    made = backup.run_backup()
    before = fingerprint(pg_settings, es_settings, storage_settings)
    wipe_postgres(pg_settings)
    wipe_elasticsearch(es_settings)
    wipe_bucket(storage_settings)

    run = dags_test("archivist_restore", {"key": made["key"] + ".tgz"})
    assert run.returncode == 0, run.stdout[-4000:]
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_restore_dag_refuses_non_empty_targets_and_changes_nothing(seeded, pg_settings, es_settings, storage_settings):
    made = backup.run_backup()
    before = fingerprint(pg_settings, es_settings, storage_settings)
    run = dags_test("archivist_restore", {"key": made["key"]})
    assert run.returncode != 0
    assert "mode 'replace'" in run.stdout + run.stderr
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_restore_dag_unknown_key_and_damaged_bundle_fail_before_writing(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    store = BackupStore(backups_settings)
    wipe_postgres(pg_settings)  # an empty target would accept a restore, so a write would show
    before = fingerprint(pg_settings, es_settings, storage_settings)

    run = dags_test("archivist_restore", {"key": made["key"][:-3] + "xyz", "jobs": ["postgres"]})
    assert run.returncode != 0
    assert f"closest: {made['key']}" in run.stdout + run.stderr

    damaged = BackupKey.new()
    data = bytearray(store.open_bundle(BackupKey.parse(made["key"])).read())
    data[len(data) // 2] ^= 0x01
    store.s3.put_object(Bucket=store.bucket, Key=damaged.object_key, Body=bytes(data))
    try:
        run = dags_test("archivist_restore", {"key": damaged.name, "jobs": ["postgres"], "mode": "replace"})
        output = run.stdout + run.stderr
        assert run.returncode != 0
        assert "VerificationError" in output
        assert "starting task_id=restore_postgres" not in output
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=damaged.object_key)
    assert fingerprint(pg_settings, es_settings, storage_settings) == before
