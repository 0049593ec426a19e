"""Configuration for the DAGs and the `archivist` command, from one place.

Each of the four parts (database, search engine, application storage, backup
store) comes from the original tool's environment variables when any of them
is set, and otherwise from the Airflow connection with the matching id. The
database's and the search engine's settings, TLS among them, are read in
postgres_settings.py and elasticsearch_settings.py. Secrets are kept out of every `repr` so they never reach a log line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from archivist.elasticsearch_settings import ElasticsearchSettings as ElasticsearchSettings
from archivist.elasticsearch_settings import elasticsearch_from_connection as elasticsearch_from_connection
from archivist.elasticsearch_settings import elasticsearch_from_env as elasticsearch_from_env
from archivist.encryption_settings import ENCRYPTION_CONN_ID as ENCRYPTION_CONN_ID
from archivist.encryption_settings import EncryptionSettings as EncryptionSettings
from archivist.encryption_settings import encryption_from_connection, encryption_from_env, encryption_not_defined
from archivist.errors import ConfigurationError
from archivist.postgres_settings import PostgresSettings as PostgresSettings
from archivist.postgres_settings import postgres_from_connection as postgres_from_connection
from archivist.postgres_settings import postgres_from_env as postgres_from_env
from archivist.retention import RetentionPolicy
from archivist.s3_settings import S3Settings as S3Settings
from archivist.s3_settings import s3_from_aws_connection as s3_from_aws_connection
from archivist.s3_settings import s3_from_env as s3_from_env
from archivist.settings_values import flag

POSTGRES_CONN_ID = "archivist_postgres"
ELASTICSEARCH_CONN_ID = "archivist_elasticsearch"
STORAGE_CONN_ID = "archivist_storage"
BACKUPS_CONN_ID = "archivist_backups"

DEFAULT_BACKUPS_KEPT = 30
MIN_BACKUPS_KEPT = 7
# The backup connection's extra naming the key prefix of this stack's bundles and staging.
PREFIX_EXTRA = "key_prefix"
MAX_PREFIX_BYTES = 512  # leaves room for the longest staging key under S3's 1,024 bytes
DEFAULT_CRON_SCHEDULE = "0 1 * * *"
JOBS = ("postgres", "elasticsearch", "storage")


@dataclass(frozen=True)
class ConnIds:
    """The Airflow connection ids to read; each overridable by ARCHIVIST_<PART>_CONN_ID."""

    postgres: str = POSTGRES_CONN_ID
    elasticsearch: str = ELASTICSEARCH_CONN_ID
    storage: str = STORAGE_CONN_ID
    backups: str = BACKUPS_CONN_ID


def conn_ids(env: Mapping[str, str] | None = None) -> ConnIds:
    env = os.environ if env is None else env
    return ConnIds(
        postgres=env.get("ARCHIVIST_POSTGRES_CONN_ID") or POSTGRES_CONN_ID,
        elasticsearch=env.get("ARCHIVIST_ELASTICSEARCH_CONN_ID") or ELASTICSEARCH_CONN_ID,
        storage=env.get("ARCHIVIST_STORAGE_CONN_ID") or STORAGE_CONN_ID,
        backups=env.get("ARCHIVIST_BACKUPS_CONN_ID") or BACKUPS_CONN_ID,
    )


def parse_backups_kept(value: str | int | None) -> int:
    """The spec's BACKUPS_KEPT: 30 when unset, and never fewer than 7."""
    if value is None:
        return DEFAULT_BACKUPS_KEPT
    text = str(value).strip()
    if not text:
        raise ConfigurationError(
            f"BACKUPS_KEPT is empty: unset it to keep the default {DEFAULT_BACKUPS_KEPT}, "
            f"or set a whole number of at least {MIN_BACKUPS_KEPT}"
        )
    try:
        kept = int(text)
    except ValueError:
        raise ConfigurationError(
            f"BACKUPS_KEPT must be a whole number of at least {MIN_BACKUPS_KEPT}, got {text!r}"
        ) from None
    if kept < MIN_BACKUPS_KEPT:
        raise ConfigurationError(
            f"BACKUPS_KEPT is {kept}, but the minimum is {MIN_BACKUPS_KEPT}: archivist never keeps fewer than 7 backups"
        )
    return kept


# The calendar rules of rotation (archivist.retention), each set by its own variable.
CALENDAR_KEPT = {
    "daily": "BACKUPS_KEPT_DAILY",
    "weekly": "BACKUPS_KEPT_WEEKLY",
    "monthly": "BACKUPS_KEPT_MONTHLY",
    "yearly": "BACKUPS_KEPT_YEARLY",
}


