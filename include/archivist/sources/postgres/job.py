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
from typing import IO, Any

import psycopg
import psycopg.sql

from archivist import config
from archivist.config import PostgresSettings
from archivist.errors import (
    POSTGRES_TLS_FIX,
    ConfigurationError,
    JobFailedError,
    TargetNotEmptyError,
    UnreachableError,
    VerificationError,
)
from archivist.format import bundle
from archivist.format.bundle import JobResult
from archivist.format.streams import Readable
from archivist.progress import Progress, ProgressReader
from archivist.sources.postgres import dump_plan, psql_script
from archivist.sources.postgres.copy_rows import CopyRowCounter
from archivist.sources.postgres.dump_plan import DumpPlan

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# No --clean: its DROP section cannot run on an empty database (pg_dump emits
# `CREATE OR REPLACE VIEW` placeholders there), so `replace` drops schemas itself.
# Owners and grants are left out so the dump restores on a server with other roles.
PG_DUMP_ARGS = ["--format=plain", "--no-password"]
ROLE_NEUTRAL = ["--no-owner", "--no-privileges"]  # unless the backup keeps owners and privileges
MISSING_ROLE = re.compile(r'ERROR:\s+role "[^"]*" does not exist')
LOCK_TIMEOUT = "canceling statement due to lock timeout"  # PostgreSQL's message, in pg_dump's stderr
PSQL_ARGS = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", "-f", "-"]
USER_TABLES = """
    SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, 0)::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
    ORDER BY 1
"""


# What a child process may see of the worker's environment: the worker's own secrets
# (AIRFLOW_CONN_*, BACKUP_SECRET_ACCESS_KEY, ...) must never reach a process a bundle can steer.
CHILD_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ")


def child_env(settings: PostgresSettings) -> dict[str, str]:
    """pg_dump's and psql's whole environment: PATH and locale, and this connection's PG* variables."""
    kept = {k: v for k, v in os.environ.items() if k in CHILD_ENV_KEEP or k.startswith("LC_")}
    return {**kept, **settings.libpq_env()}


def _where(settings: PostgresSettings) -> str:
    return f"database '{settings.dbname}' at {settings.host}:{settings.port} ({settings.source})"


def connect(settings: PostgresSettings) -> psycopg.Connection:
    """A connection, or an error that names the database and what to fix."""
    try:
        return psycopg.connect(**{"connect_timeout": 5, **settings.connect_args()}, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        tls = _tls_problem(str(exc))
        if tls:
            raise ConfigurationError(
                f"cannot open a TLS connection (sslmode={settings.sslmode}) to {_where(settings)}: {tls}; "
                f"{POSTGRES_TLS_FIX}"
            ) from None
        if "password" in reason or "authentication" in reason or "role" in reason:
            raise ConfigurationError(
                f"cannot log in to {_where(settings)}: {reason}; check the user and password"
            ) from None
        if "does not exist" in reason:
            raise ConfigurationError(f"cannot open {_where(settings)}: {reason}") from None
        raise UnreachableError(f"cannot reach {_where(settings)}: {reason}") from None


# libpq's words for a TLS handshake or certificate that failed, or a TLS file it could not use.
TLS_WORDS = ("SSL", "certificate", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")


def _tls_problem(message: str) -> str:
    """The line of libpq's message that says what failed about TLS, or "" when nothing did."""
    for line in message.splitlines():
        if any(word in line for word in TLS_WORDS):
            return line.rpartition(" failed: ")[2].strip() or line.strip()
    return ""


def database_exists(settings: PostgresSettings, dbname: str) -> bool:
    with connect(settings) as conn:
        return conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def ensure_database(settings: PostgresSettings, dbname: str) -> bool:
    """Creates database `dbname` on the server of `settings` when it does not exist; True if made."""
    if database_exists(settings, dbname):
        return False
    with connect(settings) as conn:
        try:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"database '{dbname}' does not exist and {_where(settings)}'s user may not create it: create it "
                f"first, or give the user CREATEDB ({str(exc).strip()})"
            ) from None
    log.info("created database %s", dbname)
    return True


def _one(conn: psycopg.Connection, query: str) -> Any:
    row = conn.execute(query).fetchone()
    if row is None:
        raise JobFailedError(f"PostgreSQL answered {query!r} with no row")
    return row[0]


def server_version(settings: PostgresSettings) -> tuple[int, str]:
    """The server's version number (150018) and its text (15.18)."""
    with connect(settings) as conn:
        num = int(_one(conn, "SHOW server_version_num"))
        text = str(_one(conn, "SHOW server_version")).split()[0]
    return num, text


def tool(name: str) -> str:
    """The path of pg_dump or psql, or an error saying how to install it."""
    path = shutil.which(name)
    if not path:
        raise ConfigurationError(
            f"{name} is not installed: install the PostgreSQL client (apt-get install postgresql-client)"
        )
    return path


def tool_version(name: str) -> tuple[int, int]:
    """The (major, minor) version of pg_dump or psql."""
    out = subprocess.run(
        [tool(name), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k in CHILD_ENV_KEEP},
    ).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        raise ConfigurationError(f"cannot read the version of {name} from {out!r}")
    return int(match.group(1)), int(match.group(2) or 0)


# The first minor release of each major whose psql has `\restrict` (restricted mode).
RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}


