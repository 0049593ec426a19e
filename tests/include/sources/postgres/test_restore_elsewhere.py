"""A PostgreSQL restore into other databases than the ones backed up, against the real server:
the targets are created when missing and end up as the originals were, and the originals, each
fingerprinted by pg_dump before and after, are never touched."""

from __future__ import annotations

import dataclasses
import secrets

import psycopg
import pytest
from psycopg import sql

from archivist.errors import ConfigurationError, TargetNotEmptyError
from archivist.format.bundle_index import BundleSource
from archivist.runner import restore
from archivist.sources.base import DumpOptions, RestoreOptions
from tests.include.sources.postgres.test_fidelity import _admin, _bundle, _pg_dump


@pytest.fixture
def originals(pg_settings):
    """Two databases with data (the connection's stand-in and an extra one), and the names of two
    targets that do not exist yet; all four dropped after."""
    token = secrets.token_hex(4)
    main, other = f"archivist_orig_{token}", f"archivist_extra_{token}"
    targets = [f"archivist_into_{token}", f"archivist_into_extra_{token}"]
    with _admin(pg_settings) as conn:
        for name in (main, other):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    main_settings, other_settings = (dataclasses.replace(pg_settings, dbname=n) for n in (main, other))
    with psycopg.connect(**main_settings.connect_args(), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL, note text)")
        conn.execute("INSERT INTO orders SELECT i, i * 1.5, 'order ' || i FROM generate_series(1, 250) i")
        conn.execute("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id serial PRIMARY KEY, amount int)")
        conn.execute("INSERT INTO billing.invoices (amount) SELECT i FROM generate_series(1, 40) i")
    with psycopg.connect(**other_settings.connect_args(), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'in the extra database'), (2, 'ünïcödé')")
    yield main_settings, other_settings, targets
    with _admin(pg_settings) as conn:
        for name in (main, other, *targets):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _rows(settings, query: str) -> list[tuple]:
    with psycopg.connect(**settings.connect_args()) as conn:
        return conn.execute(query).fetchall()


def _exists(settings, name: str) -> bool:
    return bool(_rows(settings, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def test_restore_into_other_databases_leaves_the_originals_untouched(originals, tmp_path):
    main, other, (into, into_extra) = originals
    path, key = _bundle(tmp_path, main, DumpOptions(postgres_databases=(other.dbname,)))
    before = {"main": _pg_dump(main), "other": _pg_dump(other)}
    options = RestoreOptions(postgres_database=into, postgres_database_map=((other.dbname, into_extra),))
    run = lambda mode, **kw: restore.run_restore(  # noqa: E731
        BundleSource.file(path), key, ("postgres",), mode, options, settings={"postgres": main}, **kw
    )

    dry = run("empty", dry_run=True)
    assert dry["restored"]["postgres"]["database"] == into
    assert dry["restored"]["postgres"]["databases"] == [into_extra]
    assert not _exists(main, into) and not _exists(main, into_extra), "a dry run created a database"

    result = run("empty")
    assert result["problems"] == []
    got = result["restored"]["postgres"]
    assert got["database"] == into and got["tables"] == 2
    assert got["databases"] == {into_extra: {"tables": 1, "rows_estimate": 2, "from": other.dbname}}
    target, target_extra = (dataclasses.replace(main, dbname=n) for n in (into, into_extra))
    assert _pg_dump(target) == before["main"], "the new database differs from the one backed up"
    assert _pg_dump(target_extra) == before["other"]
    assert _rows(target, "SELECT count(*), sum(total) FROM orders") == [(250, sum(i * 1.5 for i in range(1, 251)))]
    assert {"main": _pg_dump(main), "other": _pg_dump(other)} == before, "an original database was touched"

    # the targets now hold data: empty mode refuses them, not the originals, and writes nothing
    with pytest.raises(TargetNotEmptyError, match=f"database '{into}' holds 2 table.*'{into_extra}' holds 1"):
        run("empty")
    # replace mode drops and recreates only in the targets; a count of the target is compared
    # with meta.json's count of the database it came from
    with psycopg.connect(**target_extra.connect_args(), autocommit=True) as conn:
        conn.execute("DELETE FROM notes WHERE id = 2")
    drops: dict = {}
    result = run("replace", confirm=drops.update)
    assert result["problems"] == []
    assert all(into in line or into_extra in line for line in drops["postgres"]), drops
    assert main.dbname not in " ".join(drops["postgres"]) and other.dbname not in " ".join(drops["postgres"])
    assert _pg_dump(target_extra) == before["other"]
    assert {"main": _pg_dump(main), "other": _pg_dump(other)} == before, "an original database was touched"
    wrong = {"databases": {into_extra: {"tables": 3, "from": other.dbname}}, "tables": 2}
    assert restore.compare(result["counts"], {"postgres": wrong}) == [
        f"postgres: database {other.dbname} (into {into_extra}) has 3 tables restored, bundle has 1"
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RestoreOptions(postgres_database=""), "postgres_database '' is empty"),
        (RestoreOptions(postgres_database="x" * 64), "postgres_database 'x{64}' is longer than 63 bytes"),
        (RestoreOptions(postgres_database="template1"), "is a template database"),
        (RestoreOptions(postgres_database_map=(("a", "b\0"),)), "postgres_database_map: a target database"),
        (RestoreOptions(postgres_database_map=(("a", "c"), ("b", "c"))), "restores two databases into c"),
        (RestoreOptions(postgres_database="c", postgres_database_map=(("a", "c"),)), "also a target"),
    ],
)
def test_target_database_names_are_checked_before_anything_is_read(options, message):
    with pytest.raises(ConfigurationError, match=message):
        restore.run_restore(lambda: pytest.fail("the bundle was read"), "k", ("postgres",), options=options)


def test_a_map_naming_a_database_the_bundle_lacks_or_the_main_target_is_refused(originals, tmp_path):
    main, other, (into, _) = originals
    path, key = _bundle(tmp_path, main, DumpOptions(postgres_databases=(other.dbname,)))
    lacking = f"nope that the bundle does not hold.*{other.dbname}"
    for options, message in [
        (RestoreOptions(postgres_database_map=(("nope", into),)), lacking),
        (RestoreOptions(postgres_database_map=((other.dbname, main.dbname),)), "where the connection's own dump goes"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            restore.run_restore(
                BundleSource.file(path), key, ("postgres",), "empty", options, settings={"postgres": main}
            )
    assert not _exists(main, into), "a refused restore created a database"
