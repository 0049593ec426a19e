"""pg_dump and psql see only PATH, the locale and their connection's PG* variables: a dump that
gets a command run cannot read the worker's secrets, and none leak into a child by accident."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from archivist.sources.postgres import job as postgres
from archivist.transport.staging import LocalStaging
from demo.fingerprint import wipe_postgres

PLANTED = {
    "ARCHIVIST_TEST_SECRET_ACCESS_KEY": "planted-secret",
    "AIRFLOW__CORE__FERNET_KEY": "planted-fernet",
    "AIRFLOW_CONN_PLANTED": "postgres://u:planted@h/db",
    "BACKUP_SECRET_ACCESS_KEY": "planted-backup",
}


def _child_environ(name: str, argument: str, timeout: float = 30) -> dict[str, str]:
    """The environment of this process's child `name` run with `argument`, read from /proc while it
    runs (`--version` runs of the same tool come and go before it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
                comm, fields = text.split("(", 1)[1].rsplit(")", 1)[0], text.rsplit(")", 1)[1].split()
                args = (stat.parent / "cmdline").read_bytes().split(b"\0")
                if comm == name and int(fields[1]) == os.getpid() and argument.encode() in args:
                    raw = (stat.parent / "environ").read_bytes()
                    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.02)
    pytest.fail(f"no {name} child process appeared within {timeout} s")


def _assert_clean(env: dict[str, str], settings) -> None:
    leaked = sorted(k for k in env if k.startswith("AIRFLOW") or "SECRET" in k)
    assert not leaked, f"the child sees {leaked}"
    assert not set(PLANTED.values()) & set(env.values())
    assert env["PGPASSWORD"] == settings.password and env["PGDATABASE"] == settings.dbname
    # PGSYSCONFDIR: set by Debian's pg_wrapper itself before it runs the real binary.
    assert set(env) <= {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSYSCONFDIR",
    } | {k for k in env if k.startswith("LC_")}


@pytest.fixture
def planted(monkeypatch):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def locked_table(pg_settings):
    """A table held under an exclusive lock by another session, so a pg_dump or a psql touching it waits."""
    wipe_postgres(pg_settings)
    with postgres.connect(pg_settings) as conn:
        conn.execute("CREATE TABLE public.held (id int)")
    holder = postgres.connect(pg_settings)
    holder.autocommit = False
    holder.execute("LOCK TABLE public.held IN ACCESS EXCLUSIVE MODE")
    yield holder
    holder.rollback()
    holder.close()


def _in_thread(func) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(_call(func)), daemon=True)
    thread.start()
    return thread, outcome


def _call(func):
    try:
        return func()
    except Exception as exc:
        return exc


class _HeldStaging(LocalStaging):
    """Staging that starts reading pg_dump's output only once `release` is set: with more than a
    pipe's worth of data to write, pg_dump waits, alive, until then."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def put_stream(self, path, stream):
        self.release.wait(60)
        return super().put_stream(path, stream)


def test_pg_dump_gets_only_its_connection(planted, pg_settings):
    wipe_postgres(pg_settings)
    with postgres.connect(pg_settings) as conn:  # far more than a pipe holds
        conn.execute(
            "CREATE TABLE public.bulk AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g"
        )
    staging = _HeldStaging()
    try:
        thread, outcome = _in_thread(lambda: postgres.dump(pg_settings, staging, "envProbe123"))
        try:
            env = _child_environ("pg_dump", "--format=plain")
        finally:
            staging.release.set()
            thread.join(60)
        assert not isinstance(outcome[0], Exception), outcome
        _assert_clean(env, pg_settings)
    finally:
        staging.cleanup()


def test_psql_gets_only_its_connection(planted, locked_table, pg_settings):
    dump = io.BytesIO(b"SELECT count(*) FROM public.held;\n")
    thread, outcome = _in_thread(lambda: postgres.restore(pg_settings, dump, "replace"))
    env = _child_environ("psql", "--single-transaction")
    locked_table.rollback()
    thread.join(60)
    assert not isinstance(outcome[0], Exception), outcome
    _assert_clean(env, pg_settings)