def parse_calendar_kept(value: str | int | None, variable: str) -> int:
    """How many days, weeks, months or years a calendar rule keeps: 0 (off) when unset."""
    if value is None:
        return 0
    text = str(value).strip()
    try:
        kept = int(text)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a whole number (0 turns the rule off), got {text!r}") from None
    if kept < 0:
        raise ConfigurationError(f"{variable} is {kept}: it must be 0 (off) or more")
    return kept


def load_retention(
    keep: int | str | None = None, env: Mapping[str, str] | None = None, **calendar: int | str | None
) -> RetentionPolicy:
    """Rotation's rules: `keep` (else BACKUPS_KEPT, else 30; at least 7) newest bundles, and each
    calendar rule given in `calendar` (daily=…, weekly=…), else its BACKUPS_KEPT_<PERIOD> variable."""
    env = os.environ if env is None else env
    unknown = set(calendar) - set(CALENDAR_KEPT)
    if unknown:
        raise ConfigurationError(f"unknown retention rule(s) {sorted(unknown)}: use {', '.join(CALENDAR_KEPT)}")
    counts = {
        period: parse_calendar_kept(
            calendar.get(period) if calendar.get(period) is not None else env.get(variable), variable
        )
        for period, variable in CALENDAR_KEPT.items()
    }
    last = parse_backups_kept(keep if keep is not None else env.get("BACKUPS_KEPT"))
    return RetentionPolicy(last=last, **counts)


