"""The PostgreSQL job: `pg_dump` to plain SQL, and `psql` to restore it.

The password travels in the child's environment (PGPASSWORD), never in argv,
and the SQL streams through in chunks: pg_dump's stdout goes straight to the
staging upload, the bundle member goes straight to psql's stdin.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import IO

import psycopg

from archivist import bundle
from archivist.bundle import JobResult
from archivist.config import PostgresSettings
from archivist.errors import ConfigurationError, JobFailedError, TargetNotEmptyError, UnreachableError
from archivist.progress import Progress, ProgressReader

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# No --clean: its DROP section cannot run on an empty database (pg_dump emits
# `CREATE OR REPLACE VIEW` placeholders there), so `replace` drops schemas itself.
# Owners and grants are left out so the dump restores on a server with other roles.
PG_DUMP_ARGS = ["--format=plain", "--no-owner", "--no-privileges", "--no-password"]
CREATE_RE = re.compile(
    rb"^CREATE (?:SCHEMA|TABLE|UNLOGGED TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|TYPE|FUNCTION|DOMAIN) "
    rb"(?:IF NOT EXISTS )?(\"[^\"]+\"|[a-z_][a-z0-9_$]*)[.;\s(]"
)
PSQL_ARGS = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", "-f", "-"]
USER_TABLES = """
    SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, 0)::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
    ORDER BY 1
"""


def _where(settings: PostgresSettings) -> str:
    return f"database '{settings.dbname}' at {settings.host}:{settings.port} ({settings.source})"


def connect(settings: PostgresSettings) -> psycopg.Connection:
    """A connection, or an error that names the database and what to fix."""
    try:
        return psycopg.connect(
            host=settings.host, port=settings.port, user=settings.user, password=settings.password or None,
            dbname=settings.dbname, connect_timeout=5, autocommit=True,
        )
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "password" in reason or "authentication" in reason or "role" in reason:
            raise ConfigurationError(f"cannot log in to {_where(settings)}: {reason}; check the user and password") from None
        if "does not exist" in reason:
            raise ConfigurationError(f"cannot open {_where(settings)}: {reason}") from None
        raise UnreachableError(f"cannot reach {_where(settings)}: {reason}") from None


def server_version(settings: PostgresSettings) -> tuple[int, str]:
    """The server's version number (150018) and its text (15.18)."""
    with connect(settings) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])
        text = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return num, text


def tool(name: str) -> str:
    """The path of pg_dump or psql, or an error saying how to install it."""
    path = shutil.which(name)
    if not path:
        raise ConfigurationError(f"{name} is not installed: install the PostgreSQL client (apt-get install postgresql-client)")
    return path


def tool_major(name: str) -> int:
    out = subprocess.run([tool(name), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if not match:
        raise ConfigurationError(f"cannot read the version of {name} from {out!r}")
    return int(match.group(1))


def check(settings: PostgresSettings) -> str:
    """Logs in and checks that pg_dump and psql are at least the server's major version."""
    num, text = server_version(settings)
    server_major = num // 10000
    for name in ("pg_dump", "psql"):
        major = tool_major(name)
        if major < server_major:
            raise ConfigurationError(
                f"{name} {major} is older than the PostgreSQL {text} server of {_where(settings)}: "
                f"install postgresql-client-{server_major} or newer"
            )
    return text


def user_tables(settings: PostgresSettings) -> list[tuple[str, int]]:
    """Every user table with its estimated row count."""
    with connect(settings) as conn:
        return [(name, int(rows)) for name, rows in conn.execute(USER_TABLES).fetchall()]


def counts(settings: PostgresSettings) -> dict[str, int]:
    tables = user_tables(settings)
    return {"tables": len(tables), "rows_estimate": sum(rows for _, rows in tables)}


def dump(settings: PostgresSettings, staging, backup_id: str) -> JobResult:
    """Streams `pg_dump` of the database into `staging` as plain SQL."""
    started = time.monotonic()
    version = check(settings)
    with connect(settings) as conn:  # fresh statistics make the row estimate meaningful
        conn.execute("ANALYZE")
    job_counts = counts(settings)
    path = bundle.postgres_path(backup_id)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tool("pg_dump"), *PG_DUMP_ARGS], stdout=subprocess.PIPE, stderr=errors,
            env={**os.environ, **settings.libpq_env()},
        )
        progress = Progress(f"pg_dump {settings.dbname}")
        try:
            artifact = staging.put_stream(path, ProgressReader(proc.stdout, progress))
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise JobFailedError(f"pg_dump of {_where(settings)} failed (exit {code}): {_tail(errors)}")
    progress.done()
    return JobResult("postgres", [artifact], job_counts, time.monotonic() - started, version)


