"""PostgreSQL in a drill: each table's rows as the bundle's dump holds them (its COPY blocks) and
as the scratch database holds them after the restore, counted and digested the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import psycopg.sql

from archivist.config import PostgresSettings
from archivist.drill.digest import LineDigest, chunks_of, split_lines
from archivist.format.streams import Readable
from archivist.sources.postgres import job
from archivist.sources.postgres.copy_rows import CopyTable, parse_copy_header, split_name, unquote

# The session pg_dump sets up before its COPY ... TO stdout, so rows read back print the same
# text (pg_dump.c, setup_connection); the time zone is the server's default on both sides.
DUMP_SESSION = (
    "SET datestyle = ISO",
    "SET intervalstyle = postgres",
    "SET extra_float_digits = 3",
    "SET row_security = off",
)
_TERMINATOR = b"\\."


@dataclass
class DumpTables:
    """What one dump holds: each table's COPY header and its rows' digest, and the encoding."""

    tables: dict[str, CopyTable] = field(default_factory=dict)
    rows: dict[str, LineDigest] = field(default_factory=dict)
    encoding: str = "UTF8"


def read_dump(sql: Readable) -> DumpTables:
    """Every COPY block of a plain dump, each row (line) added to its table's digest."""
    found = DumpTables()
    current: LineDigest | None = None
    for line in split_lines(chunks_of(sql)):
        if current is not None:
            if line == _TERMINATOR:
                current = None
            else:
                current.add(line)
        elif line.startswith(b"COPY "):
            table = parse_copy_header(line.decode("utf-8", "replace"))
            if table is not None:
                found.tables[table.name] = table
                current = found.rows.setdefault(table.name, LineDigest())
        elif line.startswith(b"SET client_encoding = '"):
            found.encoding = line.decode("ascii", "replace").split("'")[1]
    return found


def read_database(settings: PostgresSettings, dbname: str, dump: DumpTables) -> tuple[int, dict[str, LineDigest]]:
    """The user tables of database `dbname` on the server of `settings`, and each of the dump's
    tables read back there with the same columns, digested like the dump's rows."""
    target = dataclasses.replace(settings, dbname=dbname)
    tables = len(job.user_tables(target))
    got: dict[str, LineDigest] = {}
    with job.connect(target) as conn:
        conn.execute(psycopg.sql.SQL("SET client_encoding = {}").format(psycopg.sql.Literal(dump.encoding)))
        for statement in DUMP_SESSION:
            conn.execute(statement)
        for name, table in dump.tables.items():
            schema, relation = split_name(name)
            columns = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(unquote(c)) for c in table.columns)
            query = psycopg.sql.SQL("COPY {} {} TO STDOUT").format(
                psycopg.sql.Identifier(schema, relation),
                psycopg.sql.SQL("({})").format(columns) if table.columns else psycopg.sql.SQL(""),
            )
            digest = got[name] = LineDigest()
            try:
                with conn.cursor().copy(query) as copy:
                    for line in split_lines(bytes(chunk) for chunk in copy):
                        digest.add(line)
            except psycopg.errors.UndefinedTable:  # the restore did not make it: compared as missing
                del got[name]
    return tables, got
