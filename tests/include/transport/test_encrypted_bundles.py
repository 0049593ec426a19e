"""Encrypted bundles in the real backup bucket: their names, what can be listed without the
identity, rotation among plain bundles, and meta.json read with and without the identity."""

from __future__ import annotations

import datetime as dt
from datetime import UTC

import pytest
from pyrage import x25519

from archivist.errors import VerificationError
from archivist.format import bundle
from archivist.format.artifact import Artifact
from archivist.format.bundle import BackupKey, JobResult
from archivist.format.encryption import EncryptingWriter
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.staging import LocalStaging


def _key(day: int) -> BackupKey:
    return BackupKey(dt.date(2026, 1, 1) + dt.timedelta(days=day), f"k{day:010d}")


@pytest.fixture
def identity(monkeypatch) -> x25519.Identity:
    """An identity whose public key the encryption variables name, the identity itself set too."""
    made = x25519.Identity.generate()
    monkeypatch.setenv("ENCRYPTION_RECIPIENTS", str(made.to_public()))
    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(made))
    return made


def _write(store: BackupStore, key: BackupKey, recipient: x25519.Recipient | None) -> dict:
    staging = LocalStaging()
    try:
        with staging.writer(bundle.postgres_path(key.backup_id)) as out:
            out.write(b"INSERT INTO customers VALUES ('a secret row');\n" * 2000)
        artifact = Artifact(bundle.postgres_path(key.backup_id), out.size, out.sha256)
        meta = bundle.build_meta(
            key,
            [JobResult("postgres", [artifact], {"rows": 2000}, 0.1)],
            dt.datetime.now(UTC),
            encrypted=bool(recipient),
        )
        with store.bundle_writer(key, encrypted=bool(recipient)) as sink:
            if recipient is None:
                bundle.write_bundle(sink, key, meta, [artifact], staging.open)
            else:
                with EncryptingWriter(sink, [recipient]) as sealed:
                    bundle.write_bundle(sealed, key, meta, [artifact], staging.open)
    finally:
        staging.cleanup()
    return meta


def test_an_encrypted_bundle_is_named_and_marked_as_such_without_its_identity(scratch_bucket, identity):
    store, key = BackupStore(scratch_bucket), _key(1)
    _write(store, key, identity.to_public())
    head = store.s3.head_object(Bucket=store.bucket, Key=f"{key.name}.tgz.age")
    assert head["Metadata"] == {
        "archivist-encryption": "age",
        "archivist-format-version": str(bundle.ENCRYPTED_VERSION),
    }
    body = store.s3.get_object(Bucket=store.bucket, Key=f"{key.name}.tgz.age")["Body"].read()
    assert body.startswith(b"age-encryption.org/v1\n") and b"secret row" not in body
    located = store.locate(key.name)
    assert located.encrypted and located.object_key == f"{key.name}.tgz.age"
    assert store.locate(f"{key.name}.tgz.age") == located
    assert located.as_dict()["encrypted"] is True


def test_meta_json_of_an_encrypted_bundle_needs_the_identity(scratch_bucket, identity, monkeypatch):
    store, key = BackupStore(scratch_bucket), _key(2)
    meta = _write(store, key, identity.to_public())
    stored = store.locate("latest")
    read = store.read_meta(stored)
    assert read == meta and read["format_version"] == 4 and read["encryption"] == "age"
    monkeypatch.delenv("ENCRYPTION_IDENTITY")
    with pytest.raises(VerificationError, match=r"encrypted with age.*holds no identity.*ENCRYPTION_IDENTITY_FILE"):
        store.read_meta(stored)
    monkeypatch.setenv("ENCRYPTION_IDENTITY", str(x25519.Identity.generate()))
    with pytest.raises(VerificationError, match="encrypted to other keys than the identity in the variables"):
        store.read_meta(stored)


def test_listing_and_rotation_count_encrypted_and_plain_bundles_alike(scratch_bucket, identity):
    store = BackupStore(scratch_bucket)
    s3 = s3io.client(scratch_bucket)
    keys = [_key(d) for d in range(10)]
    for day, key in enumerate(keys):  # uploaded oldest first, every other one encrypted
        s3.put_object(Bucket=store.bucket, Key=key.object_key_for(day % 2 == 1), Body=b"x")
    s3.put_object(Bucket=store.bucket, Key="notes.txt.age", Body=b"not a bundle")
    listed = store.list_bundles()
    assert [b.key for b in listed] == sorted(keys, reverse=True)
    assert [b.encrypted for b in listed] == [d % 2 == 1 for d in reversed(range(10))]
    deleted = store.rotate(7)
    assert sorted(b.key for b in deleted) == keys[:3]
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=store.bucket)["Contents"]}
    assert left == {k.object_key_for(d % 2 == 1) for d, k in enumerate(keys) if d >= 3} | {"notes.txt.age"}


def test_cleanup_aborts_an_unfinished_encrypted_upload(scratch_bucket):
    store, key = BackupStore(scratch_bucket), _key(5)
    s3 = store.s3
    s3.create_multipart_upload(Bucket=store.bucket, Key=key.object_key_for(True))
    assert store.abort_unfinished_bundle(key) == 1
    assert not s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads")