def check_server_and_tools(settings: PostgresSettings) -> str:
    """Logs in and checks that pg_dump and psql are at least the server's major version, and that
    psql can run a dump in restricted mode."""
    num, text = server_version(settings)
    server_major = num // 10000
    for name in ("pg_dump", "psql"):
        major, minor = tool_version(name)
        if major < server_major:
            raise ConfigurationError(
                f"{name} {major} is older than the PostgreSQL {text} server of {_where(settings)}: "
                f"install postgresql-client-{server_major} or newer"
            )
        if name == "psql" and major < 18 and minor < RESTRICT_SINCE.get(major, 10**6):
            since = f"{major}.{RESTRICT_SINCE[major]}" if major in RESTRICT_SINCE else "13.22"
            raise ConfigurationError(
                f"psql {major}.{minor} has no restricted mode (\\restrict, since {since}), which archivist needs to "
                f"restore a dump without running its backslash commands: upgrade postgresql-client-{major}"
            )
    return text


def user_tables(settings: PostgresSettings) -> list[tuple[str, int]]:
    """Every user table with its estimated row count."""
    with connect(settings) as conn:
        return [(name, int(rows)) for name, rows in conn.execute(USER_TABLES).fetchall()]


def counts(settings: PostgresSettings) -> dict[str, int]:
    tables = user_tables(settings)
    return {"tables": len(tables), "rows_estimate": sum(rows for _, rows in tables)}


def dump(
    settings: PostgresSettings, staging, backup_id: str, privileges: bool = False, path: str | None = None
) -> JobResult:
    """Streams `pg_dump` of the database into `staging` as plain SQL, at `path` (the bundle's one
    dump by default); with `privileges`, owners and privileges included."""
    started = time.monotonic()
    version = check_server_and_tools(settings)
    lock_wait = config.load_pg_lock_wait()
    with connect(settings) as conn:  # fresh statistics make the row estimate meaningful
        conn.execute(f"SET lock_timeout = {_literal(lock_wait)}")
        try:
            conn.execute("ANALYZE")
        except psycopg.errors.LockNotAvailable as exc:
            raise _locked_out(settings, lock_wait, str(exc).strip()) from None
    job_counts: dict[str, Any] = dict(counts(settings))
    path = path or bundle.postgres_path(backup_id)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [
                tool("pg_dump"),
                *PG_DUMP_ARGS,
                *([] if privileges else ROLE_NEUTRAL),
                f"--lock-wait-timeout={lock_wait}",
                *settings.libpq_args(),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=child_env(settings),
        )
        progress = Progress(f"pg_dump {settings.dbname}")
        assert proc.stdout is not None  # stdout=PIPE
        rows = CopyRowCounter(proc.stdout)  # each table's rows, exact, for the drill to compare with
        try:
            artifact = staging.put_stream(path, ProgressReader(rows, progress))
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            said = _tail(errors)
            if LOCK_TIMEOUT in said:
                raise _locked_out(settings, lock_wait, said)
            raise JobFailedError(f"pg_dump of {_where(settings)} failed (exit {code}): {said}")
    progress.done()
    if rows.complete:
        job_counts["rows"] = rows.rows
    return JobResult("postgres", [artifact], job_counts, time.monotonic() - started, version)


