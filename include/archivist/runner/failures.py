"""Low-level failures in the middle of a job, turned into errors that name the server or place."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.exceptions

from archivist.config import S3Settings
from archivist.errors import (
    ELASTICSEARCH_LOGIN_FIX,
    ELASTICSEARCH_ROLE_FIX,
    ELASTICSEARCH_TLS_FIX,
    ArchivistError,
    ConfigurationError,
    JobFailedError,
    UnreachableError,
    elasticsearch_reason,
    elasticsearch_where,
    tls_reason,
)


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


def _errors_of(module: str, name: str) -> tuple[type[BaseException], ...]:
    """A client library's exception class, or none when no one imported the library (then none of
    its exceptions can exist): a task's job loads only its own client
    (docs/PERFORMANCE.md#task-start-up-imports)."""
    loaded = sys.modules.get(module)
    return (getattr(loaded, name),) if loaded is not None else ()


def _named(job: str, settings: Any, exc: Exception) -> Exception:
    """A low-level failure in the middle of a job, turned into an error that names the server."""
    pg_error = _errors_of("psycopg", "Error")
    es_api, es_tls = _errors_of("elastic_transport", "ApiError"), _errors_of("elastic_transport", "TlsError")
    es_transport = _errors_of("elastic_transport", "TransportError")
    if isinstance(
        exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)
    ) and not isinstance(exc, pg_error):
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return JobFailedError(
                f"the {job} step ran out of local disk space writing under {exc.filename or 'the temporary folder'}: "
                "free some space there, or write the bundle elsewhere"
            )
        where = (  # a job whose own data is in a bucket may have lost either bucket
            f"bucket '{settings.bucket}' ({settings.source}) or the backup bucket"
            if isinstance(settings, S3Settings)
            else "the backup bucket"
        )
        return UnreachableError(f"the {job} job lost its S3 server while using {where}: {exc}")
    if isinstance(exc, es_api) and 400 <= exc.meta.status < 500 and exc.meta.status != 429:  # type: ignore[attr-defined]
        return _refused_by_elasticsearch(job, settings, exc)
    if isinstance(exc, es_tls):  # a certificate that changed while the job ran
        return ConfigurationError(
            f"the {job} job could not open a TLS connection to {elasticsearch_where(settings)}: {tls_reason(exc)}; "
            f"{ELASTICSEARCH_TLS_FIX}"
        )
    if isinstance(exc, es_transport + es_api):
        return UnreachableError(f"the {job} job lost {elasticsearch_where(settings)}: {exc}")
    if isinstance(exc, pg_error):
        return UnreachableError(
            f"the {job} job lost database '{settings.dbname}' at {settings.host}:{settings.port} "
            f"({settings.source}): {exc}"
        )
    return JobFailedError(f"the {job} job failed: {type(exc).__name__}: {exc}")


def _refused_by_elasticsearch(job: str, settings: Any, exc: Any) -> Exception:
    """A request of a running job that Elasticsearch answered with a refusal (4xx): the server is
    there, so this names what it refused rather than reporting it lost."""
    where, status = elasticsearch_where(settings), exc.meta.status
    reason = elasticsearch_reason(exc)
    if status == 401:  # the password was changed, or the user removed, while the job ran
        return ConfigurationError(
            f"{where} stopped accepting user '{settings.user}' during the {job} job: "
            f"{reason} (401); {ELASTICSEARCH_LOGIN_FIX}"
        )
    if status == 403:
        return ConfigurationError(
            f"user '{settings.user}' may not do what the {job} job asked of {where}: "
            f"{reason} (403); {ELASTICSEARCH_ROLE_FIX}"
        )
    return JobFailedError(f"{where} refused a request of the {job} job: {reason} ({status})")
