"""The rows of each table counted as a plain dump streams past, however the stream is cut."""

from __future__ import annotations

import io
import random

import pytest

from archivist.sources.postgres.copy_rows import CopyRowCounter, CopyTable, parse_copy_header, split_name

DUMP = (
    b"--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\n"
    b"CREATE TABLE app.customers (id integer, name text);\n"
    b"CREATE FUNCTION f() RETURNS void AS $$\nCOPY inside a function body\n$$;\n"
    b"COPY app.customers (id, name) FROM stdin;\n1\tAda\n2\tends with a backslash dot \\\\.\n3\t\\N\n\\.\n\n"
    b'COPY public."Odd ""Name"""  FROM stdin;\n\\.\n\n'
    b"COPY public.audit_log (id) FROM stdin;\n" + b"".join(b"%d\n" % i for i in range(5000)) + b"\\.\n\n"
    b"CREATE INDEX ON app.customers (name);\n"
)
ROWS = {"app.customers": 3, 'public."Odd ""Name"""': 0, "public.audit_log": 5000}


def _count(data: bytes, sizes) -> CopyRowCounter:
    counter = CopyRowCounter(io.BytesIO(data))
    while counter.read(next(sizes)):
        pass
    return counter


@pytest.mark.parametrize("seed", range(200))
def test_every_cut_of_the_stream_gives_the_same_counts(seed):
    rng = random.Random(seed)
    counter = _count(DUMP, iter(lambda: rng.choice([1, 2, 3, 5, 7, 64, 4096]), None))
    assert counter.complete
    assert counter.rows == ROWS


def test_one_read_of_the_whole_dump():
    counter = _count(DUMP, iter(lambda: -1, None))
    assert counter.complete and counter.rows == ROWS


def test_the_bytes_pass_through_unchanged():
    counter, out = CopyRowCounter(io.BytesIO(DUMP)), b""
    while data := counter.read(1000):
        out += data
    assert out == DUMP


def test_a_dump_cut_inside_a_block_is_not_complete():
    counter = _count(DUMP[: DUMP.index(b"42\n")], iter(lambda: 100, None))
    assert not counter.complete


def test_headers_as_pg_dump_prints_them():
    assert parse_copy_header("COPY public.t (a, b) FROM stdin;") == CopyTable("public.t", ("a", "b"))
    assert parse_copy_header('COPY "My S"."T ""x""" ("Col, A", b) FROM stdin;') == CopyTable(
        '"My S"."T ""x"""', ('"Col, A"', "b")
    )
    assert parse_copy_header("COPY public.empty  FROM stdin;") == CopyTable("public.empty", ())
    assert split_name('"My S"."T ""x"""') == ("My S", 'T "x"')


@pytest.mark.parametrize(
    "line",
    [
        "COPY (SELECT pg_read_file('/etc/passwd')) TO stdout;",
        "COPY public.t (a; DROP TABLE x) FROM stdin;",
        "COPY t (a) FROM stdin;",
        "COPY public.t (a) FROM '/tmp/file';",
        "COPY public.T (a) FROM stdin;",
    ],
)
def test_anything_else_is_no_header(line):
    assert parse_copy_header(line) is None
