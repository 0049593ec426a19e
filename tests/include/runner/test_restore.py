"""Backup, wipe, restore against the real servers: what comes back must equal what left.

Runs the library the DAGs and the `archivist` command share, on the demo stack
plus an index of more than 10,000 documents and an object above the multipart threshold.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pytest
from elasticsearch import helpers

from archivist.errors import BackupNotFoundError, TargetNotEmptyError, VerificationError
from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.runner import backup, restore
from archivist.sources.base import RestoreOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.postgres import job as pg_job
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import es_snapshot, wipe_bucket, wipe_elasticsearch, wipe_postgres
from demo.fingerprint import stack_snapshot as fingerprint

BIG_INDEX_DOCS = 12_000
BIG_OBJECT_BYTES = 20 * 1024 * 1024


@pytest.fixture
def big_stack(seeded, es_client, storage_settings):
    """The demo stack plus data large enough to page, chunk and go multipart."""
    helpers.bulk(
        es_client,
        (
            {
                "_index": "bulk-events",
                "_id": f"evt-{i}",
                "_routing": f"r{i % 7}",
                "_source": {"n": i, "text": f"event number {i} ünïcödé", "tags": ["a", str(i % 13)]},
            }
            for i in range(BIG_INDEX_DOCS)
        ),
        refresh=True,
        chunk_size=2000,
    )
    s3 = s3io.client(storage_settings)
    s3.upload_fileobj(
        io.BytesIO(os.urandom(BIG_OBJECT_BYTES)),
        storage_settings.bucket,
        "large/blob.bin",
        ExtraArgs={"ContentType": "application/x-archive", "Metadata": {"purpose": "multipart"}},
    )
    yield
    es_client.options(ignore_status=404).indices.delete(index="bulk-events")


def wipe(pg, es, s3):
    wipe_postgres(pg)
    wipe_elasticsearch(es)
    wipe_bucket(s3)


def opener(store: BackupStore, name: str):
    key = BackupKey.parse(name)
    return lambda: store.open_bundle(key)


def restore_all(open_bundle, pg, es, s3, mode="empty"):
    return {
        "postgres": restore.restore_job("postgres", open_bundle, pg, mode),
        "elasticsearch": restore.restore_job("elasticsearch", open_bundle, es, mode),
        "storage": restore.restore_job("storage", open_bundle, s3, mode),
    }


def test_round_trip_restores_everything_exactly(
    big_stack, pg_settings, es_settings, storage_settings, backups_settings
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    assert before[1]["indices"]["bulk-events"]["count"] == BIG_INDEX_DOCS

    made = backup.run_backup()
    store = BackupStore(backups_settings)
    report = restore.verify(opener(store, made["key"]))
    assert report.checksummed and not report.warnings

    wipe(pg_settings, es_settings, storage_settings)
    assert fingerprint(pg_settings, es_settings, storage_settings) != before

    restored = restore_all(opener(store, made["key"]), pg_settings, es_settings, storage_settings)
    assert restore.compare(report.meta["counts"], restored) == []
    after = fingerprint(pg_settings, es_settings, storage_settings)
    assert after[0] == before[0], "pg_dump differs after the round trip"
    assert after[1] == before[1], "Elasticsearch documents, mappings, aliases or templates differ"
    assert after[2] == before[2], "objects, content types or metadata differ"


def test_empty_mode_refuses_and_changes_nothing(seeded, pg_settings, es_settings, storage_settings, backups_settings):
    made = backup.run_backup()
    store = BackupStore(backups_settings)
    before = fingerprint(pg_settings, es_settings, storage_settings)
    open_bundle = opener(store, made["key"])
    with pytest.raises(TargetNotEmptyError, match="already holds 5 table"):
        restore.restore_job("postgres", open_bundle, pg_settings, "empty")
    with pytest.raises(TargetNotEmptyError, match="customers"):
        restore.restore_job("elasticsearch", open_bundle, es_settings, "empty")
    with pytest.raises(TargetNotEmptyError, match=storage_settings.bucket):
        restore.restore_job("storage", open_bundle, storage_settings, "empty")
    assert fingerprint(pg_settings, es_settings, storage_settings) == before

    # replace drops and recreates what the bundle holds, and leaves the rest alone
    es = es_cluster.client(es_settings)
    es.index(index="not-in-bundle", id="1", document={"keep": True}, refresh=True)
    restored = restore_all(open_bundle, pg_settings, es_settings, storage_settings, mode="replace")
    assert restore.compare(restore.verify(open_bundle).meta["counts"], restored) == []
    assert es.count(index="not-in-bundle")["count"] == 1
    es.indices.delete(index="not-in-bundle")
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_jobs_and_indices_restore_only_what_they_name(
    seeded, pg_settings, es_settings, storage_settings, backups_settings, es_client
):
    made = backup.run_backup(jobs=("postgres", "elasticsearch"))
    store = BackupStore(backups_settings)
    open_bundle = opener(store, made["key"])
    assert restore.verify(open_bundle).jobs == ["elasticsearch", "postgres"]
    wipe(pg_settings, es_settings, storage_settings)

    got = restore.restore_job("elasticsearch", open_bundle, es_settings, "empty", RestoreOptions(["prod*"]))
    assert got["indices"] == {"products": 200}
    assert sorted(i for i in es_client.indices.get(index="*") if not i.startswith(".")) == ["products"]
    aliases = es_client.indices.get_alias(index="products")["products"]["aliases"]
    assert "filter" in aliases["catalog"], "the filtered alias lost its filter"
    assert aliases["products-write"].get("is_write_index") is True
    assert not pg_job.user_tables(pg_settings)
    assert not s3io.client(storage_settings).list_objects_v2(Bucket=storage_settings.bucket).get("Contents")


def _upload(store: BackupStore, name: str, data: bytes) -> None:
    store.s3.put_object(Bucket=store.bucket, Key=f"{name}.tgz", Body=data)


def _damaged_copies(original: bytes) -> dict[str, bytes]:
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    return {
        "truncated": original[: len(original) // 2],
        "flipped": bytes(flipped),
        "not-a-tar": b"this is not a bundle at all\n" * 100,
    }


def test_damaged_bundles_fail_verification_before_any_target_is_touched(
    seeded, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    store = BackupStore(backups_settings)
    original = store.open_bundle(BackupKey.parse(made["key"])).read()
    before = fingerprint(pg_settings, es_settings, storage_settings)
    for data in _damaged_copies(original).values():
        name = BackupKey.new().name
        _upload(store, name, data)
        try:
            located = store.locate(name)
            with pytest.raises(VerificationError):
                restore.verify(opener(store, located.key.name))
        finally:
            store.s3.delete_object(Bucket=store.bucket, Key=f"{name}.tgz")
    with pytest.raises(BackupNotFoundError, match="closest"):
        store.locate(made["key"][:-2] + "zz")
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def _seed_format_bundle(key: BackupKey, pg_settings, es_client, storage_settings) -> bytes:
    """A bundle as the original tool describes it: the ndjson files, templates, SQL,
    storage tgz and a meta.json with only the spec's fields. No checksums, no mappings."""
    from archivist.transport.staging import LocalStaging

    staging = LocalStaging()
    try:
        pg = backup.run_job("postgres", key, staging, pg_settings)
        st = backup.run_job("storage", key, staging, storage_settings)
        docs = {}
        for index in es_cluster.list_indices(es_client):
            docs[bundle.elasticsearch_index_path(index, key.backup_id)] = b"".join(
                es_export.document_lines(es_client, index)
            )
        legacy = {n: t for n, t in es_client.indices.get_template().items() if not n.startswith(".")}
        templates = json.dumps(legacy).encode()  # the plain `GET _template` answer
        meta = json.dumps(
            {
                "archivist": {"CI_PROJECT_NAME": "archivist"},
                "stats": {
                    "jobs.elasticsearch": {"time_seconds": 0.04},
                    "jobs.postgres": {"time_seconds": 0.09},
                    "jobs.storage": {"time_seconds": 0.3},
                },
            }
        ).encode()
        files = {**docs, bundle.templates_path(key.backup_id): templates, "meta.json": meta}
        for artifact in pg.artifacts + st.artifacts[:1]:  # the spec has no manifest
            with staging.open(artifact.path) as f:
                files[artifact.path] = f.read()
    finally:
        staging.cleanup()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(files):  # alphabetical, as a plain `tar czf` of the folder gives
            info = tarfile.TarInfo(f"{key.name}/{path}")
            info.size = len(files[path])
            tar.addfile(info, io.BytesIO(files[path]))
    return out.getvalue()


def test_bundle_of_the_original_tool_restores(
    seeded, pg_settings, es_settings, storage_settings, backups_settings, es_client
):
    key = BackupKey.new()
    data = _seed_format_bundle(key, pg_settings, es_client, storage_settings)
    store = BackupStore(backups_settings)
    _upload(store, key.name, data)
    try:
        before_docs = {i: v["count"] for i, v in es_snapshot(es_settings)["indices"].items()}
        wipe(pg_settings, es_settings, storage_settings)
        open_bundle = opener(store, key.name)
        with pytest.raises(VerificationError, match="has no checksums"):
            restore.verify(open_bundle)  # unverifiable: only on request
        report = restore.verify(open_bundle, allow_unchecked=True)
        assert not report.checksummed and "cannot be verified" in report.warnings[0]
        restored = restore_all(open_bundle, pg_settings, es_settings, storage_settings)
        assert restored["elasticsearch"]["indices"] == before_docs
        assert restored["postgres"]["tables"] == 5
        assert restored["storage"]["objects"] == seeded["storage"]["objects"]
        assert "archivist-demo-legacy" in es_client.indices.get_template(name="archivist-demo-legacy")
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=key.object_key)
