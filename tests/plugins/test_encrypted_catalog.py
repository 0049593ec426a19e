"""The Backups page's catalog of encrypted bundles: marked as such, their meta.json read with the
identity, and without it an error that says where it goes, read again once it is there."""

from __future__ import annotations

import pyrage
from pyrage import x25519

import tests.plugins.backups_server  # noqa: F401  (puts plugins/ on sys.path)
from archivist.format.bundle import BackupKey
from archivist.transport.backup_bucket import BackupStore
from archivist_backups import catalog  # noqa: E402


def test_catalog_marks_encrypted_bundles_and_reads_them_once_the_identity_is_set(
    demo_bundle, backups_settings, scratch_bucket, monkeypatch
):
    identity = x25519.Identity.generate()
    plain = BackupStore(backups_settings).open_bundle(BackupKey.parse(demo_bundle["key"])).read()
    store = BackupStore(scratch_bucket)
    sealed = BackupKey.new()
    store.s3.put_object(
        Bucket=store.bucket, Key=sealed.object_key_for(True), Body=pyrage.encrypt(plain, [identity.to_public()])
    )
    monkeypatch.setenv("ENCRYPTION_RECIPIENTS", str(identity.to_public()))
    cat = catalog.Catalog(store)

    (row,) = cat.list()
    assert row["key"] == sealed.name and row["encrypted"] is True and row["object"].endswith(".tgz.age")
    assert row["format_version"] is None and "holds no identity" in row["error"]

    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(identity))
    (row,) = cat.list()
    assert row["error"] is None and row["format_version"] == 1 and row["jobs"]
