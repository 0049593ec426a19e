"""Each table's rows read back from a restored database digest exactly as the dump's COPY blocks
do, whatever the types: the drill raises no false alarm. Against the real server."""

from __future__ import annotations

import dataclasses
import io
import secrets

import pytest
from psycopg import sql

from archivist.drill import tables
from archivist.sources.postgres import job
from archivist.transport.staging import LocalStaging

SCHEMA = r"""
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Mixed ""Case"" Table" ("Col, A" text, b int);
INSERT INTO "Odd Schema"."Mixed ""Case"" Table" VALUES (E'tab\there, newline\nthere, back\\slash', 1), (NULL, 2);
CREATE TABLE kinds (
    id bigserial PRIMARY KEY, at timestamptz, d date, f double precision, r real, n numeric(30, 10),
    b bytea, j jsonb, a text[], i interval, t time with time zone, u uuid,
    upper_name text GENERATED ALWAYS AS (upper(j->>'name')) STORED
);
INSERT INTO kinds (at, d, f, r, n, b, j, a, i, t, u) VALUES
    ('2026-12-04 23:00:00.123456+05:30', '2026-02-28', 0.1 + 0.2, 1.0e-7, 12345678901234567890.0123456789,
     '\x00ff5c0a'::bytea, '{"name": "Åsa", "n": 1.50}', ARRAY['a,b', NULL, 'c"d'], '1 day 02:03:04.5',
     '10:00+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    (NULL, NULL, 'NaN', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_later PARTITION OF events DEFAULT;
INSERT INTO events SELECT g, DATE '2026-01-01' + g FROM generate_series(1, 1000) g;
CREATE TABLE nothing ();
"""


@pytest.fixture
def two_databases(pg_settings):
    names = [f"archivist_drilltest_{secrets.token_hex(4)}" for _ in range(2)]
    with job.connect(pg_settings) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield tuple(dataclasses.replace(pg_settings, dbname=name) for name in names)
    with job.connect(pg_settings) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_rows_read_back_digest_as_the_dump_does(two_databases, tmp_path):
    source, target = two_databases
    with job.connect(source) as conn:
        conn.execute(SCHEMA)
    staging = LocalStaging(parent=str(tmp_path))
    result = job.dump(source, staging, "abcdefghijk")
    path = result.artifacts[0].path
    with staging.open(path) as sql_file:
        dump = tables.read_dump(sql_file)
    assert result.counts["rows"] == {name: digest.count for name, digest in dump.rows.items()}
    assert result.counts["rows"]['"Odd Schema"."Mixed ""Case"" Table"'] == 2
    assert result.counts["rows"]["public.events_2026"] == 364

    with staging.open(path) as sql_file:
        job.restore(target, sql_file, "empty")
    count, restored = tables.read_database(target, target.dbname, dump)
    assert count == result.counts["tables"]
    assert {n: d.as_dict() for n, d in restored.items()} == {n: d.as_dict() for n, d in dump.rows.items()}

    with job.connect(target) as conn:  # one value changed in the restored copy: its table differs
        conn.execute("UPDATE kinds SET f = f + 1e-15 WHERE f < 1")
    _, changed = tables.read_database(target, target.dbname, dump)
    assert [n for n in dump.rows if changed[n].total != dump.rows[n].total] == ["public.kinds"]


def test_a_table_the_restore_did_not_make_is_missing_not_an_error(two_databases):
    _, target = two_databases
    dump = tables.read_dump(io.BytesIO(b"COPY public.gone (a) FROM stdin;\n1\n\\.\n"))
    count, restored = tables.read_database(target, target.dbname, dump)
    assert count == 0 and restored == {}
