"""The lock that lets one backup or restore of a stack run at a time (archivist.transport.operation_lock),
against the real S3 server in scratch buckets: processes racing for it (exactly one wins), a
backup refused while a restore holds it and a restore refused while a backup holds it (naming the
holder, since when, and how to clear it), stale locks taken over, the lock released after a
failure, kept alive while held, and lost when taken over. Its body is untrusted: the parsing of
forged bodies is tested without a server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
import subprocess
import sys
import time

import pytest

from archivist.config import S3Settings
from archivist.errors import LockHeldError, LockLostError, VerificationError
from archivist.runner import backup, restore
from archivist.transport import operation_lock
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.operation_lock import LOCK_OBJECT, OperationLock, parse_holder
from tests.spec_support import archivist, spec_env
from tests.support import ROOT

UTC = dt.UTC
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

# Each racer waits for the same moment, then tries to take the lock once.
RACER = """
import json, sys, time
from archivist.config import S3Settings
from archivist.errors import LockHeldError
from archivist.transport.backup_bucket import BackupStore
store = BackupStore(S3Settings(**json.loads(sys.argv[1])))
lock = store.lock()
lock.read()  # the client is warm before the start
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
try:
    lock.acquire("backup")
    print("won")
except LockHeldError as exc:
    print("refused:", exc)
