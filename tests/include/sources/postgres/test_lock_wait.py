"""A table locked by another session fails the PostgreSQL backup within the lock wait, naming
the lock and the setting to change, instead of hanging the run (against the real server)."""

from __future__ import annotations

import time

import pytest

from archivist import config
from archivist.errors import ConfigurationError, JobFailedError
from archivist.sources.postgres import job
from archivist.transport.staging import LocalStaging

TABLE = "archivist_lock_probe"


@pytest.fixture
def locked_table(pg_settings):
    """A table held ACCESS EXCLUSIVE by another session until the test ends."""
    with job.connect(pg_settings) as conn:  # autocommit
        conn.execute(f"CREATE TABLE IF NOT EXISTS public.{TABLE} (id int)")
    holder = job.connect(pg_settings)
    holder.execute("BEGIN")
    holder.execute(f"LOCK TABLE public.{TABLE} IN ACCESS EXCLUSIVE MODE")  # held while the transaction is open
    try:
        yield TABLE
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        with job.connect(pg_settings) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{TABLE}")


def test_a_locked_table_fails_the_backup_within_the_wait(pg_settings, locked_table, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_PG_LOCK_WAIT_TIMEOUT", "2s")
    staging = LocalStaging()
    started = time.monotonic()
    try:
        with pytest.raises(JobFailedError, match=r"could not lock a table within 2s: another session") as failed:
            job.dump(pg_settings, staging, "lockwait000")
    finally:
        staging.cleanup()
    assert time.monotonic() - started < 30
    assert "ARCHIVIST_PG_LOCK_WAIT_TIMEOUT" in str(failed.value) and "lock timeout" in str(failed.value)


def test_the_backup_goes_ahead_once_the_lock_is_gone(pg_settings, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_PG_LOCK_WAIT_TIMEOUT", "2s")
    staging = LocalStaging()
    try:
        result = job.dump(pg_settings, staging, "lockwait001")
    finally:
        staging.cleanup()
    assert result.job == "postgres" and result.artifacts[0].size > 0


@pytest.mark.parametrize("value", ["0", "soon", "10 years", "-5s"])
def test_a_lock_wait_that_is_no_duration_is_refused(value):
    with pytest.raises(ConfigurationError, match="ARCHIVIST_PG_LOCK_WAIT_TIMEOUT must be a duration"):
        config.load_pg_lock_wait({"ARCHIVIST_PG_LOCK_WAIT_TIMEOUT": value})


def test_lock_waits_in_postgresql_units_are_taken_as_written():
    assert config.load_pg_lock_wait({}) == config.DEFAULT_PG_LOCK_WAIT
    for value in ("30s", "500ms", "10min", "1h", "2500"):
        assert config.load_pg_lock_wait({"ARCHIVIST_PG_LOCK_WAIT_TIMEOUT": value}) == value
