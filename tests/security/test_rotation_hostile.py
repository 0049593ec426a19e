"""Seven `bundle-2099-…` objects planted in the backup bucket after 26 real bundles, so that
they are the newest by every measure an attacker controls. Through the real `archivist`
command: `list` and `restore latest` ignore them and name them in a warning, restoring one by
name is refused, and a backup with keep=7 rotates away only the real bundles older than the
ones it keeps (by when the bucket received them), never a planted one and never a newer one."""

from __future__ import annotations

import datetime as dt
import json

from archivist.format.bundle import BackupKey
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.operation_lock import LOCK_OBJECT
from tests.security.forge import archivist, forge, plant
from tests.security.hostile_support import s3_env

REAL, PLANTED, KEEP = 26, 7, 7


def _listing(store: BackupStore) -> dict[str, dt.datetime]:
    """The bucket's objects but the stack's lock, which stays as a small object once used."""
    listed = store.s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    return {o["Key"]: o["LastModified"] for o in listed if not o["Key"].endswith(LOCK_OBJECT)}


def test_future_dated_bundles_win_neither_latest_nor_rotation(make_bucket):
    backups, app = make_bucket(), make_bucket()
    store = BackupStore(backups)
    today = dt.datetime.now(dt.UTC).date()
    real = []
    for day in range(REAL, 0, -1):  # oldest first, as a daily backup would have uploaded them
        key, data = forge(
            {"jobs.postgres/postgres-{id}.sql": b"SELECT 1;\n"}, key=BackupKey.new(today - dt.timedelta(days=day))
        )
        real.append(plant(store, key, data))
    planted = []
    for n in range(1, PLANTED + 1):
        key, data = forge(
            {"jobs.postgres/postgres-{id}.sql": b"\\! touch /tmp/pwned\n"},
            key=BackupKey(dt.date(2099, 1, n), f"planted{n:04d}"),
        )
        planted.append(plant(store, key, data))
    env = s3_env("BACKUP_", backups) | s3_env("S3_", app)

    listed = archivist("list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [b["object"] for b in json.loads(listed.stdout)] == real[::-1]
    assert "dated after tomorrow" in listed.stderr and all(p in listed.stderr for p in planted)

    latest = archivist("restore", "latest", "--jobs", "storage", "--dry-run", env=env)
    assert f"bundle   {real[-1].removesuffix('.tgz')} " in latest.stdout, latest.stdout + latest.stderr
    by_name = archivist("restore", planted[0], "--dry-run", env=env)
    assert by_name.returncode == 5 and "dated after tomorrow" in by_name.stderr, by_name.stderr

    before = _listing(store)
    made = archivist("backup", "--jobs", "storage", "--keep", str(KEEP), env=env)
    assert made.returncode == 0, made.stderr
    after = _listing(store)
    new = set(after) - set(before)
    assert len(new) == 1
    kept = [k for k in real if k in after] + list(new)
    deleted = [k for k in real if k not in after]
    assert kept == real[-(KEEP - 1) :] + list(new)
    assert len(deleted) == REAL - (KEEP - 1)
    assert max(before[k] for k in deleted) <= min(after[k] for k in kept), "a newer bundle was deleted"
    assert all(p in after and after[p] == before[p] for p in planted), "rotation touched a planted object"