"""


def _store(settings: S3Settings) -> BackupStore:
    return BackupStore(settings)


def _plant(store: BackupStore, **fields) -> None:
    """Writes a lock body as another archivist (or anyone able to write the bucket) would."""
    body = {
        "archivist_lock": 1,
        "state": "held",
        "kind": "restore",
        "owner": "archivist_restore/manual__2026-12-04",
        "host": "worker-7",
        "pid": 4242,
        "started_at": dt.datetime.now(UTC).isoformat(),
        "lease_seconds": 1800,
        **fields,
    }
    store.s3.put_object(Bucket=store.bucket, Key=LOCK_OBJECT, Body=json.dumps(body).encode())


def test_two_processes_racing_exactly_one_wins(scratch_bucket):
    start = time.time() + 3
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, json.dumps(dataclasses.asdict(scratch_bucket)), str(start)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [r.communicate(timeout=60) for r in racers]
    assert all(r.returncode == 0 for r in racers), [err for _, err in outputs]
    lines = [out.strip() for out, _ in outputs]
    assert sum(line == "won" for line in lines) == 1, lines
    for line in lines:
        if line != "won":
            assert "refused: another backup or restore is running" in line and "archivist command on" in line, line


def test_a_backup_is_refused_while_a_restore_holds_the_lock(scratch_bucket, monkeypatch):
    store = _store(scratch_bucket)
    _plant(store)
    monkeypatch.setattr(backup, "BackupStore", lambda settings: store)
    monkeypatch.setattr(backup.checks, "run_checks", lambda *a, **k: [])  # the servers are not the subject here
    with pytest.raises(LockHeldError) as refused:
        backup.run_backup(jobs=("storage",))
    message = str(refused.value)
    assert "restore 'archivist_restore/manual__2026-12-04' on host worker-7 (pid 4242), since " in message
    assert "This backup did not start" in message
    assert "`archivist unlock`" in message and f"'{LOCK_OBJECT}' in bucket '{store.bucket}'" in message
    assert store.list_bundles() == [] and _objects(store) == [LOCK_OBJECT], "the refused backup wrote something"


def test_a_restore_is_refused_while_a_backup_holds_the_lock(scratch_bucket, storage_settings):
    store = _store(scratch_bucket)
    store.lock().acquire("backup", owner="archivist_backup/scheduled__2026-12-04T01:00:00+00:00")
    opened = []
    with pytest.raises(LockHeldError) as refused:
        restore.run_restore(
            lambda: opened.append(1),
            "bundle-2026-12-04-AAAAAAAAAAA",
            ("storage",),
            "replace",
            settings={"storage": storage_settings},
            lock=store.lock(),
        )
    assert "backup 'archivist_backup/scheduled__2026-12-04T01:00:00+00:00' on host " in str(refused.value)
    assert "This restore did not start" in str(refused.value)
    assert opened == [], "the refused restore read the bundle"


def test_a_dry_run_restore_takes_no_lock(scratch_bucket, storage_settings):
    store = _store(scratch_bucket)
    store.lock().acquire("backup", owner="someone else")
    with pytest.raises(VerificationError):  # it got past the lock, to the (empty) bundle
        restore.run_restore(
            lambda: io.BytesIO(b""),
            "x",
            ("storage",),
            "replace",
            dry_run=True,
            settings={"storage": storage_settings},
            lock=store.lock(),
        )


def test_the_command_refuses_with_exit_code_8_and_unlock_clears(
    scratch_bucket, pg_settings, es_settings, storage_settings
):
    store = _store(scratch_bucket)
    _plant(store, kind="backup", owner="archivist_backup/scheduled__x")
    env = spec_env(pg_settings, es_settings, storage_settings, scratch_bucket)
    refused = archivist(env, "backup", "--jobs", "storage")
    assert refused.returncode == 8, refused.stderr
    assert "locked by backup 'archivist_backup/scheduled__x' on host worker-7" in refused.stderr
    cleared = archivist(env, "unlock")
    assert cleared.returncode == 0, cleared.stderr
    assert "cleared the lock" in cleared.stdout and "archivist_backup/scheduled__x" in cleared.stdout
    assert store.lock().read().holder is None
    assert "is not locked" in archivist(env, "unlock").stdout


def test_a_lock_silent_longer_than_its_lease_is_taken_over(scratch_bucket, monkeypatch, caplog):
    monkeypatch.setattr(operation_lock, "MIN_LEASE", dt.timedelta(seconds=1))
    store = _store(scratch_bucket)
    _plant(store, lease_seconds=1)
    with pytest.raises(LockHeldError):  # alive a moment ago
        store.lock().acquire("backup", owner="me")
    time.sleep(2.5)
    with caplog.at_level(logging.WARNING, logger="archivist"):
        store.lock().acquire("backup", owner="me")
    assert "taking over the lock" in caplog.text and "no sign of life for" in caplog.text
    assert store.lock().read().holder.owner == "me"


def test_a_lock_held_longer_than_a_run_may_last_is_taken_over(scratch_bucket, caplog):
    store = _store(scratch_bucket)
    _plant(store, started_at=(dt.datetime.now(UTC) - dt.timedelta(hours=13)).isoformat())
    lock = OperationLock(store.s3, store.bucket, LOCK_OBJECT, store.where, dt.timedelta(hours=12))
    with caplog.at_level(logging.WARNING, logger="archivist"):
        lock.acquire("backup", owner="me")
    assert "longer than a run may last (12h00m)" in caplog.text


def test_the_lock_is_released_after_a_failure(scratch_bucket, storage_settings):
    store = _store(scratch_bucket)
    with pytest.raises(RuntimeError), store.lock().held("backup"):
        assert store.lock().read().holder.kind == "backup"
        raise RuntimeError("a job failed")
    assert store.lock().read().holder is None
    with pytest.raises(VerificationError):  # a restore whose bundle fails verification
        restore.run_restore(
            lambda: io.BytesIO(b"not a bundle"),
            "x",
            ("storage",),
            "replace",
            settings={"storage": storage_settings},
            lock=store.lock(),
        )
    assert store.lock().read().holder is None
    store.lock().acquire("restore")  # free for the next one


def test_a_dag_runs_tasks_share_the_lock_and_only_that_run_releases_it(scratch_bucket):
    lock = _store(scratch_bucket).lock()
    run = "archivist_restore/" + "r" * 250  # Airflow's longest run id
    lock.acquire("restore", owner=run)
    started = lock.read().holder.started_at
    lock.acquire("restore", owner=run)  # a rescheduled or retried task of the same run
    assert lock.read().holder.started_at == started
    assert lock.release(owner="archivist_backup/other") is False
    assert lock.read().holder.owner == run
    assert lock.release(owner=run) is True and lock.read().holder is None


def test_a_holder_stays_alive_and_learns_when_it_lost_the_lock(scratch_bucket):
    lock = _store(scratch_bucket).lock()
    lock.acquire("backup", owner="me")
    first = lock.read().holder.last_beat
    with lock.alive(owner="me", every=0.3):
        time.sleep(1.5)
        assert lock.read().holder.last_beat > first, "the holder's sign of life was not refreshed"
    lock.clear()
    lock.acquire("restore", owner="another")
    with pytest.raises(LockLostError) as lost:
        lock.beat(owner="me")
    assert "restore 'another'" in str(lost.value)


# --- the lock's body is untrusted -------------------------------------------------------------------


def _body(**fields) -> bytes:
    body = {
        "archivist_lock": 1,
        "state": "held",
        "kind": "backup",
        "owner": "o",
        "host": "h",
        "pid": 1,
        "started_at": NOW.isoformat(),
        "lease_seconds": 300,
    }
    return json.dumps({**body, **fields}).encode()


def test_a_valid_body_names_its_holder():
    holder = parse_holder(_body(), NOW)
    assert holder is not None and not holder.problem
    assert (holder.owner, holder.kind, holder.lease) == ("o", "backup", dt.timedelta(minutes=5))
    assert parse_holder(_body(state="free"), NOW) is None


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"not json", "Expecting value"),
        (b"\xff\xfe binary", "can't decode"),
        (b"[]", "not an archivist lock"),
        (_body(archivist_lock=2), "not an archivist lock"),
        (_body(kind="wipe"), "unknown state or kind"),
        (_body(pid="1"), "not a whole number"),
        (_body(lease_seconds=1e308), "not a whole number"),
        (_body(started_at="yesterday"), "Invalid isoformat"),
        (_body(started_at="2026-12-04T12:00:00"), "no time zone"),
        (_body(started_at=(NOW + dt.timedelta(days=365)).isoformat()), "started after it was written"),
        (_body(owner="x" * 5000), "larger than 4096 bytes"),
    ],
)
def test_a_forged_body_counts_as_held_by_an_unknown_writer_for_at_most_the_longest_lease(body, problem):
    holder = parse_holder(body, NOW)
    assert holder is not None and problem in holder.problem
    assert holder.lease == operation_lock.MAX_LEASE
    assert holder.stale_reason(NOW + operation_lock.MAX_LEASE + dt.timedelta(seconds=1), dt.timedelta(hours=12))
    assert "an object archivist did not write" in holder.describe(NOW)


def test_a_lease_beyond_the_longest_is_cut_to_it_and_strings_are_cleaned():
    holder = parse_holder(_body(lease_seconds=10**9, owner="evil\n\x1b[31mred", host="h" * 500), NOW)
    assert holder is not None and holder.lease == operation_lock.MAX_LEASE
    assert "\n" not in holder.owner and "\x1b" not in holder.owner
    assert len(holder.host) <= 201


def _objects(store: BackupStore) -> list[str]:
    return sorted(o["Key"] for o in store.s3.list_objects_v2(Bucket=store.bucket).get("Contents", []))
