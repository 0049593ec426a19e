"""`archivist info`: every configuration option, where its value comes from, secrets masked."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from archivist import config
from archivist.cli.output import MASK, error_line
from archivist.errors import ArchivistError

Row = tuple[str, str, str]  # name, value shown, where it comes from


def _from_env(names: dict[str, Any], secrets: tuple[str, ...], defaults: dict[str, Any]) -> Iterator[Row]:
    """Rows for a part configured by variables: each variable's value, set or defaulted."""
    for name, value in names.items():
        shown = (MASK if value else "(empty)") if name in secrets else ("" if value is None else str(value))
        if os.environ.get(name, "").strip():
            origin = "environment"
        elif name in defaults:
            origin = "default"
        else:
            origin = "not set"
        yield name, shown, origin


PLAIN_HTTP = "(http: no TLS)"


def _rows_postgres() -> Iterator[Row]:
    s = config.load_postgres()
    values = {
        "DATABASE_HOST": s.host,
        "DATABASE_PORT": s.port,
        "DATABASE_NAME": s.dbname,
        "DATABASE_USER": s.user,
        "DATABASE_PASSWORD": s.password,
        "DATABASE_SSLMODE": s.sslmode,
        **{f"DATABASE_{keyword.upper()}": value for keyword, value in s.libpq_options.items() if keyword != "sslmode"},
    }
    yield from _rows(values, s.source, ("DATABASE_PASSWORD",), {"DATABASE_PORT", "DATABASE_SSLMODE"})


def _rows_elasticsearch() -> Iterator[Row]:
    s = config.load_elasticsearch()
    url = urlsplit(s.url)
    tls = url.scheme == "https"
    values = {
        "ELASTICSEARCH_PROTOCOL": url.scheme,
        "ELASTICSEARCH_HOST": url.hostname,
        "ELASTICSEARCH_PORT": url.port,
        "ELASTICSEARCH_USER": s.user,
        "ELASTICSEARCH_PASSWORD": s.password,
        "ELASTICSEARCH_API_KEY": s.api_key,
        "ELASTICSEARCH_VERIFY_CERTS": str(s.verify_certs).lower() if tls else PLAIN_HTTP,
        "ELASTICSEARCH_CA_CERTS": (s.ca_certs or "(the system's CAs)") if tls else PLAIN_HTTP,
    }
    if s.client_cert:
        values.update({"ELASTICSEARCH_CLIENT_CERT": s.client_cert, "ELASTICSEARCH_CLIENT_KEY": s.client_key})
    yield from _rows(
        values,
        s.source,
        ("ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_API_KEY"),
        {"ELASTICSEARCH_PROTOCOL", "ELASTICSEARCH_PORT", "ELASTICSEARCH_VERIFY_CERTS", "ELASTICSEARCH_CA_CERTS"},
    )


def _s3_rows(load: Callable[[], config.S3Settings], prefix: str) -> Callable[[], Iterator[Row]]:
    def rows() -> Iterator[Row]:
        s = load()
        values = {
            f"{prefix}ACCESS_KEY_ID": s.access_key_id,
            f"{prefix}SECRET_ACCESS_KEY": s.secret_access_key,
            f"{prefix}BUCKET_NAME": s.bucket,
            f"{prefix}ENDPOINT_URL": s.endpoint_url or "(AWS S3)",
        }
        defaulted = set()
        if prefix == "BACKUP_":
            values["BACKUP_PREFIX"], defaulted = s.prefix or "(bucket root)", {"BACKUP_PREFIX"}
        yield from _rows(values, s.source, (f"{prefix}SECRET_ACCESS_KEY",), defaulted)

    return rows


def _rows(values: dict[str, Any], source: str, secrets: tuple[str, ...], defaulted: set[str]) -> Iterator[Row]:
    if source.endswith("variables"):
        yield from _from_env(values, secrets, dict.fromkeys(defaulted))
        return
    for name, value in values.items():
        shown = (MASK if value else "(empty)") if name in secrets else ("" if value is None else str(value))
        yield name, shown, source


def _rows_encryption() -> Iterator[Row]:
    """Who can read the bundles: the recipients are public keys and shown; the identity is masked."""
    from archivist.encryption_settings import ENV_IDENTITY, ENV_IDENTITY_FILE, ENV_RECIPIENTS

    s = config.load_encryption()
    recipients = ", ".join(s.recipients) if s.recipients else "(none: backups are not encrypted)"
    if not s.defined:
        yield ENV_RECIPIENTS, recipients, "not set"
        yield ENV_IDENTITY, "(empty)", "not set"
        return
    if s.source.startswith("the variables"):
        yield ENV_RECIPIENTS, recipients, "environment" if os.environ.get(ENV_RECIPIENTS, "").strip() else "not set"
        from_file = os.environ.get(ENV_IDENTITY_FILE, "").strip()
        if from_file:
            yield ENV_IDENTITY_FILE, from_file, "environment"
        yield (
            ENV_IDENTITY,
            MASK if s.identity else "(empty)",
            (ENV_IDENTITY_FILE if from_file else "environment" if s.identity else "not set"),
        )
        return
    yield ENV_RECIPIENTS, recipients, s.source
    yield ENV_IDENTITY, MASK if s.identity else "(empty)", s.source


def _rows_general() -> Iterator[Row]:
    raw = config.load_env_backups_kept()
    try:
        yield "BACKUPS_KEPT", str(config.parse_backups_kept(raw)), "environment" if raw is not None else "default"
    except ArchivistError as exc:
        yield "BACKUPS_KEPT", f"error: {error_line(exc)}", "environment"
    for variable in config.CALENDAR_KEPT.values():
        raw = os.environ.get(variable)
        try:
            value = str(config.parse_calendar_kept(raw, variable))
        except ArchivistError as exc:
            value = f"error: {error_line(exc)}"
        yield variable, value, "environment" if raw is not None else "default"
    yield "NAMESPACE", config.load_namespace() or "(empty)", "environment" if "NAMESPACE" in os.environ else "default"
    origin = (
        "ARCHIVIST_SCHEDULE"
        if os.environ.get("ARCHIVIST_SCHEDULE")
        else "environment"
        if os.environ.get("CRON_SCHEDULE")
        else "default"
    )
    yield "CRON_SCHEDULE", config.load_cron_schedule() or "off (triggered runs only)", origin


PARTS: list[tuple[str, Callable[[], Iterator[Row]]]] = [
    ("DATABASE_*", _rows_postgres),
    ("ELASTICSEARCH_*", _rows_elasticsearch),
    ("S3_*", _s3_rows(config.load_storage, "S3_")),
    ("BACKUP_*", _s3_rows(config.load_backups, "BACKUP_")),
    ("ENCRYPTION_*", _rows_encryption),
    ("general", _rows_general),
]


def rows() -> list[Row]:
    """Every option's row; a part that cannot be read gives one row saying why."""
    found: list[Row] = []
    for label, load in PARTS:
        try:
            found.extend(load())
        except Exception as exc:  # one broken part is reported on its line; the rest still print
            found.append((label, f"error: {error_line(exc)}", ""))
    return found
