"""A restore reads only the bytes `verify` checked: nothing smuggled after the tar's end, nothing
swapped in after verify, and no bundle stripped of its checksums without an explicit choice."""

from __future__ import annotations

import pytest

from archivist.errors import VerificationError
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import restore
from demo.fingerprint import pg_dump_text, wipe_postgres
from tests.security.forge import archivist, forge, forge_appended, members, plant

DUMP_PATH = "jobs.postgres/postgres-{id}.sql"
HONEST = b"CREATE TABLE public.honest (id integer);\n"
EVIL = b"CREATE TABLE public.smuggled (id integer);\n"


@pytest.fixture
def empty_db(pg_settings):
    wipe_postgres(pg_settings)
    return pg_dump_text(pg_settings)


@pytest.fixture
def planted(store):
    """Puts bundles in the backup bucket; removes them after the test."""
    keys: list[str] = []

    def put(key: BackupKey, data: bytes) -> BackupKey:
        keys.append(plant(store, key, data))
        return key

    yield put
    for key in keys:
        store.s3.delete_object(Bucket=store.bucket, Key=key)


def test_bytes_after_the_tar_with_an_index_pointing_at_them_are_refused(
    store, planted, empty_db, pg_settings, tmp_path
):
    key, data = forge_appended({DUMP_PATH: HONEST}, {DUMP_PATH: EVIL})
    assert members(data)[DUMP_PATH.replace("{id}", key.backup_id)] == HONEST  # what tar sees
    local = tmp_path / key.object_key
    local.write_bytes(data)
    planted(key, data)
    for run in (
        archivist("verify", str(local)),
        archivist("simple-restore", str(local), "--jobs", "postgres"),
        archivist("restore", key.name, "--jobs", "postgres"),
    ):
        assert run.returncode == 4, run.stderr
        assert "data after the tar's end" in run.stderr, run.stderr
    assert pg_dump_text(pg_settings) == empty_db


def test_an_index_leading_to_other_bytes_fails_the_job_that_reads_them(empty_db, pg_settings, tmp_path):
    """Even without verify in front (a job run on its own), what a job reads must hash to meta.json's
    sha256, and psql is stopped before it commits."""
    key, data = forge_appended({DUMP_PATH: HONEST}, {DUMP_PATH: EVIL})
    local = tmp_path / key.object_key
    local.write_bytes(data)
    with pytest.raises(VerificationError, match="does not match meta.json"):
        restore.restore_job("postgres", BundleSource.file(str(local)), pg_settings, "empty")
    assert pg_dump_text(pg_settings) == empty_db


@pytest.mark.parametrize("pinned_by", ["same source (archivist restore)", "etag from verify (the DAG's tasks)"])
def test_a_bundle_swapped_after_verify_is_not_restored(pinned_by, store, planted, empty_db, pg_settings):
    key, honest = forge({DUMP_PATH: HONEST}, counts={"postgres": {"tables": 1}})
    _, evil = forge({DUMP_PATH: EVIL}, key=key, counts={"postgres": {"tables": 1}})
    planted(key, honest)
    source = store.bundle_source(key)
    summary = restore.summary(restore.verify(source), key.name, source.pin)
    assert summary["etag"]
    planted(key, evil)  # the attacker replaces the object between verify and the restore task
    if pinned_by.startswith("etag"):
        source = store.bundle_source(key, etag=summary["etag"])
    with pytest.raises(VerificationError, match="was replaced after it was verified"):
        restore.restore_job("postgres", source, pg_settings, "empty")
    assert pg_dump_text(pg_settings) == empty_db


def _strip(meta: dict, keep_version: bool) -> None:
    meta.pop("artifacts")
    if not keep_version:
        for field in [k for k in meta if k not in ("archivist", "stats")]:
            meta.pop(field)


def test_checksums_stripped_from_an_archivist_bundle_are_refused(store, planted, empty_db, pg_settings):
    key, data = forge({DUMP_PATH: EVIL}, change_meta=lambda m: _strip(m, keep_version=True))
    planted(key, data)
    for args in ((), ("--allow-unchecked",)):
        run = archivist("restore", key.name, "--jobs", "postgres", *args)
        assert run.returncode == 4, run.stderr
        assert "claims archivist's format_version 1 but lists no checksums" in run.stderr, run.stderr
    assert pg_dump_text(pg_settings) == empty_db


def test_a_bundle_without_checksums_restores_only_when_asked(store, planted, empty_db, pg_settings):
    key, data = forge({DUMP_PATH: HONEST}, change_meta=lambda m: _strip(m, keep_version=False))
    planted(key, data)
    refused = archivist("restore", key.name, "--jobs", "postgres")
    assert refused.returncode == 4, refused.stderr
    assert "has no checksums" in refused.stderr and "--allow-unchecked" in refused.stderr, refused.stderr
    assert pg_dump_text(pg_settings) == empty_db
    allowed = archivist("restore", key.name, "--jobs", "postgres", "--allow-unchecked")
    assert allowed.returncode == 0, allowed.stderr
    assert "no checksums" in allowed.stdout + allowed.stderr
    assert "CREATE TABLE public.honest" in pg_dump_text(pg_settings)