def parse_key_prefix(value: str | None, source: str) -> str:
    """A key prefix for the backup bucket, e.g. `stack-a/`: "" when unset, else ending in `/`.
    Refuses what would reach outside its own folder or could never be a key."""
    text = (value or "").strip()
    if not text:
        return ""
    text = text if text.endswith("/") else text + "/"
    problem = None
    if text.startswith("/"):
        problem = "starts with '/'"
    elif any(segment in ("", ".", "..") for segment in text[:-1].split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        problem = f"is longer than {MAX_PREFIX_BYTES} bytes"
    if problem:
        raise ConfigurationError(
            f"the backup key prefix {value!r} ({source}) {problem}: use folder names "
            "joined by '/', such as 'stack-a/' or 'team/stack-a/'"
        )
    return text


def parse_jobs(jobs: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Job names from a list or a comma-separated string; all jobs when empty."""
    if not jobs:
        return JOBS
    names = [j.strip() for j in (jobs.split(",") if isinstance(jobs, str) else jobs) if j.strip()]
    unknown = sorted(set(names) - set(JOBS))
    if unknown:
        raise ConfigurationError(f"unknown job(s) {', '.join(unknown)}: choose from {', '.join(JOBS)}")
    return tuple(j for j in JOBS if j in names)


# What a backup does with a closed index: fail naming it, or open it for reading and close it again.
CLOSED_INDICES = ("refuse", "open")


def parse_closed_indices(value: str | None) -> str:
    text = (value or "").strip() or CLOSED_INDICES[0]
    if text not in CLOSED_INDICES:
        raise ConfigurationError(f"closed_indices must be one of {', '.join(CLOSED_INDICES)}, got {text!r}")
    return text


def parse_index_patterns(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Index names or patterns from a list or a comma-separated string; none when empty."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in items if p.strip())


# A database backed up beside the connection's own is named in its artifact's file name.
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$")


def database_name_problem(name: str) -> str | None:
    """Why `name` cannot name an extra database's dump, or None."""
    if not _DATABASE_NAME.match(name):
        return "is not 1 to 63 letters, digits, '_', '.', '$' or '-' (not starting with '.', '$' or '-')"
    return None


def parse_postgres_databases(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Databases to back up beside the connection's own, from a list or a comma-separated string."""
    names = tuple(dict.fromkeys(parse_index_patterns(value)))
    for name in names:
        if problem := database_name_problem(name):
            raise ConfigurationError(f"the database name {name!r} {problem}")
    return names


def parse_rename_map(value: str | list[str] | tuple | dict | None, option: str) -> tuple[tuple[str, str], ...]:
    """`old=new` pairs from a mapping, a list of `old=new` strings or one comma-separated string
    (the forms a DAG param and a command option take); `option` names the setting in errors."""
    if not value:
        return ()
    if isinstance(value, dict):
        pairs = [(str(old), str(new)) for old, new in value.items()]
    else:
        pairs = []
        for item in parse_index_patterns(value):
            old, sep, new = item.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise ConfigurationError(f"{option}: {item!r} is not old=new (e.g. products=products-copy)")
            pairs.append((old.strip(), new.strip()))
    return tuple(pairs)


# --- from the original tool's environment variables --------------------------------------


def _any_set(env: Mapping[str, str], prefix: str) -> bool:
    return any(k.startswith(prefix) and v for k, v in env.items())


# --- from Airflow connections ------------------------------------------------------------


def _get_connection(conn_id: str) -> Any:
    """Airflow's connection `conn_id`; imported lazily so the library runs without Airflow."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover - only without Airflow installed
        raise ConfigurationError(
            f"connection '{conn_id}' needs Airflow, which is not installed: "
            "set the original tool's environment variables instead"
        ) from None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # Airflow raises its own not-found types across versions
        if "isn't defined" in str(exc) or "not found" in str(exc).lower() or type(exc).__name__.endswith("NotFound"):
            raise ConfigurationError(
                f"connection '{conn_id}' is not defined: add it with `airflow connections add {conn_id} ...` "
                f"or export AIRFLOW_CONN_{conn_id.upper()}"
            ) from None
        raise


def _aws_connection(conn_id: str) -> Any:
    """Connection `conn_id` as the Amazon provider reads it (AwsBaseHook's conn_config): keys,
    region, per-service endpoints, role and botocore config. Imported lazily, like Airflow."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError:  # pragma: no cover - only without Airflow installed
        raise ConfigurationError(
            f"connection '{conn_id}' needs Airflow and its Amazon provider, which are not installed: "
            "set the original tool's environment variables instead"
        ) from None
    try:
        conn = AwsBaseHook(aws_conn_id=conn_id, client_type="s3").conn_config
    except (TypeError, ValueError, NotImplementedError) as exc:  # config_kwargs or assume_role_method refused
        raise ConfigurationError(f"connection '{conn_id}' has an extra the Amazon provider refuses: {exc}") from None
    if not conn:  # the hook logs a warning and carries on without a connection: archivist needs one
        _get_connection(conn_id)  # raises the error that says how to add it
    return conn


# --- the resolved settings -----------------------------------------------------------------
# A connection named by the caller wins over the spec's variables; without one they win over the default.


def load_postgres(conn_id: str | None = None, env: Mapping[str, str] | None = None) -> PostgresSettings:
    env = os.environ if env is None else env
    if conn_id is None and _any_set(env, "DATABASE_"):
        return postgres_from_env(env)
    return postgres_from_connection(_get_connection(conn_id or conn_ids(env).postgres))


def load_elasticsearch(conn_id: str | None = None, env: Mapping[str, str] | None = None) -> ElasticsearchSettings:
    env = os.environ if env is None else env
    if conn_id is None and _any_set(env, "ELASTICSEARCH_"):
        return elasticsearch_from_env(env)
    return elasticsearch_from_connection(_get_connection(conn_id or conn_ids(env).elasticsearch))


def load_storage(conn_id: str | None = None, env: Mapping[str, str] | None = None) -> S3Settings:
    env = os.environ if env is None else env
    if conn_id is None and _any_set(env, "S3_"):
        return s3_from_env(env, "S3_")
    return s3_from_aws_connection(_aws_connection(conn_id or conn_ids(env).storage))


def load_backups(conn_id: str | None = None, env: Mapping[str, str] | None = None) -> S3Settings:
    """The backup bucket, with its key prefix: BACKUP_PREFIX, or the connection's extra `key_prefix`."""
    env = os.environ if env is None else env
    if _any_set(env, "BACKUP_"):
        settings = s3_from_env(env, "BACKUP_")
        prefix = env.get("BACKUP_PREFIX")
    else:
        conn = _aws_connection(conn_id or conn_ids(env).backups)
        settings = s3_from_aws_connection(conn)
        prefix = conn.extra_dejson.get(PREFIX_EXTRA)
    if prefix is not None and not isinstance(prefix, str):
        raise ConfigurationError(f"the backup key prefix ({settings.source}) must be a string, got {prefix!r}")
    return replace(settings, prefix=parse_key_prefix(prefix, settings.source))


def load_encryption(conn_id: str | None = None, env: Mapping[str, str] | None = None) -> EncryptionSettings:
    """Who backups encrypt to and what restores decrypt with: the ENCRYPTION_* variables when any
    is set, else the connection (ARCHIVIST_ENCRYPTION_CONN_ID, `archivist_encryption`); neither: off."""
    env = os.environ if env is None else env
    if _any_set(env, "ENCRYPTION_"):
        return encryption_from_env(env)
    conn_id = conn_id or env.get("ARCHIVIST_ENCRYPTION_CONN_ID") or ENCRYPTION_CONN_ID
    try:
        conn = _get_connection(conn_id)
    except ConfigurationError as exc:
        if "is not defined" in str(exc) or "needs Airflow" in str(exc):
            return encryption_not_defined(conn_id)
        raise
    return encryption_from_connection(conn)


def load_backups_kept(env: Mapping[str, str] | None = None) -> int:
    return parse_backups_kept(load_env_backups_kept(env))


def load_env_backups_kept(env: Mapping[str, str] | None = None) -> str | None:
    """BACKUPS_KEPT as set, unparsed (None when unset)."""
    env = os.environ if env is None else env
    return env.get("BACKUPS_KEPT")


def load_namespace(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("NAMESPACE", "")


# A schedule of these values makes no timed runs: the DAG runs when triggered.
SCHEDULE_OFF = ("off", "none", "never")


def load_cron_schedule(env: Mapping[str, str] | None = None) -> str | None:
    """The backup schedule: ARCHIVIST_SCHEDULE or the spec's CRON_SCHEDULE, daily at 01:00 by
    default; None for off (none, never): triggered runs only, as a standby deployment or a
    benchmark wants, since unpausing a scheduled DAG starts the run of its latest interval."""
    env = os.environ if env is None else env
    text = (env.get("ARCHIVIST_SCHEDULE") or env.get("CRON_SCHEDULE") or "").strip() or DEFAULT_CRON_SCHEDULE
    return None if text.lower() in SCHEDULE_OFF else text


# The drill's schedule: weekly, Sundays at 03:00, after the nightly backup (ARCHIVIST_DRILL_SCHEDULE).
DEFAULT_DRILL_SCHEDULE = "0 3 * * 0"


def load_drill_schedule(env: Mapping[str, str] | None = None) -> str | None:
    """ARCHIVIST_DRILL_SCHEDULE: a cron expression, or off (none, never) for no timed drills."""
    env = os.environ if env is None else env
    text = env.get("ARCHIVIST_DRILL_SCHEDULE", "").strip() or DEFAULT_DRILL_SCHEDULE
    return None if text.lower() in SCHEDULE_OFF else text


def load_drill_after_backup(env: Mapping[str, str] | None = None) -> bool:
    """ARCHIVIST_DRILL_AFTER_BACKUP: also drill each new bundle once its backup has made it (off by default)."""
    env = os.environ if env is None else env
    return flag(env.get("ARCHIVIST_DRILL_AFTER_BACKUP", "").strip() or "false", "ARCHIVIST_DRILL_AFTER_BACKUP")


# How long a run and one task may take before Airflow stops them: a hung backup must not hold
# back every later one (the DAGs run one at a time). Generous, since a large stack takes hours.
DEFAULT_RUN_TIMEOUT_HOURS = 12.0
DEFAULT_TASK_TIMEOUT_HOURS = 6.0
# How long pg_dump waits for a table's lock before it gives up instead of hanging behind a
# session that holds it (pg_dump --lock-wait-timeout; PostgreSQL's duration syntax).
DEFAULT_PG_LOCK_WAIT = "10min"
_PG_DURATION = re.compile(r"^(\d+)\s*(?:us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class Timeouts:
    run: dt.timedelta
    task: dt.timedelta


def _hours(env: Mapping[str, str], name: str, default: float) -> dt.timedelta:
    text = env.get(name, "").strip()
    try:
        hours = float(text) if text else default
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of hours, got {text!r}") from None
    if not 0 < hours <= 24 * 7:
        raise ConfigurationError(f"{name} must be more than 0 and at most 168 hours, got {text!r}")
    return dt.timedelta(hours=hours)


def load_timeouts(env: Mapping[str, str] | None = None) -> Timeouts:
    """ARCHIVIST_RUN_TIMEOUT_HOURS (a whole DAG run) and ARCHIVIST_TASK_TIMEOUT_HOURS (one task)."""
    env = os.environ if env is None else env
    return Timeouts(
        run=_hours(env, "ARCHIVIST_RUN_TIMEOUT_HOURS", DEFAULT_RUN_TIMEOUT_HOURS),
        task=_hours(env, "ARCHIVIST_TASK_TIMEOUT_HOURS", DEFAULT_TASK_TIMEOUT_HOURS),
    )


def load_pg_lock_wait(env: Mapping[str, str] | None = None) -> str:
    """ARCHIVIST_PG_LOCK_WAIT_TIMEOUT, such as 30s or 10min (PostgreSQL's units; a bare number is ms)."""
    env = os.environ if env is None else env
    text = env.get("ARCHIVIST_PG_LOCK_WAIT_TIMEOUT", "").strip() or DEFAULT_PG_LOCK_WAIT
    match = _PG_DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ConfigurationError(
            f"ARCHIVIST_PG_LOCK_WAIT_TIMEOUT must be a duration such as 30s or 10min, got {text!r}"
        )
    return text
