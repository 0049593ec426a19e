"""Backups and restores at the same time. A backup started while another holds the backup bucket's
lock is refused (exit code 8), naming the holder, and runs once the lock is free; while a backup
holds it, a dry-run restore succeeds and a real one is refused before it writes anything. The
DAGs themselves run one at a time (max_active_runs=1: a second scheduled run queues), so
concurrency comes from the command, another DAG, or a manual run."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid

import pytest

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.base import DumpOptions
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from tests.faults.secrets_support import objects_under, small_index, unfinished_uploads
from tests.spec_support import spec_env
from tests.support import ROOT

BIG_OBJECTS = 8
BIG_OBJECT_BYTES = 8 * 1024 * 1024

# `archivist backup` (backup.run_backup: checks, sweep, jobs, upload, rotation) limited to one
# index, since other tests' indices come and go meanwhile.
BACKUP = """
import json, sys, time
from archivist.errors import LockHeldError
from archivist.runner import backup
from archivist.sources.base import DumpOptions
started = time.time()
try:
    made = backup.run_backup(options=DumpOptions(sys.argv[1]))
except LockHeldError as exc:
    print(json.dumps({"refused": str(exc), "started": started, "ended": time.time()}))
    sys.exit(8)
print(json.dumps({"key": made["key"], "started": started, "ended": time.time(), "counts": made["counts"]}))
"""


@pytest.fixture(scope="module")
def probe_index(es_client):
    with small_index(es_client, "concurrency-probe", 200) as name:
        yield name


@pytest.fixture(scope="module")
def env(pg_settings, es_settings, storage_settings, backups_settings):
    return spec_env(pg_settings, es_settings, storage_settings, backups_settings)


def _new_bucket(root, s3):
    name = f"archivist-conc-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return dataclasses.replace(root, bucket=name, source=f"test bucket {name}")


def _remove(s3, bucket: str) -> None:
    s3io.abort_uploads(s3, bucket, "")
    for key in objects_under(s3, bucket, ""):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def buckets(storage_settings):
    """(a bucket with ~64 MB to back up, so a backup runs for seconds; an empty restore target)."""
    s3 = s3io.client(storage_settings)
    big, target = _new_bucket(storage_settings, s3), _new_bucket(storage_settings, s3)
    for i in range(BIG_OBJECTS):
        s3.put_object(Bucket=big.bucket, Key=f"big/blob-{i}.bin", Body=os.urandom(BIG_OBJECT_BYTES))
    yield big, target
    for settings in (big, target):
        _remove(s3, settings.bucket)


def _start_backup(env: dict, index: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BACKUP, index],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen, refused: bool = False) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == (8 if refused else 0), err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _assert_whole_and_clean(store: BackupStore, key: str) -> bundle.VerifyReport:
    parsed = BackupKey.parse(key)
    report = bundle.verify(store.open_bundle(parsed))
    assert report.checksummed and set(report.jobs) == {"postgres", "elasticsearch", "storage"}
    assert objects_under(store.s3, store.bucket, f"staging/{key}/") == [], f"staging of {key} left behind"
    assert unfinished_uploads(store.s3, store.bucket, f"staging/{key}/") == []
    assert unfinished_uploads(store.s3, store.bucket, parsed.object_key) == []
    return report


def test_both_dags_run_one_at_a_time():
    from airflow.dag_processing.dagbag import DagBag

    dags = DagBag(dag_folder=str(ROOT / "dags"), safe_mode=False).dags
    assert dags["archivist_backup"].max_active_runs == 1, "a second scheduled backup must queue, not overlap"
    assert dags["archivist_restore"].max_active_runs == 1


def test_of_two_backups_at_once_one_runs_and_the_other_is_refused(env, probe_index, buckets, backups_settings):
    """A backup is refused while another holds the stack's lock, and runs once it is free. The
    first one holds it here, in this process, so the two overlap whatever the machine's speed."""
    store = BackupStore(backups_settings)
    with store.lock().held("backup"):
        refused = _finish(_start_backup(env, probe_index), refused=True)
    assert "another backup or restore is running" in refused["refused"]
    assert (
        "locked by backup 'archivist command on " in refused["refused"] and "`archivist unlock`" in refused["refused"]
    )
    assert store.lock().read().holder is None, "the refused backup touched the lock it did not hold"
    made = _finish(_start_backup({**env, "S3_BUCKET_NAME": buckets[0].bucket}, probe_index))
    assert made["key"] in {b.key.name for b in store.list_bundles()}
    report = _assert_whole_and_clean(store, made["key"])
    assert report.meta["counts"]["jobs.elasticsearch"]["indices"] == {probe_index: 200}
    assert report.meta["counts"]["jobs.storage"]["objects"] == BIG_OBJECTS
    assert store.lock().read().holder is None, "the backup that ran did not free the lock"


def test_restores_while_a_backup_runs(env, probe_index, buckets, backups_settings):
    """While a backup holds the stack's lock, a dry run goes ahead and a restore that would write
    is refused (exit 8) before it writes anything. The backup holds it here, in this process, so
    the restores meet it whatever the machine's speed."""
    _, target = buckets
    store = BackupStore(backups_settings)
    older = backup.run_backup(options=DumpOptions(probe_index))["key"]  # in this process, with the connections

    def restore_command(*args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "archivist", "restore", older, *args],
            env={**env, **extra},
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    with store.lock().held("backup"):
        restores = {
            "dry run": restore_command("--mode", "replace", "--dry-run", "--indices", probe_index),
            "into a new bucket": restore_command("--jobs", "storage", "--mode", "empty", S3_BUCKET_NAME=target.bucket),
        }
        outputs = {name: p.communicate(timeout=300) for name, p in restores.items()}

    dry, real = restores["dry run"], restores["into a new bucket"]
    assert dry.returncode == 0, "".join(outputs["dry run"])
    assert "dry run: nothing was written" in outputs["dry run"][0]
    assert real.returncode == 8, "".join(outputs["into a new bucket"])
    assert "locked by backup 'archivist command on " in outputs["into a new bucket"][1]
    assert objects_under(s3io.client(target), target.bucket, "") == [], "the refused restore wrote objects"
    assert store.lock().read().holder is None
    _assert_whole_and_clean(store, older)
