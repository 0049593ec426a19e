"""A storage archive whose object keys reach outside their place: `../x`, `a/./b`, `a//b`, an
empty key and a key over S3's 1,024 bytes. Restored through the real `archivist restore`
into an empty bucket of the real S3 server: every such object is refused with its key named,
every other object is restored, and the command then fails (exit 7) listing what it skipped."""

from __future__ import annotations

import pytest

from archivist.sources.storage import keys as archive_limits
from archivist.transport.backup_bucket import BackupStore
from tests.security.forge import archivist, forge, plant
from tests.security.hostile_support import objects, s3_env, storage_entry, storage_files, storage_tgz

GOOD = {"ok/report.txt": b"kept", "folder/": b"", "a b/\u00fc.txt": b"unicode", "..hidden/x": b"a name, not a step"}
LONG = "k/" + "x" * 1023  # 1,025 bytes
HOSTILE = {
    "../x": "has a '.' or '..' segment",
    "a/./b": "has a '.' or '..' segment",
    "a/../../b": "has a '.' or '..' segment",
    "a//b": "has an empty segment",
    "": "is empty",
    LONG: "is 1,025 bytes long, over S3's limit of 1,024",
}


def test_hostile_keys_are_refused_by_name_and_the_rest_is_restored(make_bucket):
    backups, target = make_bucket(), make_bucket()
    entries = [storage_entry(key, body) for key, body in GOOD.items()]
    entries[1:1] = [storage_entry(key, b"hostile " + key.encode()[:20]) for key in HOSTILE]
    key, data = forge(storage_files(storage_tgz(*entries)))
    plant(BackupStore(backups), key, data)

    run = archivist(
        "restore", key.name, "--jobs", "storage", env={**s3_env("BACKUP_", backups), **s3_env("S3_", target)}
    )

    assert run.returncode == 7, run.stdout + run.stderr
    assert f"{len(HOSTILE)} object(s) of the storage archive were not restored" in run.stderr
    for hostile, problem in HOSTILE.items():
        assert f"{archive_limits.describe_key(hostile)} ({problem})" in run.stderr, hostile
    assert "'k/xxxxxxxx" in run.stderr and "(1025 characters)" in run.stderr  # the long key, shortened
    assert f"The other {len(GOOD)} object(s) were restored" in run.stderr
    assert objects(target) == GOOD  # nothing else was written, and nothing under a hostile key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        *HOSTILE.items(),
        ("/", "has an empty segment"),
        ("a/.", "has a '.' or '..' segment"),
        (".", "has a '.' or '..' segment"),
        ("k\udcff", "is not valid UTF-8"),
    ],
)
def test_key_problem_refuses(key, problem):
    assert archive_limits.key_problem(key) == problem


@pytest.mark.parametrize(
    "key",
    ["a", "/leading-slash", "folder/", "a b/\u00fc", "..x", "x..", ".config/a", "k/" + "x" * 1022, "\u00e9" * 512],
)
def test_key_problem_accepts_keys_applications_use(key):
    assert archive_limits.key_problem(key) is None