def dump_roles(settings: PostgresSettings, staging, backup_id: str) -> bundle.Artifact:
    """The cluster's role definitions and memberships, without passwords (`pg_dumpall
    --roles-only --no-role-passwords`, which reads pg_roles and so needs no superuser)."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tool("pg_dumpall"), "--roles-only", "--no-role-passwords", "--no-password", *settings.libpq_args()],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=child_env(settings),
        )
        assert proc.stdout is not None  # stdout=PIPE
        try:
            artifact = staging.put_stream(bundle.postgres_roles_path(backup_id), proc.stdout)
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise JobFailedError(f"pg_dumpall --roles-only of {_where(settings)} failed (exit {code}): {_tail(errors)}")
    return artifact


# `CREATE ROLE x;`, `ALTER ROLE x …;`, `COMMENT ON ROLE x …;` lines of pg_dumpall's roles section
_ROLE_STATEMENT = re.compile(
    rb'^(?:CREATE ROLE|ALTER ROLE|COMMENT ON ROLE) ("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)[ ;]'
)
MAX_ROLES_SCRIPT = 16 * 1024 * 1024  # a cluster's roles are kilobytes; the bundle is not trusted for a size


def restore_roles(settings: PostgresSettings, sql: Readable) -> list[str]:
    """Creates the roles of a pg_dumpall roles script that the target cluster lacks, with their
    attributes and memberships, in one transaction; a role that exists is never changed (its
    statements are left out). Returns the roles created."""
    script = sql.read(MAX_ROLES_SCRIPT + 1)
    if len(script) > MAX_ROLES_SCRIPT:
        raise VerificationError(f"the bundle's roles script is larger than {MAX_ROLES_SCRIPT:,} bytes")
    with connect(settings) as conn:
        existing = {row[0] for row in conn.execute("SELECT rolname FROM pg_catalog.pg_roles").fetchall()}
    kept, created = [], []
    for line in script.splitlines(keepends=True):
        # pg_dumpall's own restricted-mode lines (its \unrestrict comes before a closing comment):
        # ours, with a key the file cannot know, is in force instead
        if line.startswith((b"\\restrict ", b"\\unrestrict ")):
            continue
        if match := _ROLE_STATEMENT.match(line):
            role = dump_plan.identifier(match.group(1))
            if role in existing:
                continue
            if line.startswith(b"CREATE ROLE"):
                created.append(role)
        kept.append(line)
    _run_psql(settings, io.BytesIO(b"".join(kept)), b"", b"", Progress(f"psql roles {settings.dbname}"))
    log.info("created %d role(s) the target lacked: %s", len(created), ", ".join(created) or "none")
    return created


def _locked_out(settings: PostgresSettings, lock_wait: str, said: str) -> JobFailedError:
    return JobFailedError(
        f"the backup of {_where(settings)} could not lock a table within {lock_wait}: another session "
        "holds a conflicting lock (see pg_locks), so nothing was backed up; end that session, or set "
        f"ARCHIVIST_PG_LOCK_WAIT_TIMEOUT longer. PostgreSQL said: {said}"
    )


def _literal(text: str) -> str:
    """A standard SQL string literal (the prologue turns standard_conforming_strings on first)."""
    if "\0" in text:
        raise VerificationError(f"the dump names an object with a NUL byte: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Drop order for objects in public; a drop that others still depend on is retried after the rest.
_PUBLIC_DROPS = (
    ("materialized view", "MATERIALIZED VIEW"),
    ("view", "VIEW"),
    ("table", "TABLE"),
    ("sequence", "SEQUENCE"),
    ("domain", "DOMAIN"),
    ("type", "TYPE"),
)


def replace_prologue(plan: DumpPlan) -> bytes:
    """SQL that drops what the dump recreates (and nothing else), in the restore's transaction:
    the schemas it creates, with everything in them, and in `public`, which pg_dump expects to
    exist and never creates, only the objects it creates there, each by its exact name and
    without CASCADE, so that anything else depending on them stops the restore instead."""
    lines = ["SET LOCAL standard_conforming_strings = on;"]
    lines += [f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE;" for schema in plan.schemas]
    drops = [
        f"DROP {sql} IF EXISTS public.{_ident(name)}"
        for kind, sql in _PUBLIC_DROPS
        for name in plan.public.get(kind, [])
    ]
    signatures = plan.public.get("function", []) + plan.public.get("procedure", [])
    if (drops or signatures) and "public" not in plan.schemas:
        lines.append(
            _DROP_PUBLIC_OBJECTS.format(
                drops=", ".join(_literal(d) for d in drops) or "",
                signatures=", ".join(_literal(s) for s in signatures) or "",
            )
        )
    if plan.large_objects:  # each is recreated by its OID, which must then be free
        lines.append(
            "SELECT pg_catalog.lo_unlink(m.oid) FROM pg_catalog.pg_largeobject_metadata m "
            f"WHERE m.oid = ANY ({_oids(plan.large_objects)});"
        )
    return ("\n".join(lines) + "\n").encode()


def _oids(oids: list[int]) -> str:
    return f"'{{{','.join(str(int(oid)) for oid in oids)}}}'::pg_catalog.oid[]"


# Functions are matched on pg_dump's own signature text (`name(type, type)`). Drops are retried
# while they make progress, so the order of kinds never matters; what is left names the obstacle.
_DROP_PUBLIC_OBJECTS = """DO $archivist$
DECLARE
  pending text[] := ARRAY[{drops}]::text[];
  stuck text[];
  statement text;
  reason text;
  detail text;
  fn record;
