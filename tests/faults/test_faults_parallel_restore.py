"""A parallel PostgreSQL restore that fails leaves the target database exactly as it was.

The restore builds in a scratch database and swaps it in only when whole, so neither the server
dying in the middle nor a row the target rejects may change the target: every table's rows,
the schema, the roles and the database itself (its oid) are compared before and after.
"""

from __future__ import annotations

import io
import subprocess

import pytest

from archivist.errors import ArchivistError, JobFailedError
from archivist.format.bundle import BackupKey
from archivist.runner import backup, restore
from archivist.sources.base import RestoreOptions
from archivist.sources.postgres import dump_plan, parallel_restore, scratch_database
from archivist.sources.postgres import job as postgres
from archivist.transport.backup_bucket import BackupStore
from tests.faults.faults_support import Background, kill_server, start_servers
from tests.support import wait_until

USER_TABLES = """
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1
"""


def fingerprint(settings) -> dict:
    """The database as a user would check it: its oid, each table's row count and checksum, the
    schema as pg_dump writes it, and the cluster's roles."""
    with postgres.connect(settings) as conn:
        oid = conn.execute("SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()").fetchone()
        rows = {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) FROM {table} t"
            ).fetchone()
            for (table,) in conn.execute(USER_TABLES).fetchall()
        }
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcanlogin, rolinherit FROM pg_catalog.pg_roles ORDER BY 1"
        ).fetchall()
    schema = subprocess.run(
        [postgres.tool("pg_dump"), "--schema-only", "--no-password"],
        env=postgres.child_env(settings),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    schema = "\n".join(line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))
    return {"database oid": oid, "rows": rows, "schema": schema, "roles": roles}


def scratch_databases(settings) -> list[str]:
    """Scratch databases on the server (a replaced one may still be in its background drop)."""
    with postgres.connect(scratch_database.maintenance(settings)) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'archivist\\_scratch\\_%'"
            ).fetchall()
        ]


def loading(settings, table: str) -> bool:
    """Whether a parallel restore's connection is running the COPY into `table`."""
    with postgres.connect(settings) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = %s AND query LIKE %s",
                (parallel_restore.APPLICATION_NAME, f"COPY {table} %"),
            ).fetchone()[0]
        )


@pytest.fixture
def changed_after_backup(heavy_table, pg_settings):
    """A bundle of the database with the heavy table, and the database changed since, so that
    a restore that went through would show."""
    made = backup.run_backup(jobs=("postgres",))
    with postgres.connect(pg_settings) as conn:
        conn.execute("DELETE FROM public.heavy WHERE id <= 1000")
        conn.execute("CREATE TABLE public.since_the_backup (id int PRIMARY KEY)")
        conn.execute("INSERT INTO public.since_the_backup VALUES (1), (2)")
    yield made["key"]
    start_servers()
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.since_the_backup")


def test_postgres_killed_during_a_parallel_restore_leaves_the_target_as_it_was(
    changed_after_backup, pg_settings, backups_settings, restart_after
):
    store = BackupStore(backups_settings)
    key = BackupKey.parse(changed_after_backup)
    before = fingerprint(pg_settings)
    job = Background(
        lambda: restore.restore_job(
            "postgres", lambda: store.open_bundle(key), pg_settings, "replace", RestoreOptions(postgres_jobs=3)
        )
    )
    wait_until(lambda: loading(pg_settings, "public.heavy"), what="the parallel restore to load the heavy table")
    kill_server("postgres")
    job.join()
    assert isinstance(job.error, ArchivistError), job.error
    assert "parallel restore into database 'archivist_demo'" in str(job.error)
    assert "the database is unchanged" in str(job.error)
    start_servers()
    assert fingerprint(pg_settings) == before
    # the scratch database the dead server kept is dropped by the next parallel restore's sweep
    assert scratch_databases(pg_settings)
    with postgres.connect(scratch_database.maintenance(pg_settings)) as conn:
        scratch_database.sweep(conn)
    assert scratch_databases(pg_settings) == []


def _dump(settings) -> bytes:
    return subprocess.run(
        [postgres.tool("pg_dump"), "--format=plain", "--no-owner", "--no-privileges", "--no-password"],
        env=postgres.child_env(settings),
        capture_output=True,
        check=True,
    ).stdout


@pytest.fixture
def keyed(seeded, pg_settings):
    """A table with a primary key and a check, 200,000 rows, dumped; then the database changed."""
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.keyed")
        conn.execute("CREATE TABLE public.keyed (id int PRIMARY KEY, body text CHECK (body <> 'forbidden'))")
        conn.execute("INSERT INTO public.keyed SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
    dump = _dump(pg_settings)
    with postgres.connect(pg_settings) as conn:
        conn.execute("UPDATE public.keyed SET body = 'changed since the dump' WHERE id <= 10")
    yield dump
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.keyed")


@pytest.mark.parametrize(
    "forged_row, refused",
    [
        (b"7\tthe same id twice\n", "could not create unique index"),  # met when the key is built on the loaded table
        (b"200001\tforbidden\n", "violates check constraint"),  # met by the COPY itself
    ],
    ids=["duplicate-key", "check-violation"],
)
def test_a_row_the_target_rejects_leaves_the_target_as_it_was(keyed, pg_settings, forged_row, refused):
    copy = b"COPY public.keyed (id, body) FROM stdin;\n"
    assert keyed.count(copy) == 1
    forged = keyed.replace(copy, copy + forged_row)
    plan = dump_plan.scan(io.BytesIO(forged))
    before = fingerprint(pg_settings)
    with pytest.raises(JobFailedError) as failed:
        parallel_restore.restore(pg_settings, io.BytesIO(forged), "replace", plan, jobs=2)
    assert "the database is unchanged" in str(failed.value)
    assert refused in str(failed.value)
    assert fingerprint(pg_settings) == before
    assert scratch_databases(pg_settings) == []
    # the same dump without the forged row restores
    parallel_restore.restore(pg_settings, io.BytesIO(keyed), "replace", plan, jobs=2)
    after = fingerprint(pg_settings)
    assert after["database oid"] != before["database oid"]
    with postgres.connect(pg_settings) as conn:
        changed = conn.execute("SELECT count(*) FROM public.keyed WHERE body = 'changed since the dump'").fetchone()
    assert changed == (0,)
