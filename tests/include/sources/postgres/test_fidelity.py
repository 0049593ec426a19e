"""What a PostgreSQL application keeps beyond plain tables comes back from a backup: extensions,
large objects, materialized views (with their rows), partitioned tables, generated columns and
sequences set past their table's largest id, into an empty database and over the original in
replace mode. Against the real server, compared with pg_dump's own view of each database."""

from __future__ import annotations

import dataclasses
import secrets
import subprocess

import psycopg
import pytest
from psycopg import sql

from archivist.errors import JobFailedError, VerificationError
from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, restore
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.postgres import dump_plan, job, parallel_restore
from archivist.transport.staging import LocalStaging

SCHEMA = """
CREATE EXTENSION citext;
CREATE TABLE customers (id bigserial PRIMARY KEY, email citext UNIQUE NOT NULL,
                        name text, name_upper text GENERATED ALWAYS AS (upper(name)) STORED);
INSERT INTO customers (email, name) VALUES ('Ana@Example.org', 'Ana'), ('bo@example.org', 'Bo');
SELECT setval('customers_id_seq', 5000);  -- past the largest id: the next customer gets 5001
CREATE TABLE events (id bigint, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_later PARTITION OF events DEFAULT;
INSERT INTO events VALUES (1, '2026-05-01', 'signup'), (2, '2031-02-03', 'renewal');
CREATE MATERIALIZED VIEW customer_events AS
  SELECT c.email, count(e.id) AS n FROM customers c LEFT JOIN events e ON e.id = c.id GROUP BY c.email;
CREATE TABLE documents (id int PRIMARY KEY, body oid);
INSERT INTO documents VALUES (1, lo_from_bytea(0, 'a large object''s bytes'::bytea));
"""


def _admin(settings) -> psycopg.Connection:
    return psycopg.connect(
        host=settings.host, port=settings.port, user=settings.user, password=settings.password,
        dbname=settings.dbname, autocommit=True,
    )  # fmt: skip


@pytest.fixture
def databases(pg_settings):
    """Three new, empty databases, as settings of each; dropped after."""
    names = [f"archivist_fid_{secrets.token_hex(4)}" for _ in range(3)]
    with _admin(pg_settings) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield tuple(dataclasses.replace(pg_settings, dbname=name) for name in names)
    with _admin(pg_settings) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=[1, 2], ids=["one-transaction", "parallel"])
def restore_dump(request):
    """A dump restored over one psql transaction, or over two connections built aside and swapped in."""
    return lambda settings, dump, mode, plan=None: parallel_restore.restore(settings, dump, mode, plan, request.param)


