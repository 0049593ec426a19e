"""`archivist drill` for real, and `archivist list` showing each bundle's last drill."""

from __future__ import annotations

import json

from archivist.drill import record
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from tests.spec_support import archivist


def test_drill_then_list_shows_the_verdict(seeded, spec_env, backups_settings):
    key = backup.run_backup(jobs=("postgres",))["key"]
    store = BackupStore(backups_settings)
    try:
        drilled = archivist(spec_env, "drill", key, timeout=600)
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        assert f"{key}: restored and matched on " in drilled.stdout

        rows = {row["key"]: row for row in json.loads(archivist(spec_env, "list", "--json").stdout)}
        assert rows[key]["drill"]["result"] == "matched"
        assert rows[key]["drill"]["summary"].startswith("restored and matched on ")
        line = next(li for li in archivist(spec_env, "list").stdout.splitlines() if li.startswith(key))
        assert "drill: restored and matched on " in line

        # Anyone who can write the bucket can write the record: a forged one is shown as such.
        store.s3.put_object(Bucket=store.bucket, Key=record.object_key(store, key), Body=b'{"format": 1, "key": 7}')
        rows = {row["key"]: row for row in json.loads(archivist(spec_env, "list", "--json").stdout)}
        assert rows[key]["drill"] == {
            "result": None,
            "drilled_at": None,
            "summary": "drill record unreadable: its key is not the bundle's it is named after",
        }
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, key))


def test_a_drill_of_no_such_bundle_names_the_closest(spec_env):
    run = archivist(spec_env, "drill", "bundle-2026-01-01-nosuchbundl")
    assert run.returncode == 5, run.stdout + run.stderr
    assert "no bundle named" in run.stderr