BEGIN
  PERFORM pg_catalog.set_config('search_path', '', true);
  FOR fn IN SELECT p.oid::pg_catalog.regprocedure AS signature, p.prokind FROM pg_catalog.pg_proc p
      WHERE p.pronamespace = 'public'::pg_catalog.regnamespace
        AND p.proname || '(' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.format_type(t, NULL), ', ' ORDER BY i)
              FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i)), '') || ')'
            = ANY (ARRAY[{signatures}]::text[])
  LOOP
    pending := pending || pg_catalog.format('DROP %s %s', CASE fn.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                                            fn.signature);
  END LOOP;
  WHILE pg_catalog.cardinality(pending) > 0 LOOP
    stuck := '{{}}';
    FOREACH statement IN ARRAY pending LOOP
      BEGIN
        EXECUTE statement;
      EXCEPTION WHEN dependent_objects_still_exist THEN
        stuck := stuck || statement;
        GET STACKED DIAGNOSTICS reason = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
        reason := reason || ' (' || pg_catalog.replace(detail, E'\n', '; ') || ')';
      END;
    END LOOP;
    IF pg_catalog.cardinality(stuck) = pg_catalog.cardinality(pending) THEN
      RAISE EXCEPTION 'replace mode drops only what the bundle recreates, and cannot: %', reason;
    END IF;
    pending := stuck;
  END LOOP;
