"""Where the PostgreSQL database lives and how to reach it: from the original tool's DATABASE_*
variables, or from a connection read as the postgres provider's PostgresHook reads it (host, port,
login, password, the database in the schema field, and libpq's own keywords in the extra).

The check (psycopg) and the job (pg_dump, psql) are given the same libpq options, the first as
keywords and the others as their PG* variables (or, for the few with none, a connection string in
--dbname), so a TLS setting holds for every byte sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archivist.errors import ConfigurationError
from archivist.settings_values import port, required

# libpq's keywords archivist passes on, each with the variable pg_dump and psql read it from
# (PostgreSQL's "Environment Variables" page of the libpq chapter). Only keywords libpq has
# known since version 14: an older pg_dump would ignore a newer variable, silently.
LIBPQ_VARIABLES = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requirepeer": "PGREQUIREPEER",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}
# libpq's keywords with no variable, all whole numbers and none secret: pg_dump and psql get them
# as a connection string in --dbname (which then names no database, so PGDATABASE still counts).
LIBPQ_ARGUMENTS = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Extras the provider's hook reads for itself, which change nothing about the connection.
HOOK_ONLY_EXTRAS = frozenset({"cursor", "sqlalchemy_scheme", "sqlalchemy_query"})
# Extras that would log in some other way than with the connection's login and password.
OTHER_LOGINS = frozenset(
    {"iam", "redshift", "redshift-serverless", "aws_conn_id", "cluster-identifier", "workgroup-name", "azure_conn_id"}
)
DEFAULT_SOURCE = "settings given in code"


@dataclass(frozen=True)
class PostgresSettings:
    """Where the PostgreSQL database lives. `source` names where it was configured; `libpq_options`
    holds libpq's keywords beyond the address and login (sslmode, sslrootcert, ...)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(default="", repr=False)
    source: str = DEFAULT_SOURCE
    libpq_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def sslmode(self) -> str:
        """The TLS mode asked for; libpq's default when none is."""
        return self.libpq_options.get("sslmode", "prefer")

    def libpq_env(self) -> dict[str, str]:
        """Environment for pg_dump/psql: the password travels here, never in argv."""
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user, "PGDATABASE": self.dbname}
        if self.password:
            env["PGPASSWORD"] = self.password
        env.update({LIBPQ_VARIABLES[k]: v for k, v in self.libpq_options.items() if k in LIBPQ_VARIABLES})
        return env

    def libpq_args(self) -> list[str]:
        """pg_dump's and psql's arguments for the options no variable carries: `--dbname=keepalives_idle=30`."""
        words = [f"{k}={v}" for k, v in self.libpq_options.items() if k in LIBPQ_ARGUMENTS]
        return [f"--dbname={' '.join(words)}"] if words else []

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for psycopg.connect: the same options pg_dump and psql get."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password or None,
            "dbname": self.dbname,
            **self.libpq_options,
        }


def libpq_options(values: Mapping[str, Any], source: str, name: str = "extra {keyword!r}") -> dict[str, str]:
    """libpq's keywords from a connection's extra (or DATABASE_<KEYWORD> variables), as libpq takes
    them. An unknown keyword is refused, not dropped: a TLS setting dropped would leave the
    connection weaker than configured. `name` says how messages name one keyword's setting."""
    options: dict[str, str] = {}
    for keyword, value in values.items():
        where = f"{name.format(keyword=keyword, KEYWORD=keyword.upper())} of {source}"
        if keyword in HOOK_ONLY_EXTRAS:
            continue
        if keyword in OTHER_LOGINS:
            raise ConfigurationError(
                f"{where} asks for a login archivist does not make: archivist logs in with the "
                "connection's login and password; remove it"
            )
        if keyword not in LIBPQ_VARIABLES and keyword not in LIBPQ_ARGUMENTS:
            raise ConfigurationError(
                f"{where} is not a libpq keyword archivist can give pg_dump and psql: "
                f"use one of {', '.join((*LIBPQ_VARIABLES, *LIBPQ_ARGUMENTS))}, or remove it"
            )
        if value is None or value == "":
            continue
        text = ("1" if value else "0") if isinstance(value, bool) else str(value).strip()
        if keyword == "sslmode" and text not in SSLMODES:
            raise ConfigurationError(f"{where} is {text!r}: use one of {', '.join(SSLMODES)}")
        if keyword in LIBPQ_ARGUMENTS and not text.isdigit():
            raise ConfigurationError(f"{where} must be a whole number, got {value!r}")
        options[keyword] = text
    return options


def postgres_from_env(env: Mapping[str, str]) -> PostgresSettings:
    """The DATABASE_* variables; libpq's keywords as DATABASE_<KEYWORD>, such as DATABASE_SSLMODE."""
    source = "DATABASE_* variables"
    named = {k: env.get(f"DATABASE_{k.upper()}", "").strip() for k in (*LIBPQ_VARIABLES, *LIBPQ_ARGUMENTS)}
    return PostgresSettings(
        host=required(env, "DATABASE_HOST"),
        port=port(env, "DATABASE_PORT", 5432),
        user=required(env, "DATABASE_USER"),
        dbname=required(env, "DATABASE_NAME"),
        password=env.get("DATABASE_PASSWORD", ""),
        source=source,
        libpq_options=libpq_options(named, source, "DATABASE_{KEYWORD}"),
    )


def postgres_from_connection(conn: Any) -> PostgresSettings:
    """A postgres connection as PostgresHook reads it; its extra must be a JSON object."""
    source = f"connection '{conn.conn_id}'"
    if not conn.host or not conn.login or not conn.schema:
        raise ConfigurationError(f"{source} needs a host, a login and a database name (the schema field)")
    return PostgresSettings(
        host=conn.host,
        port=int(conn.port or 5432),
        user=conn.login,
        dbname=conn.schema,
        password=conn.password or "",
        source=source,
        libpq_options=libpq_options(conn.extra_dejson, source),
    )