def _pg_dump(settings) -> str:
    """The database as pg_dump sees it, owners and privileges included (without the random key
    of its \\restrict lines)."""
    out = subprocess.run(
        [job.tool("pg_dump"), "--no-password"], env=job.child_env(settings), capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def _facts(settings) -> dict:
    """What an application would notice first: rows behind each feature, and the next ids."""
    with psycopg.connect(**_conninfo(settings)) as conn:
        one = lambda query: conn.execute(query).fetchall()  # noqa: E731
        return {
            "customers": one("SELECT id, email, name_upper FROM customers ORDER BY id"),
            "citext lookup": one("SELECT id FROM customers WHERE email = 'ANA@EXAMPLE.ORG'"),
            "partitions": one("SELECT tableoid::regclass::text, id FROM events ORDER BY id"),
            "materialized view": one("SELECT email, n FROM customer_events ORDER BY email"),
            "large object": one("SELECT convert_from(lo_get(body), 'UTF8') FROM documents"),
            "next customer id": one("SELECT nextval('customers_id_seq')"),
        }


def _conninfo(settings) -> dict:
    return {
        "host": settings.host, "port": settings.port, "user": settings.user, "password": settings.password,
        "dbname": settings.dbname,
    }  # fmt: skip


def test_extensions_large_objects_views_partitions_and_sequences_round_trip(databases, tmp_path, restore_dump):
    original, empty, _ = databases
    with psycopg.connect(**_conninfo(original), autocommit=True) as conn:
        conn.execute(SCHEMA)
    before = _pg_dump(original)

    staging = LocalStaging(parent=str(tmp_path))
    job.dump(original, staging, "fidelityid01")
    path = bundle.postgres_path("fidelityid01")

    with staging.open(path) as dump:
        restore_dump(empty, dump, "empty")
    assert _pg_dump(empty) == before
    facts = _facts(empty)
    assert facts["next customer id"] == [(5001,)]
    assert facts["large object"] == [("a large object's bytes",)]
    assert facts["materialized view"] == [("Ana@Example.org", 1), ("bo@example.org", 1)]
    assert [table for table, _ in facts["partitions"]] == ["events_2026", "events_later"]

    # replace mode over the original: everything the dump holds is dropped and recreated
    with staging.open(path) as dump:
        plan = dump_plan.scan(dump)
    with staging.open(path) as dump:
        restore_dump(original, dump, "replace", plan)
    assert _pg_dump(original) == before
    assert _facts(original) == facts


PRIVILEGES = """
CREATE TABLE ledger (id int PRIMARY KEY, amount numeric);
CREATE SCHEMA reports;
CREATE VIEW reports.totals AS SELECT sum(amount) AS total FROM public.ledger;
ALTER TABLE ledger OWNER TO {owner};
ALTER SCHEMA reports OWNER TO {owner};
ALTER VIEW reports.totals OWNER TO {owner};
GRANT SELECT ON ledger TO {reader};
GRANT USAGE ON SCHEMA reports TO {reader};
GRANT SELECT ON reports.totals TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA reports GRANT SELECT ON TABLES TO {reader};
"""


@pytest.fixture
def roles(pg_settings, databases):
    """An owner role and a reader role of this test's own; dropped afterwards, with what they own
    or were granted in the test's databases."""
    owner, reader = (f"fid_{what}_{secrets.token_hex(3)}" for what in ("owner", "reader"))
    with _admin(pg_settings) as conn:
        for role in (owner, reader):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    yield owner, reader
    for role in (reader, owner):  # one at a time: the owner's default privileges name the reader
        for database in databases:
            with _admin(pg_settings) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.dbname,)).fetchone():
                    continue
            with _admin(database) as conn:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        with _admin(pg_settings) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _privileges(settings, owner: str, reader: str) -> dict:
    """What `\\dp` and `\\ddp` would show about the test's objects, as a user would check it."""
    with psycopg.connect(**_conninfo(settings)) as conn:
        one = lambda query, *args: conn.execute(query, args).fetchone()[0]  # noqa: E731
        return {
            "ledger owner": one("SELECT tableowner FROM pg_tables WHERE tablename = 'ledger'"),
            "schema owner": one("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'reports'"),
            "reader reads ledger": one("SELECT has_table_privilege(%s, 'public.ledger', 'SELECT')", reader),
            "reader reads totals": one("SELECT has_table_privilege(%s, 'reports.totals', 'SELECT')", reader),
            "default privileges": one(
                "SELECT count(*) FROM pg_default_acl WHERE defaclrole = %s::regrole"
                " AND array_to_string(defaclacl, ',') LIKE %s",
                owner,
                f"%{reader}=r/%",
            ),
        }


def _with_privileges(databases, roles, tmp_path, keep: bool, restore_dump) -> tuple[dict, dict]:
    (original, empty, _), (owner, reader) = databases, roles
    with psycopg.connect(**_conninfo(original), autocommit=True) as conn:
        conn.execute(PRIVILEGES.format(owner=owner, reader=reader))
    staging = LocalStaging(parent=str(tmp_path))
    job.dump(original, staging, "fidelityid02", privileges=keep)
    with staging.open(bundle.postgres_path("fidelityid02")) as dump:
        restore_dump(empty, dump, "empty")
    return _privileges(original, owner, reader), _privileges(empty, owner, reader)


def test_owners_grants_and_default_privileges_come_back_when_kept(databases, roles, tmp_path, restore_dump):
    before, after = _with_privileges(databases, roles, tmp_path, True, restore_dump)
    assert before == {
        "ledger owner": roles[0],
        "schema owner": roles[0],
        "reader reads ledger": True,
        "reader reads totals": True,
        "default privileges": 1,
    }
    assert after == before
    assert _pg_dump(databases[1]) == _pg_dump(databases[0])