END
$archivist$;"""


def replace_epilogue(plan: DumpPlan) -> bytes:
    """SQL run last, before the commit: fails the restore (so the drops roll back) when the dump
    did not recreate a schema, public relation or large object that the prologue dropped."""
    relations = [
        n
        for kind in ("materialized view", "view", "table", "sequence")
        for n in plan.public.get(kind, [])
        if "public" not in plan.schemas
    ]
    missing = [f"pg_catalog.to_regnamespace({_literal(_ident(s))}) IS NULL" for s in plan.schemas]
    missing += [f"pg_catalog.to_regclass({_literal('public.' + _ident(n))}) IS NULL" for n in relations]
    names = [f"schema {s}" for s in plan.schemas] + [f"public.{n}" for n in relations]
    if plan.large_objects:
        missing.append(
            f"(SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata WHERE oid = ANY "
            f"({_oids(plan.large_objects)})) < {len(set(plan.large_objects))}"
        )
        names.append(f"{len(plan.large_objects)} large object(s)")
    if not missing:
        return b""
    return (
        f"DO $archivist$ BEGIN IF {' OR '.join(missing)} THEN RAISE EXCEPTION 'the dump did not recreate what "
        f"replace mode dropped (one of: %)', {_literal(', '.join(names))}; END IF; END $archivist$;\n"
    ).encode()


def restore(
    settings: PostgresSettings, sql: Readable, mode: str = "empty", plan: DumpPlan | None = None
) -> dict[str, int]:
    """Runs the dump's SQL through psql in restricted mode and one transaction, stopping at the
    first error.

    In `replace` mode what `plan` lists (what the dump recreates) is dropped first, inside the
    same transaction, so a failure leaves it as it was. An error raised while reading `sql` (its
    checksum does not match) kills psql before it can commit.
    """
    prologue, epilogue = prepare_restore(settings, mode, plan)
    return restore_in_one_transaction(settings, sql, prologue, epilogue)


def prepare_restore(settings: PostgresSettings, mode: str, plan: DumpPlan | None) -> tuple[bytes, bytes]:
    """Checks the server, tools and (in `empty` mode) that the database holds no table; returns
    the SQL that runs before and after the dump (`replace` mode's drops and its final check)."""
    check_server_and_tools(settings)
    if mode == "empty":
        existing = user_tables(settings)
        if existing:
            names = ", ".join(name for name, _ in existing[:5]) + (" …" if len(existing) > 5 else "")
            raise TargetNotEmptyError(
                f"{_where(settings)} already holds {len(existing)} table(s) ({names}): restore with mode "
                "'replace' to drop and recreate what the bundle contains, or empty the database first"
            )
    if mode == "replace" and plan is not None:
        return replace_sql(plan)
    return b"", b""


def replace_sql(plan: DumpPlan) -> tuple[bytes, bytes]:
    """`replace` mode's SQL for `plan`: the drops before the dump, the check after it."""
    log.info("replace mode: dropping %s", plan.describe())
    return replace_prologue(plan), replace_epilogue(plan)


def restore_in_one_transaction(
    settings: PostgresSettings, sql: Readable, prologue: bytes, epilogue: bytes
) -> dict[str, int]:
    """`prologue`, the dump and `epilogue` through one psql transaction, then ANALYZE."""
    progress = Progress(f"psql {settings.dbname}")
    _run_psql(settings, sql, prologue, epilogue, progress)
    progress.done()
    with connect(settings) as conn:
        conn.execute("ANALYZE")
    return counts(settings)


def _run_psql(settings: PostgresSettings, sql: Readable, prologue: bytes, epilogue: bytes, progress: Progress) -> None:
    """Runs `sql` through psql in restricted mode and one transaction, stopping at the first error.
    An error raised while reading `sql` kills psql before it can commit."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [tool("psql"), *PSQL_ARGS, *settings.libpq_args()],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=child_env(settings),
        )
        assert proc.stdin is not None  # stdin=PIPE
        try:
            for chunk in psql_script.script(sql, psql_script.new_key(), prologue, epilogue):
                proc.stdin.write(chunk)
                progress.add(len(chunk))
            proc.stdin.close()
        except BrokenPipeError:  # psql stopped at an error; its stderr says which
            pass
        except BaseException:  # psql must not reach the end of its input, where it would commit
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            said = _tail(errors)
            hint = (
                ". The bundle keeps owners and privileges: create the roles it names in the target cluster "
                "first (postgres_roles creates the ones a bundle holds), or restore a backup taken without "
                "postgres_privileges"
                if MISSING_ROLE.search(said)
                else ""
            )
            raise JobFailedError(
                f"psql restore into {_where(settings)} failed and was rolled back (exit {code}): {said}{hint}"
            )


def _tail(stream: IO[bytes], limit: int = 2000) -> str:
    text = stream.read().decode(errors="replace").strip()
    return text[-limit:] if text else "no message"
