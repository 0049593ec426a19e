"""Backups encrypted with age, against the real servers: a round trip with the identity, a bundle
nobody reads without it, and a wrong identity refused before any target is written."""

from __future__ import annotations

import gzip
import subprocess
import tarfile

import pytest
from pyrage import x25519

from archivist.errors import VerificationError
from archivist.runner import backup, restore
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import stack_snapshot as fingerprint
from demo.fingerprint import wipe_bucket, wipe_elasticsearch, wipe_postgres


@pytest.fixture
def keys(monkeypatch) -> tuple[x25519.Identity, x25519.Identity]:
    """Two identities; backups encrypt to both public keys, and no identity is set yet."""
    made = (x25519.Identity.generate(), x25519.Identity.generate())
    monkeypatch.setenv("ENCRYPTION_RECIPIENTS", " ".join(str(i.to_public()) for i in made))
    return made


def _locate(backups_settings, key: str):
    store = BackupStore(backups_settings)
    found = store.locate(key)
    return store, found, store.bundle_source(found.key, encrypted=found.encrypted)


def test_encrypted_backup_restores_with_either_identity(
    seeded, keys, monkeypatch, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    assert made["encrypted"] and made["object"].endswith(f"{made['key']}.tgz.age")
    before = fingerprint(pg_settings, es_settings, storage_settings)
    wipe_postgres(pg_settings)
    wipe_elasticsearch(es_settings)
    wipe_bucket(storage_settings)

    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(keys[1]))
    _, found, source = _locate(backups_settings, made["key"])
    result = restore.run_restore(source, found.key.name)
    assert result["problems"] == [] and result["format_version"] == 4
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_encrypted_bundle_is_unreadable_without_the_identity(seeded, keys, tmp_path, backups_settings):
    made = backup.run_backup()
    store, found, source = _locate(backups_settings, made["key"])
    downloaded = tmp_path / found.object_key
    store.s3.download_file(store.bucket, found.object_key, str(downloaded))

    listing = subprocess.run(["tar", "-tzf", str(downloaded)], capture_output=True, text=True, timeout=60)
    assert listing.returncode != 0 and "gzip" in listing.stderr.lower(), listing.stderr
    with pytest.raises((tarfile.TarError, gzip.BadGzipFile)):
        tarfile.open(downloaded, "r:gz").getnames()
    ciphertext = downloaded.read_bytes()
    assert b"CREATE TABLE" not in ciphertext and b"meta.json" not in ciphertext and b"jobs.postgres" not in ciphertext

    with pytest.raises(VerificationError) as missing:
        restore.verify(source)
    assert "is encrypted with age" in str(missing.value)
    assert "ENCRYPTION_IDENTITY_FILE" in str(missing.value) and "nothing was read or written" in str(missing.value)
    assert missing.value.exit_code == VerificationError.exit_code == 4


def test_a_wrong_identity_is_refused_before_anything_is_written(
    seeded, keys, monkeypatch, pg_settings, es_settings, storage_settings, backups_settings
):
    made = backup.run_backup()
    wipe_postgres(pg_settings)  # an empty target would take a restore, so any write would show
    before = fingerprint(pg_settings, es_settings, storage_settings)
    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(x25519.Identity.generate()))
    _, found, source = _locate(backups_settings, made["key"])
    with pytest.raises(VerificationError, match="encrypted to other keys than the identity") as wrong:
        restore.run_restore(source, found.key.name, mode="replace")
    assert wrong.value.exit_code == 4
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_plain_bundles_are_still_read_when_encryption_is_on(
    seeded, keys, monkeypatch, pg_settings, es_settings, storage_settings, backups_settings
):
    monkeypatch.delenv("ENCRYPTION_RECIPIENTS")
    plain = backup.run_backup()
    assert not plain["encrypted"] and plain["object"].endswith(".tgz")
    monkeypatch.setenv("ENCRYPTION_RECIPIENTS", str(keys[0].to_public()))
    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(keys[0]))
    _, found, source = _locate(backups_settings, plain["key"])
    assert not found.encrypted
    report = restore.verify(source)
    assert report.meta["format_version"] in (1, 2) and "encryption" not in report.meta
