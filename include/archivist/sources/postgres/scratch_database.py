"""A copy of the target database that a parallel restore builds in, swapped in when it is whole.

Several connections cannot share one transaction, so a parallel restore cannot roll back the
way `psql --single-transaction` does. Instead it works in a scratch database made from the
target (`CREATE DATABASE … TEMPLATE target`, so what the target holds outside the dump stays),
and when everything has loaded renames the target away and the scratch database to the target's
name in one transaction. Until that commit the target is untouched; after it, the target is the
restored database. The database-level settings the copy does not carry (owner, privileges,
connection limit, `ALTER DATABASE … SET`, comment) are copied before the swap.

A scratch or replaced database left by a restore that died with its server is dropped by the
next parallel restore (`sweep`); one still in use by a running restore cannot be dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time

import psycopg
import psycopg.sql
from psycopg.sql import SQL, Identifier, Literal

from archivist.config import PostgresSettings
from archivist.errors import JobFailedError
from archivist.sources.postgres import job

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "archivist_scratch_"
REPLACED_PREFIX = "archivist_replaced_"
MAINTENANCE_DATABASES = ("postgres", "template1")
SESSIONS_LEAVE_SECONDS = 5.0  # as CREATE DATABASE waits for other sessions on its template to end
# Settings whose value is a list written as SQL (pg_dumpall's GUC_LIST_QUOTE variables).
LIST_SETTINGS = {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}


class CannotBuildAside(Exception):
    """The server or the target does not allow a scratch database; the one-transaction path is used."""


def maintenance(settings: PostgresSettings) -> PostgresSettings:
    """The settings of a database on the same server that is neither the target nor a scratch one."""
    for name in MAINTENANCE_DATABASES:
        if name != settings.dbname and job.database_exists(settings, name):
            return dataclasses.replace(settings, dbname=name)
    raise CannotBuildAside("neither the 'postgres' nor the 'template1' database can be reached")


def _sessions_left(conn: psycopg.Connection, dbname: str) -> int:
    """The other sessions connected to `dbname` after waiting for them to leave as long as CREATE
    DATABASE waits for a template's: a session just closed (the restore's own, which dropped the
    replaced objects) stays listed while its backend exits, longer on a busy server."""
    deadline = time.monotonic() + SESSIONS_LEAVE_SECONDS
    while (sessions := _other_sessions(conn, dbname)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return sessions


def _other_sessions(conn: psycopg.Connection, dbname: str) -> int:
    """Autovacuum workers do not count: CREATE DATABASE and the swap's RENAME stop them
    themselves, and after a large load one may work on the target for minutes."""
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        " AND backend_type <> 'autovacuum worker'",
        (dbname,),
    ).fetchone()
    return int(row[0]) if row else 0


class ScratchDatabase:
    """The scratch database of one restore into `settings.dbname`."""

    def __init__(self, settings: PostgresSettings):
        self.target = settings.dbname
        self.name = SCRATCH_PREFIX + secrets.token_hex(8)
        self.settings = dataclasses.replace(settings, dbname=self.name)
        self.admin = maintenance(settings)

    def create(self) -> None:
        """Makes the scratch database as a copy of the target, or raises CannotBuildAside."""
        with job.connect(self.admin) as conn:
            allowed = conn.execute(
                "SELECT r.rolsuper OR (r.rolcreatedb AND pg_catalog.pg_has_role(d.datdba, 'USAGE')) "
                "FROM pg_catalog.pg_roles r, pg_catalog.pg_database d "
                "WHERE r.rolname = current_user AND d.datname = %s",
                (self.target,),
            ).fetchone()
            if not allowed or not allowed[0]:
                raise CannotBuildAside("the user is neither a superuser nor an owner of the database with CREATEDB")
            sweep(conn)
            if sessions := _sessions_left(conn, self.target):
                raise CannotBuildAside(f"{sessions} other session(s) are connected to it")
            try:
                conn.execute(
                    SQL("CREATE DATABASE {} TEMPLATE {}").format(Identifier(self.name), Identifier(self.target))
                )
            except psycopg.errors.ObjectInUse as exc:  # a session connected meanwhile
                raise CannotBuildAside(str(exc).strip()) from None
            conn.execute(
                SQL("COMMENT ON DATABASE {} IS {}").format(
                    Identifier(self.name), Literal(f"archivist restore of {self.target}, in progress")
                )
            )
        log.info("building the restore in scratch database %s, a copy of %s", self.name, self.target)

    def swap_in(self) -> None:
        """Gives the scratch database the target's settings, then in one transaction renames the
        target away and the scratch database to the target's name; drops the old target after."""
        replaced = REPLACED_PREFIX + secrets.token_hex(8)
        with job.connect(self.admin) as conn:
            _copy_database_settings(conn, self.target, self.name)
            try:
                rename = SQL("ALTER DATABASE {} RENAME TO {}")
                with conn.transaction():
                    conn.execute(rename.format(Identifier(self.target), Identifier(replaced)))
                    conn.execute(rename.format(Identifier(self.name), Identifier(self.target)))
            except psycopg.errors.ObjectInUse:
                sessions = _other_sessions(conn, self.target)
                raise JobFailedError(
                    f"the restore of database '{self.target}' was built and could not be swapped in: {sessions} other "
                    "session(s) connected to it meanwhile (see pg_stat_activity); the database is unchanged. Close "
                    "them and restore again, or restore with postgres_jobs 1 (one psql transaction)"
                ) from None
            log.info("swapped the restored database in as %s", self.target)
        _drop_without_waiting(self.admin, replaced)

    def drop(self) -> bool:
        """Drops the scratch database after a failure; a server that is down leaves it to `sweep`.
        Whether it was dropped."""
        try:
            with job.connect(self.admin) as conn:
                conn.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(self.name)))
            return True
        except Exception as exc:  # noqa: BLE001 - the restore's own error is the one to raise
            log.warning("scratch database %s was not dropped (%s); the next parallel restore drops it", self.name, exc)
            return False