def test_by_default_the_dump_is_role_neutral(databases, roles, tmp_path, pg_settings, restore_dump):
    before, after = _with_privileges(databases, roles, tmp_path, False, restore_dump)
    assert before["reader reads ledger"] is True
    assert after == {
        "ledger owner": pg_settings.user,  # owned by whoever restored it
        "schema owner": pg_settings.user,
        "reader reads ledger": False,
        "reader reads totals": False,
        "default privileges": 0,
    }


def test_a_bundle_with_owners_names_the_missing_role(databases, roles, tmp_path, pg_settings, restore_dump):
    (original, empty, _), (owner, reader) = databases, roles
    with psycopg.connect(**_conninfo(original), autocommit=True) as conn:
        conn.execute(PRIVILEGES.format(owner=owner, reader=reader))
    staging = LocalStaging(parent=str(tmp_path))
    job.dump(original, staging, "fidelityid03", privileges=True)
    with psycopg.connect(**_conninfo(original), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
    with _admin(pg_settings) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))
    with staging.open(bundle.postgres_path("fidelityid03")) as dump, pytest.raises(JobFailedError) as failed:
        restore_dump(empty, dump, "empty")
    assert f'role "{reader}" does not exist' in str(failed.value)
    assert str(failed.value).endswith(
        "The bundle keeps owners and privileges: create the roles it names in the target cluster first "
        "(postgres_roles creates the ones a bundle holds), or restore a backup taken without postgres_privileges"
    )
    with psycopg.connect(**_conninfo(empty)) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname <> 'pg_catalog' AND schemaname <> 'information_schema'"
        ).fetchone() == (0,)


def _bundle(tmp_path, settings, options: DumpOptions) -> tuple[str, str]:
    """A local bundle of the postgres job alone, backed up from `settings`: (its path, its key)."""
    key = BackupKey.new()
    staging = LocalStaging(parent=str(tmp_path))
    result = backup.run_job("postgres", key, staging, settings, options)
    path = tmp_path / key.object_key
    with open(path, "wb") as out:
        backup.assemble(out, key, [result], staging.open)
    return str(path), key.name


def test_more_databases_each_restorable_alone_and_roles_when_asked(databases, roles, tmp_path, pg_settings):
    (main, other, target), (owner, reader) = databases, roles
    with psycopg.connect(**_conninfo(main), autocommit=True) as conn:
        conn.execute(PRIVILEGES.format(owner=owner, reader=reader))
    with psycopg.connect(**_conninfo(other), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE notes (id int PRIMARY KEY, body text); GRANT SELECT ON notes TO {reader};")
        conn.execute("INSERT INTO notes VALUES (1, 'kept in a second database')")
    before = {"main": _pg_dump(main), "other": _pg_dump(other)}
    options = DumpOptions(postgres_privileges=True, postgres_databases=(other.dbname,), postgres_roles=True)
    path, key = _bundle(tmp_path, main, options)

    report = restore.verify(BundleSource.file(path))
    assert report.meta["format_version"] == 2  # a version 1 reader would take any .sql for the one dump
    assert report.meta["counts"]["jobs.postgres"]["databases"][other.dbname]["tables"] == 1
    backup_id = report.meta["backup_id"]
    assert {p for p in report.members if p.startswith("jobs.postgres/")} == {
        bundle.postgres_path(backup_id),
        bundle.postgres_database_path(other.dbname, backup_id),
        bundle.postgres_roles_path(backup_id),
    }

    # the second database and the reader role are lost; the main database is restored elsewhere
    with _admin(pg_settings) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other.dbname)))
    with _admin(main) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
    with _admin(pg_settings) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))

    with pytest.raises(
        VerificationError, match=f"holds no dump of database\\(s\\) elsewhere; it holds extra databases: {other.dbname}"
    ):
        restore.run_restore(
            BundleSource.file(path), key, ("postgres",), "empty", RestoreOptions(postgres_databases=("elsewhere",)),
            settings={"postgres": target},
        )  # fmt: skip
    result = restore.run_restore(
        BundleSource.file(path), key, ("postgres",), "empty", RestoreOptions(postgres_roles=True),
        settings={"postgres": target},
    )  # fmt: skip

    assert result["problems"] == []
    assert result["restored"]["postgres"]["databases"] == {other.dbname: {"tables": 1, "rows_estimate": 1}}
    with _admin(pg_settings) as conn:
        assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (reader,)).fetchone() == (False,)
    assert _pg_dump(target) == before["main"]
    assert _pg_dump(other) == before["other"]
