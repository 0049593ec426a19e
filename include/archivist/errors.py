"""Exceptions a user can act on. Each carries the CLI exit code for its kind."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ArchivistError(Exception):
    """Base of every error archivist raises on purpose."""

    exit_code = 1


class ConfigurationError(ArchivistError):
    """A setting or connection is missing or invalid."""

    exit_code = 2


class UnreachableError(ArchivistError):
    """A server or bucket cannot be reached with the given settings."""

    exit_code = 3


class VerificationError(ArchivistError):
    """A bundle is corrupt, truncated, not a bundle, or of an unknown format."""

    exit_code = 4


class BackupNotFoundError(ArchivistError):
    """No bundle matches the backup key."""

    exit_code = 5


class TargetNotEmptyError(ArchivistError):
    """A restore in `empty` mode found data in its target."""

    exit_code = 6


class JobFailedError(ArchivistError):
    """A backup or restore job failed while running."""

    exit_code = 7


@contextmanager
def failures_named(job: str, settings: Any) -> Iterator[None]:
    """Turns a low-level failure in the middle of a job (a server lost, a disk full)
    into an ArchivistError that names the server or place; ours pass through."""
    try:
        yield
    except ArchivistError:
        raise
    except Exception as exc:
        raise _named(job, settings, exc) from exc


def _named(job: str, settings: Any, exc: Exception) -> Exception:
    """A low-level failure in the middle of a job, turned into an error that names the server."""
    import botocore.exceptions
    import elastic_transport
    import psycopg

    if isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)) \
            and not isinstance(exc, psycopg.Error):
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return JobFailedError(f"the {job} step ran out of local disk space writing under {exc.filename or 'the temporary folder'}: "
                                  "free some space there, or write the bundle elsewhere")
        where = f"bucket '{settings.bucket}' ({settings.source}) or the backup bucket" if job == "storage" \
            else "the backup bucket"
        return UnreachableError(f"the {job} job lost its S3 server while using {where}: {exc}")
    if isinstance(exc, elastic_transport.ApiError) and 400 <= exc.meta.status < 500 and exc.meta.status != 429:
        return _refused_by_elasticsearch(job, settings, exc)
    if isinstance(exc, (elastic_transport.TransportError, elastic_transport.ApiError)):
        return UnreachableError(f"the {job} job lost {elasticsearch_where(settings)}: {exc}")
    if isinstance(exc, psycopg.Error):
        return UnreachableError(f"the {job} job lost database '{settings.dbname}' at {settings.host}:{settings.port} "
                                f"({settings.source}): {exc}")
    return JobFailedError(f"the {job} job failed: {type(exc).__name__}: {exc}")


# What to do about an Elasticsearch login refused (401) or a request not allowed (403), whether
# before a job (elasticsearch.check) or during one (_refused_by_elasticsearch).
ELASTICSEARCH_LOGIN_FIX = "check the user and password"
ELASTICSEARCH_ROLE_FIX = "give the user a role that allows backups and restores, for example superuser"


def elasticsearch_where(settings: Any) -> str:
    """How messages name an Elasticsearch server: its URL and where that setting came from."""
    return f"Elasticsearch at {settings.url} ({settings.source})"


def _refused_by_elasticsearch(job: str, settings: Any, exc: Any) -> Exception:
    """A request of a running job that Elasticsearch answered with a refusal (4xx): the server is
    there, so this names what it refused rather than reporting it lost."""
    where, status = elasticsearch_where(settings), exc.meta.status
    reason = elasticsearch_reason(exc)
    if status == 401:  # the password was changed, or the user removed, while the job ran
        return ConfigurationError(f"{where} stopped accepting user '{settings.user}' during the {job} job: "
                                  f"{reason} (401); {ELASTICSEARCH_LOGIN_FIX}")
    if status == 403:
        return ConfigurationError(f"user '{settings.user}' may not do what the {job} job asked of {where}: "
                                  f"{reason} (403); {ELASTICSEARCH_ROLE_FIX}")
    return JobFailedError(f"{where} refused a request of the {job} job: {reason} ({status})")


def elasticsearch_reason(exc: Any) -> str:
    """The server's own reason in an Elasticsearch error answer, without the request path it
    repeats. The answer may still be bytes: the raw clients leave answers unparsed."""
    body = exc.body
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    error = body.get("error") if isinstance(body, dict) else None
    reason = (error.get("reason") if isinstance(error, dict) else error) or exc.message
    return re.sub(r" for REST request \[[^\]]*\]$", "", str(reason))
