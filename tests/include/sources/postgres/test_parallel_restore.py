"""A parallel restore builds each table's indexes as soon as that table is loaded, beside the
tables still loading, the way pg_restore --jobs schedules by dependency; it builds aside unless
another session stays connected to the target (an autovacuum worker is not one)."""

from __future__ import annotations

import dataclasses
import io
import secrets
import subprocess

import psycopg
import pytest
from psycopg import sql

from archivist.sources.postgres import dump_plan, job, parallel_restore
from tests.faults.faults_support import Background
from tests.support import wait_until

# A check that sleeps on one row makes the load of `slow` last seconds, whatever the machine.
SCHEMA = """
    CREATE FUNCTION public.sleeps_on_one(id int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN IF id = 1 THEN PERFORM pg_sleep(4); END IF; RETURN true; END $$;
    CREATE TABLE public.quick (id int PRIMARY KEY, body text);
    CREATE INDEX quick_body ON public.quick (body);
    CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.sleeps_on_one(id)));
    INSERT INTO public.quick SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
    INSERT INTO public.slow VALUES (1), (2);
"""


@pytest.fixture
def two_tables(pg_settings):
    """A database holding a table that loads at once and one that takes seconds, as settings."""
    name = f"archivist_par_{secrets.token_hex(4)}"
    with psycopg.connect(**_conninfo(pg_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = dataclasses.replace(pg_settings, dbname=name)
    with psycopg.connect(**_conninfo(settings), autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield settings
    with psycopg.connect(**_conninfo(pg_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _conninfo(settings) -> dict:
    return {
        "host": settings.host, "port": settings.port, "user": settings.user, "password": settings.password,
        "dbname": settings.dbname,
    }  # fmt: skip


def _loading_slow_into(settings) -> str | None:
    """The scratch database a restore is loading `slow` into, while it does."""
    with job.connect(settings) as conn:
        row = conn.execute(
            "SELECT datname FROM pg_catalog.pg_stat_activity WHERE application_name = %s AND query LIKE %s",
            (parallel_restore.APPLICATION_NAME, "COPY public.slow %"),
        ).fetchone()
    return row[0] if row else None


def _waiting_for_sessions_to_leave(settings) -> bool:
    """Whether a restore is counting the sessions connected to the target before building aside."""
    with job.connect(settings) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE %s)",
            ("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = %",),
        ).fetchone()[0]


def _indexes(settings, dbname: str) -> set[str]:
    with job.connect(dataclasses.replace(settings, dbname=dbname)) as conn:
        return {row[0] for row in conn.execute("SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'quick'")}


def _dump(settings) -> bytes:
    return subprocess.run(
        [job.tool("pg_dump"), "--format=plain", "--no-owner", "--no-privileges", "--no-password"],
        env=job.child_env(settings),
        capture_output=True,
        check=True,
    ).stdout


def test_a_loaded_tables_indexes_are_built_while_another_table_loads(two_tables):
    dump = _dump(two_tables)
    with job.connect(two_tables) as conn:
        conn.execute("DELETE FROM public.quick WHERE id > 10")
    plan = dump_plan.scan(io.BytesIO(dump))
    restore = Background(lambda: parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", plan, jobs=2))
    seen: dict[str, set[str]] = {}

    def quick_indexed_while_slow_loads() -> bool:
        scratch = _loading_slow_into(two_tables)
        if scratch is None:
            return False
        indexes = _indexes(two_tables, scratch)
        if _loading_slow_into(two_tables) != scratch:  # `slow` must still be loading after the look
            return False
        seen[scratch] = indexes
        return indexes == {"quick_pkey", "quick_body"}

    wait_until(
        lambda: restore.error is not None or quick_indexed_while_slow_loads(),
        what="quick's indexes in the scratch database while slow loads",
        timeout=30,
    )
    restore.join()
    assert restore.error is None, restore.error
    assert seen, "the restore never showed quick's indexes while slow loaded"
    with job.connect(two_tables) as conn:
        assert conn.execute("SELECT count(*) FROM public.quick").fetchone() == (1000,)
        assert conn.execute("SELECT count(*) FROM public.slow").fetchone() == (2,)
    assert _indexes(two_tables, two_tables.dbname) == {"quick_pkey", "quick_body"}


def test_a_session_that_leaves_within_seconds_does_not_stop_building_aside(two_tables, caplog):
    dump = _dump(two_tables)
    leaving = job.connect(two_tables)
    restore = Background(
        lambda: parallel_restore.restore(
            two_tables, io.BytesIO(dump), "replace", dump_plan.scan(io.BytesIO(dump)), jobs=2
        )
    )
    wait_until(
        lambda: restore.error is not None or _waiting_for_sessions_to_leave(two_tables),
        what="the restore waiting for the other session to leave",
        timeout=30,
    )
    leaving.close()
    restore.join()
    assert restore.error is None, restore.error
    assert "building the restore in scratch database" in caplog.text
    assert "cannot build aside" not in caplog.text


def test_a_session_that_stays_connected_restores_in_one_transaction(two_tables, caplog):
    dump = _dump(two_tables)
    with job.connect(two_tables) as staying:
        parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", dump_plan.scan(io.BytesIO(dump)), jobs=2)
        assert staying.execute("SELECT count(*) FROM public.quick").fetchone() == (1000,)
    assert "cannot build aside (1 other session(s) are connected to it): restoring in one transaction" in caplog.text


@pytest.fixture
def autovacuum_every_second(pg_settings):
    """The server's autovacuum launcher looking at each database every second (ALTER SYSTEM needs
    the test server's superuser), reset afterwards."""
    with psycopg.connect(**_conninfo(pg_settings), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum_naptime = '1s'")
        conn.execute("SELECT pg_reload_conf()")
    yield
    with psycopg.connect(**_conninfo(pg_settings), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET autovacuum_naptime")
        conn.execute("SELECT pg_reload_conf()")


def _autovacuum_working_on(settings) -> bool:
    with job.connect(settings) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'autovacuum worker')",
            (settings.dbname,),
        ).fetchone()[0]


def test_an_autovacuum_worker_on_the_target_does_not_stop_building_aside(two_tables, autovacuum_every_second, caplog):
    dump = _dump(two_tables)
    with job.connect(two_tables) as conn:  # dead rows that a throttled autovacuum takes long to clear
        conn.execute(
            "CREATE TABLE public.churned (id int) WITH (autovacuum_vacuum_threshold = 0,"
            " autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 100,"
            " autovacuum_vacuum_cost_limit = 1)"
        )
        conn.execute("INSERT INTO public.churned SELECT generate_series(1, 200000)")
        conn.execute("DELETE FROM public.churned")
    wait_until(lambda: _autovacuum_working_on(two_tables), what="an autovacuum worker on the target", timeout=60)
    parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", dump_plan.scan(io.BytesIO(dump)), jobs=2)
    assert "building the restore in scratch database" in caplog.text
    assert "cannot build aside" not in caplog.text
    with job.connect(two_tables) as conn:
        assert conn.execute("SELECT count(*) FROM public.slow").fetchone() == (2,)


def _second_pass() -> None:
    raise AssertionError("the dump was read a second time for replace mode's drops")


def _exists(settings, name: str) -> bool:
    with job.connect(settings) as conn:
        return conn.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_replace_takes_its_drops_from_the_dump_it_reads(two_tables):
    with job.connect(two_tables) as conn:
        conn.execute("CREATE SCHEMA billing")
        conn.execute("CREATE TABLE billing.invoices (id int)")
    dump = _dump(two_tables)
    with job.connect(two_tables) as conn:
        conn.execute("DELETE FROM public.quick WHERE id > 10")
        conn.execute("CREATE TABLE billing.since (id int)")  # goes with the schema the dump recreates
        conn.execute("CREATE SCHEMA kept")
        conn.execute("CREATE TABLE kept.notes (id int)")  # the dump does not create it: it stays
    parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", jobs=2, plan_of=_second_pass)
    with job.connect(two_tables) as conn:
        assert conn.execute("SELECT count(*) FROM public.quick").fetchone() == (1000,)
    assert _exists(two_tables, "billing.invoices") and _exists(two_tables, "kept.notes")
    assert not _exists(two_tables, "billing.since")


def test_replace_drops_what_a_dump_creates_after_its_rows_before_it_does(two_tables):
    late = b"CREATE TABLE public.late (id int);\nINSERT INTO public.late VALUES (7);\n"
    dump = _dump(two_tables)
    end = dump.rfind(b"\n\\unrestrict ")  # pg_dump's closing line, where it writes one
    dump = dump[: end + 1] + late + dump[end + 1 :] if end >= 0 else dump + late
    with job.connect(two_tables) as conn:
        conn.execute("CREATE TABLE public.late (name text)")
        conn.execute("INSERT INTO public.late VALUES ('before')")
    parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", jobs=2, plan_of=_second_pass)
    with job.connect(two_tables) as conn:
        assert conn.execute("SELECT * FROM public.late").fetchall() == [(7,)]


def test_replace_in_one_transaction_reads_its_drops_first(two_tables, caplog):
    dump = _dump(two_tables)
    asked = []

    def plan_of() -> dump_plan.DumpPlan:
        asked.append(True)
        return dump_plan.scan(io.BytesIO(dump))

    with job.connect(two_tables) as staying:  # another session: the restore cannot build aside
        staying.execute("DELETE FROM public.quick WHERE id > 10")
        staying.commit()
        parallel_restore.restore(two_tables, io.BytesIO(dump), "replace", jobs=2, plan_of=plan_of)
        assert staying.execute("SELECT count(*) FROM public.quick").fetchone() == (1000,)
    assert "restoring in one transaction" in caplog.text
    assert asked == [True]
