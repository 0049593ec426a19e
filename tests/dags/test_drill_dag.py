"""archivist_drill run for real with `airflow dags test`: a bundle that restores and matches, and
one whose meta.json counts a row and a document its data lacks. Either way the scratch targets
are gone afterwards and the live stack is exactly as it was."""

from __future__ import annotations

from archivist.drill import record
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from tests.include.drill.live_state import live_state, scratch_left
from tests.include.drill.short_bundle import one_row_and_one_document_fewer
from tests.security.forge import plant
from tests.support import dags_test


def test_a_drill_of_a_good_bundle_matches_and_leaves_the_live_stack_alone(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    store = BackupStore(backups_settings)
    before = live_state(pg_settings, es_settings, storage_settings, backups_settings)

    run = dags_test("archivist_drill", {"key": made["key"]})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "restored and matched on" in output

    verdict = record.read(store, made["key"])
    assert isinstance(verdict, record.Verdict) and verdict.matched, verdict
    counts = made["counts"]
    assert verdict.checked == {
        "tables": counts["jobs.postgres"]["tables"],
        "rows": sum(counts["jobs.postgres"]["rows"].values()),
        "indices": len(counts["jobs.elasticsearch"]["indices"]),
        "documents": counts["jobs.elasticsearch"]["documents"],
        "objects": counts["jobs.storage"]["objects"],
        "bytes": counts["jobs.storage"]["bytes"],
    }
    assert verdict.run.startswith("archivist_drill/")
    assert scratch_left(pg_settings, es_settings, storage_settings) == []
    assert live_state(pg_settings, es_settings, storage_settings, backups_settings) == before


def test_a_drill_fails_naming_the_table_and_index_whose_data_is_short_of_meta_json(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    store = BackupStore(backups_settings)
    good = store.open_bundle(BackupKey.parse(made["key"])).read()
    key, short = one_row_and_one_document_fewer(good, "public.audit_log", "products")
    plant(store, key, short)
    try:
        before = live_state(pg_settings, es_settings, storage_settings, backups_settings)
        run = dags_test("archivist_drill", {"key": key.name})
        output = run.stdout + run.stderr
        assert run.returncode != 0, output[-6000:]
        rows = made["counts"]["jobs.postgres"]["rows"]["public.audit_log"]
        docs = made["counts"]["jobs.elasticsearch"]["indices"]["products"]
        table_line = f"table public.audit_log: {rows - 1} rows restored, meta.json says {rows}"
        index_line = f"index products: {docs - 1} documents restored, meta.json says {docs}"
        assert table_line in output and index_line in output

        verdict = record.read(store, key.name)
        assert isinstance(verdict, record.Verdict) and verdict.result == "differed", verdict
        assert table_line in verdict.differences and index_line in verdict.differences
        assert verdict.summary().startswith(f"differed on {verdict.drilled_at.date()}: ")
        assert scratch_left(pg_settings, es_settings, storage_settings) == []
        assert live_state(pg_settings, es_settings, storage_settings, backups_settings) == before
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(key.object_key))
        store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, key.name))