def schemas_in_dump(sql: IO[bytes]) -> list[str]:
    """The schemas a plain pg_dump creates objects in, read line by line, skipping COPY data."""
    found: set[str] = set()
    in_copy = False
    for line in io.BufferedReader(sql, CHUNK):
        if in_copy:
            in_copy = line.rstrip(b"\r\n") != b"\\."
        elif line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            in_copy = True
        elif match := CREATE_RE.match(line):
            found.add(match.group(1).decode().strip('"'))
    return sorted(found)


def replace_prologue(schemas: list[str]) -> bytes:
    """SQL that drops the schemas the dump recreates (and nothing else), in the restore's transaction."""
    statements = []
    for schema in schemas:
        quoted = '"' + schema.replace('"', '""') + '"'
        statements.append(f"DROP SCHEMA IF EXISTS {quoted} CASCADE;")
        if schema == "public":  # pg_dump assumes public exists as initdb made it, and only dumps differences
            statements += ["CREATE SCHEMA public;", "ALTER SCHEMA public OWNER TO pg_database_owner;",
                           "GRANT USAGE ON SCHEMA public TO PUBLIC;",
                           "COMMENT ON SCHEMA public IS 'standard public schema';"]
    return ("\n".join(statements) + "\n").encode()


def restore(settings: PostgresSettings, sql: IO[bytes], mode: str = "empty",
            replace_schemas: list[str] | None = None) -> dict[str, int]:
    """Runs the dump's SQL through psql in one transaction, stopping at the first error.

    In `replace` mode the schemas in `replace_schemas` (those the dump holds) are
    dropped first, inside the same transaction, so a failure leaves them as they were.
    """
    check(settings)
    if mode == "empty":
        existing = user_tables(settings)
        if existing:
            names = ", ".join(name for name, _ in existing[:5]) + (" …" if len(existing) > 5 else "")
            raise TargetNotEmptyError(
                f"{_where(settings)} already holds {len(existing)} table(s) ({names}): restore with mode "
                "'replace' to drop and recreate what the bundle contains, or empty the database first"
            )
    progress = Progress(f"psql {settings.dbname}")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tool("psql"), *PSQL_ARGS], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
            env={**os.environ, **settings.libpq_env()},
        )
        try:
            if mode == "replace" and replace_schemas:
                log.info("replace mode: dropping and recreating schema(s) %s", ", ".join(replace_schemas))
                proc.stdin.write(replace_prologue(replace_schemas))
            while chunk := sql.read(CHUNK):
                proc.stdin.write(chunk)
                progress.add(len(chunk))
            proc.stdin.close()
        except BrokenPipeError:  # psql stopped at an error; its stderr says which
            pass
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise JobFailedError(f"psql restore into {_where(settings)} failed and was rolled back (exit {code}): {_tail(errors)}")
    progress.done()
    with connect(settings) as conn:
        conn.execute("ANALYZE")
    return counts(settings)


def _tail(stream: IO[bytes], limit: int = 2000) -> str:
    text = stream.read().decode(errors="replace").strip()
    return text[-limit:] if text else "no message"
