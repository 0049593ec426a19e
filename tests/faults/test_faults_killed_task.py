"""A task killed with SIGKILL in the middle of its upload, then retried as Airflow retries it:
the storage job killed while streaming its archive to staging, and `bundle_and_upload`'s work
(backup.upload) killed while streaming the bundle. The retry makes a whole bundle, nothing
appears under the final name before that, and cleanup leaves no staging object and no
unfinished multipart upload. Runs in buckets of its own, with ~64 MB to move."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from archivist.config import S3Settings
from archivist.format import bundle
from archivist.format.bundle import BackupKey, JobResult
from archivist.runner import backup
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.staging import LEASE
from tests.faults.secrets_support import objects_under, unfinished_uploads

BIG_OBJECTS = 8
BIG_OBJECT_BYTES = 8 * 1024 * 1024

WORKER = """
import json, os, sys
from archivist.runner import backup
from archivist.format.bundle import BackupKey, JobResult
from archivist.config import S3Settings
from archivist.transport.backup_bucket import BackupStore
cfg = json.loads(os.environ["ARCHIVIST_FAULT_SETTINGS"])
store, key = BackupStore(S3Settings(**cfg["backups"])), BackupKey.parse(sys.argv[2])
if sys.argv[1] == "job":
    result = backup.run_job("storage", key, store.staging(key), S3Settings(**cfg["storage"]))
    print(json.dumps(result.as_dict()))
else:
    print(json.dumps(backup.upload(store, key, [JobResult.from_dict(r) for r in cfg["results"]])))
"""


def _bucket(root: S3Settings, s3) -> S3Settings:
    name = f"archivist-fault-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    # The root keys themselves, not the connection: the worker prints only its result on stdout,
    # and Airflow, which a connection would bring in, logs there too.
    return dataclasses.replace(root, bucket=name, source=f"test bucket {name}", conn_id=None)


def _remove(s3, bucket: str) -> None:
    for key in unfinished_uploads(s3, bucket):
        s3io.abort_uploads(s3, bucket, key)
    for key in objects_under(s3, bucket, ""):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def buckets(storage_settings):
    """(application bucket holding ~64 MB of incompressible objects, empty backup bucket)."""
    s3 = s3io.client(storage_settings)
    app, backups = _bucket(storage_settings, s3), _bucket(storage_settings, s3)
    for i in range(BIG_OBJECTS):
        s3.put_object(Bucket=app.bucket, Key=f"big/blob-{i}.bin", Body=os.urandom(BIG_OBJECT_BYTES))
    yield app, backups
    for settings in (app, backups):
        _remove(s3, settings.bucket)


def _worker(buckets, *args: str, results: list | None = None) -> subprocess.Popen:
    app, backups = buckets
    cfg = {"storage": dataclasses.asdict(app), "backups": dataclasses.asdict(backups), "results": results or []}
    env = {**os.environ, "ARCHIVIST_FAULT_SETTINGS": json.dumps(cfg)}  # credentials in the environment, not argv
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    """SIGKILLs `proc` as soon as `ready()` holds; fails if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the worker ended (exit {proc.returncode}) before {what}; more data is needed:\n{err[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _sha256(store: BackupStore, key: str) -> tuple[int, str]:
    body, digest, size = s3io.open_object(store.s3, store.bucket, key), hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _uploads(store: BackupStore) -> dict[str, str]:
    return {
        u["UploadId"]: u["Key"]
        for page in store.s3.get_paginator("list_multipart_uploads").paginate(Bucket=store.bucket)
        for u in page.get("Uploads", [])
    }


def _assert_clean(store: BackupStore, key: BackupKey) -> None:
    store.staging(key).cleanup()
    store.abort_unfinished_bundle(key)
    assert objects_under(store.s3, store.bucket, f"staging/{key.name}/") == []
    assert unfinished_uploads(store.s3, store.bucket) == [], "an unfinished multipart upload was left"


def test_storage_job_killed_mid_upload_then_retried(buckets):
    app, backups = buckets
    store, key = BackupStore(backups), BackupKey.new()
    prefix = f"staging/{key.name}/"

    killed = _worker(buckets, "job", key.name)
    _kill_when(
        killed,
        lambda: bool(unfinished_uploads(store.s3, store.bucket, prefix)),
        "its archive's multipart upload to staging started",
    )
    left = _uploads(store)
    assert any(k.startswith(prefix) for k in left.values()), "the killed job left no unfinished upload to clean"
    assert not any(k.endswith(".tgz") for k in objects_under(store.s3, store.bucket, prefix)), (
        "a half archive became a staging object"
    )

    retry = _worker(buckets, "job", key.name)  # Airflow's retry: same task, same key
    out, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err[-3000:]
    result = JobResult.from_dict(json.loads(out))
    assert result.counts == {"objects": BIG_OBJECTS, "bytes": BIG_OBJECTS * BIG_OBJECT_BYTES}
    for artifact in result.artifacts:  # the staged artifacts are whole: what the retry wrote, byte for byte
        assert _sha256(store, prefix + artifact.path) == (artifact.size, artifact.sha256), artifact.path

    uploaded = backup.upload(store, key, [result])
    assert uploaded["key"] == key.name
    report = bundle.verify(store.open_bundle(key))
    assert bundle.storage_path(key.backup_id) in report.members and report.checksummed
    assert [b.key for b in store.list_bundles()] == [key]
    _assert_clean(store, key)
    assert set(left) - set(_uploads(store)) == set(left), "the killed job's upload was not aborted"


def _artifacts_staged(store: BackupStore, key: BackupKey) -> dict[str, int]:
    """The staged artifacts and their sizes (the staging lease aside, which each task rewrites)."""
    return {
        o["Key"]: o["Size"]
        for o in store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"staging/{key.name}/")["Contents"]
        if not o["Key"].endswith(f"/{LEASE}")
    }


def test_bundle_upload_killed_mid_upload_then_retried(buckets):
    app, backups = buckets
    store, key = BackupStore(backups), BackupKey.new()
    before = store.list_bundles()
    result = backup.run_job("storage", key, store.staging(key), app)
    staged = _artifacts_staged(store, key)
    assert len(staged) == 2

    killed = _worker(buckets, "upload", key.name, results=[result.as_dict()])
    _kill_when(
        killed,
        lambda: key.object_key in unfinished_uploads(store.s3, store.bucket, key.object_key),
        "the bundle's multipart upload started",
    )
    assert key.object_key not in objects_under(store.s3, store.bucket, ""), (
        "a half bundle appeared under its final name"
    )
    assert store.list_bundles() == before
    assert _artifacts_staged(store, key) == staged, "the killed upload lost staging"

    uploaded = backup.upload(store, key, [result])  # the retry
    assert uploaded["size"] == store.s3.head_object(Bucket=store.bucket, Key=key.object_key)["ContentLength"]
    assert unfinished_uploads(store.s3, store.bucket, key.object_key), "the killed upload should still be open here"
    _assert_clean(store, key)  # aborts the killed upload; the finished bundle stays
    report = bundle.verify(store.open_bundle(key))
    assert set(report.members) == {a.path for a in result.artifacts}
    assert [b.key for b in store.list_bundles()] == [key, *(b.key for b in before)]