def _drop_without_waiting(settings: PostgresSettings, name: str) -> None:
    """Sends DROP DATABASE and hangs up: the server finishes it alone. DROP DATABASE forces a
    checkpoint, which after a large load takes as long as writing out everything loaded, and
    the restore is done by then (see docs/PERFORMANCE.md, "Parallel PostgreSQL restore"). A drop
    that fails leaves the database to the next restore's sweep."""
    with job.connect(settings) as conn:
        conn.pgconn.send_query(SQL("DROP DATABASE {}").format(Identifier(name)).as_bytes(conn))
        while conn.pgconn.flush():  # the query is on its way before the connection closes
            pass
        conn.pgconn.finish()
    log.info("dropping the replaced database %s in the background", name)


def sweep(conn: psycopg.Connection) -> list[str]:
    """Drops scratch and replaced databases that restores left behind; one a restore still
    works in has sessions and is left alone."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT datname FROM pg_catalog.pg_database WHERE datname ~ %s",
            (f"^({SCRATCH_PREFIX}|{REPLACED_PREFIX})[0-9a-f]{{16}}$",),
        ).fetchall()
    ]
    dropped = []
    for name in names:
        try:
            conn.execute(SQL("DROP DATABASE {}").format(Identifier(name)))
            dropped.append(name)
        except (psycopg.errors.ObjectInUse, psycopg.errors.InvalidCatalogName):  # in use, or dropped meanwhile
            continue
    if dropped:
        log.info("dropped %d database(s) that failed restores left behind: %s", len(dropped), ", ".join(dropped))
    return dropped


def _copy_database_settings(conn: psycopg.Connection, source: str, target: str) -> None:
    """Owner, connection limit, privileges, per-database settings and comment of `source`, onto `target`."""
    row = conn.execute(
        "SELECT d.oid, pg_catalog.pg_get_userbyid(d.datdba), d.datconnlimit, d.datacl IS NOT NULL, "
        "pg_catalog.shobj_description(d.oid, 'pg_database') FROM pg_catalog.pg_database d WHERE d.datname = %s",
        (source,),
    ).fetchone()
    if row is None:
        raise JobFailedError(f"database '{source}' disappeared during the restore")
    oid, owner, limit, has_acl, comment = row
    name = Identifier(target)
    conn.execute(SQL("ALTER DATABASE {} OWNER TO {}").format(name, Identifier(owner)))
    conn.execute(SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(name, Literal(int(limit))))
    if has_acl:
        conn.execute(SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
        for grantee, privilege, grantable in conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END, "
            "a.privilege_type, a.is_grantable FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a "
            "WHERE d.oid = %s",
            (oid,),
        ).fetchall():
            conn.execute(
                SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    SQL(privilege),
                    name,
                    Identifier(grantee) if grantee else SQL("PUBLIC"),
                    SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )
    for role, config in conn.execute(
        "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END, c "
        "FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = %s",
        (oid,),
    ).fetchall():
        setting, _, value = config.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", setting):
            raise JobFailedError(f"database '{source}' has a setting of an unexpected name: {setting!r}")
        value_sql = SQL(value) if setting.lower() in LIST_SETTINGS else Literal(value)
        where = SQL("DATABASE {}").format(name)
        if role:
            where = SQL("ROLE {} IN DATABASE {}").format(Identifier(role), name)
        conn.execute(SQL("ALTER {} SET {} = {}").format(where, Identifier(setting), value_sql))
    conn.execute(SQL("COMMENT ON DATABASE {} IS {}").format(name, Literal(comment)))
