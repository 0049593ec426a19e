"""archivist_backup and archivist_restore run for real with `airflow dags test`, encryption on
through the connection archivist_encryption: recipients in its extra, the identity its password."""

from __future__ import annotations

import json

from pyrage import x25519

from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import stack_snapshot as fingerprint
from demo.fingerprint import wipe_bucket, wipe_elasticsearch, wipe_postgres
from tests.support import dags_test


def _connection(recipient: x25519.Recipient, identity: x25519.Identity | None) -> dict[str, str]:
    conn = {"conn_type": "generic", "extra": {"recipients": [str(recipient)]}}
    if identity is not None:
        conn["password"] = str(identity)
    return {"AIRFLOW_CONN_ARCHIVIST_ENCRYPTION": json.dumps(conn)}


def test_encrypted_backup_and_restore_dag_runs(seeded, pg_settings, es_settings, storage_settings, backups_settings):
    identity = x25519.Identity.generate()
    store = BackupStore(backups_settings)
    before_keys = {b.key.name for b in store.list_bundles()}
    run = dags_test("archivist_backup", env=_connection(identity.to_public(), None))  # backups need no identity
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "encryption: bundles encrypted with age to 1 recipient(s) (connection 'archivist_encryption')" in run.stdout
    made = [b for b in store.list_bundles() if b.key.name not in before_keys]
    assert len(made) == 1 and made[0].encrypted and made[0].object_key.endswith(".tgz.age")
    key = made[0].key.name
    assert str(identity) not in run.stdout + run.stderr

    before = fingerprint(pg_settings, es_settings, storage_settings)
    wipe_postgres(pg_settings)
    wipe_elasticsearch(es_settings)
    wipe_bucket(storage_settings)
    emptied = fingerprint(pg_settings, es_settings, storage_settings)

    wrong = dags_test(
        "archivist_restore",
        {"key": key, "mode": "replace"},
        env=_connection(identity.to_public(), x25519.Identity.generate()),
    )
    output = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0
    assert "encrypted to other keys than the identity in connection 'archivist_encryption'" in output
    assert "starting task_id=restore_postgres" not in output
    assert fingerprint(pg_settings, es_settings, storage_settings) == emptied

    run = dags_test("archivist_restore", {"key": key}, env=_connection(identity.to_public(), identity))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert "encrypted with age" in run.stdout
    assert str(identity) not in run.stdout + run.stderr
    assert fingerprint(pg_settings, es_settings, storage_settings) == before
