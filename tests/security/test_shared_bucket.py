"""Three stacks in one backup bucket: one at the bucket's root (as before prefixes existed) and
two under `stack-a/` and `stack-b/`, set with BACKUP_PREFIX. Through the real `archivist`
command each lists only its own bundles, cannot restore another's, and rotates only its own
when it backs up; a prefix that would step outside its folder is refused before anything runs."""

from __future__ import annotations

import datetime as dt
import json

from archivist.format.bundle import BackupKey
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.operation_lock import LOCK_OBJECT
from tests.security.forge import archivist, forge
from tests.security.hostile_support import s3_env

STACKS = ("", "stack-a/", "stack-b/")
EACH = 8


def _keys(store: BackupStore) -> set[str]:
    """The bucket's keys but each stack's lock, which stays as a small object once used."""
    listed = store.s3.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    return {o["Key"] for o in listed if not o["Key"].endswith(LOCK_OBJECT)}


def test_stacks_sharing_a_bucket_see_restore_and_rotate_only_their_own(make_bucket):
    backups, app = make_bucket(), make_bucket()
    store = BackupStore(backups)
    today = dt.datetime.now(dt.UTC).date()
    own: dict[str, list[str]] = {}
    for day in range(EACH, 0, -1):
        for prefix in STACKS:
            key, data = forge(
                {"jobs.postgres/postgres-{id}.sql": b"SELECT 1;\n"}, key=BackupKey.new(today - dt.timedelta(days=day))
            )
            store.s3.put_object(Bucket=backups.bucket, Key=prefix + key.object_key, Body=data)
            own.setdefault(prefix, []).append(prefix + key.object_key)

    def env(prefix: str) -> dict[str, str]:
        return s3_env("BACKUP_", backups) | s3_env("S3_", app) | ({"BACKUP_PREFIX": prefix} if prefix else {})

    for prefix in STACKS:
        listed = archivist("list", "--json", env=env(prefix))
        assert listed.returncode == 0, listed.stderr
        assert [b["object"] for b in json.loads(listed.stdout)] == own[prefix][::-1]
    other = own["stack-a/"][-1].removeprefix("stack-a/")
    refused = archivist("restore", other, "--dry-run", env=env("stack-b/"))
    assert refused.returncode == 5 and "under prefix 'stack-b/'" in refused.stderr, refused.stderr

    before = _keys(store)
    made = archivist("backup", "--jobs", "storage", "--keep", "7", env=env("stack-a/"))
    assert made.returncode == 0, made.stderr
    after = _keys(store)
    new = after - before
    assert len(new) == 1 and next(iter(new)).startswith("stack-a/bundle-")
    assert before - after == set(own["stack-a/"][:2]), "stack-a rotated something not its oldest two"
    assert not any(k.startswith("stack-a/staging/") for k in after)


def test_a_prefix_outside_its_folder_is_refused(make_bucket):
    backups = make_bucket()
    for prefix, problem in (("../stack-a", "'..' segment"), ("/stack-a", "starts with '/'"), ("a//b", "empty")):
        run = archivist("list", env=s3_env("BACKUP_", backups) | {"BACKUP_PREFIX": prefix})
        assert run.returncode == 2, run.stderr
        assert f"the backup key prefix {prefix!r} (BACKUP_* variables)" in run.stderr and problem in run.stderr
