"""Drills in one process against the real servers: the checks see what differs in the scratch
targets, a restore that fails is a `failed` verdict, and either way nothing is left behind."""

from __future__ import annotations

import dataclasses
import secrets

from archivist.drill import cleanup, run
from archivist.drill.digest import LineDigest
from archivist.drill.scratch import ScratchTargets
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.base import DumpOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from tests.include.drill.live_state import live_state, scratch_left
from tests.include.sources.elasticsearch import servers as es_servers
from tests.security.forge import forge, members, plant


def test_the_checks_see_a_changed_row_a_missing_document_and_a_changed_object(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    store, scratch, settings = BackupStore(backups_settings), ScratchTargets.new(), run.live_settings()
    try:
        restored = run.restore(store, made["key"], scratch, settings)
        problems, checked = run.check(store, restored, scratch, settings)
        assert problems == [] and checked["rows"] == sum(made["counts"]["jobs.postgres"]["rows"].values())

        with postgres.connect(dataclasses.replace(pg_settings, dbname=scratch.database)) as conn:
            conn.execute(
                "UPDATE public.countries SET name = name || '.' WHERE code = (SELECT min(code) FROM public.countries)"
            )
        es = es_cluster.client(es_settings)
        hit = es.search(index=scratch.index_prefix + "products", size=1)["hits"]["hits"][0]
        es.delete(index=scratch.index_prefix + "products", id=hit["_id"], refresh=True)
        s3 = s3io.client(storage_settings)
        listed = s3.list_objects_v2(Bucket=storage_settings.bucket, Prefix=scratch.storage_prefix)["Contents"]
        changed = listed[0]["Key"]
        s3.put_object(Bucket=storage_settings.bucket, Key=changed, Body=b"not what was backed up")
        problems, _ = run.check(store, restored, scratch, settings)
    finally:
        cleanup.remove(scratch, settings)
    docs = made["counts"]["jobs.elasticsearch"]["indices"]["products"]
    assert any(
        p.startswith("table public.countries: the rows restored are not the dump's (checksum ") for p in problems
    )
    assert f"index products: {docs - 1} documents restored, meta.json says {docs}" in problems
    assert f"index products: {docs - 1} documents restored, the bundle's ndjson holds {docs}" in problems
    key = changed.removeprefix(scratch.storage_prefix)
    assert any(p.startswith(f"object {key!r}: sha256 ") and "(22 bytes) restored" in p for p in problems), problems
    assert scratch_left(pg_settings, es_settings, storage_settings) == []


def test_a_restore_that_fails_is_a_failed_verdict_and_its_scratch_is_removed(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup(jobs=("postgres",))
    store = BackupStore(backups_settings)
    files = members(store.open_bundle(BackupKey.parse(made["key"])).read())
    dump = next(p for p in files if p.startswith("jobs.postgres/"))
    broken = files[dump].replace(b"\nCOPY public.countries ", b"\nSELECT no_such_function();\nCOPY public.countries ")
    key, data = forge({"jobs.postgres/postgres-{id}.sql": broken}, counts={"postgres": {"tables": 5}})
    plant(store, key, data)
    try:
        before = live_state(pg_settings, es_settings, storage_settings, backups_settings)
        verdict = run.run_drill(store, key.name)
        assert verdict.result == "failed", verdict
        assert "no_such_function" in verdict.differences[0]
        assert verdict.summary().startswith("failed on ")
        assert scratch_left(pg_settings, es_settings, storage_settings) == []
        assert live_state(pg_settings, es_settings, storage_settings, backups_settings) == before
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(key.object_key))


def test_a_bundles_data_streams_are_noted_not_compared():
    """Scratch names have no template to make a data stream: the drill leaves them out and says so."""
    es_counts = {"indices": {"logs-app": 3, "products": 2}, "documents": 5, "data_streams": ["logs-app"]}
    restored = {"jobs": ["elasticsearch"], "counts": {"jobs.elasticsearch": es_counts}}
    assert run.notes(restored) == ["data stream(s) logs-app not drilled: no template makes one under scratch names"]
    read = {"logs-app": LineDigest(), "products": LineDigest()}
    assert run._without_data_streams(es_counts, read)["indices"] == {"products": 2}
    assert list(read) == ["products"]
    assert run.notes({"jobs": ["elasticsearch"], "counts": {"jobs.elasticsearch": {"indices": {}}}}) == []
    assert ScratchTargets.new().restore_options([]).skip_data_streams


def test_a_drill_of_a_bundle_with_a_data_stream_matches_what_it_can_and_notes_the_rest(
    es_client, es_settings, backups_settings
):
    prefix = f"drl{secrets.token_hex(4)}"
    name = es_servers.seed_stream(es_client, prefix, hidden=not es_servers.deletes_streams(es_client))
    es_client.index(index=f"{prefix}-plain", id="1", document={"n": 1}, refresh=True)
    try:
        made = backup.run_backup(jobs=("elasticsearch",), options=DumpOptions(f"{name},{prefix}-plain"))
        verdict = run.run_drill(BackupStore(backups_settings), made["key"])
    finally:
        es_client.options(ignore_status=404).indices.delete(index=f"{prefix}-plain")
        es_servers.drop_streams(es_client, prefix)
    assert verdict.matched, verdict.differences
    assert (verdict.checked["indices"], verdict.checked["documents"]) == (1, 1)
    assert len(verdict.notes) == 1 and verdict.notes[0].startswith(f"data stream(s) {name} not drilled")
