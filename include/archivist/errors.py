"""Exceptions a user can act on. Each carries the CLI exit code for its kind."""

from __future__ import annotations

import json
import re
import ssl
from typing import Any


class ArchivistError(Exception):
    """Base of every error archivist raises on purpose."""

    exit_code = 1


class ConfigurationError(ArchivistError):
    """A setting or connection is missing or invalid, or a server refused the login or the request:
    the message names the setting, the connection or the environment variable, and how to fix it."""

    exit_code = 2


class UnreachableError(ArchivistError):
    """A server or bucket cannot be reached with the given settings."""

    exit_code = 3


class VerificationError(ArchivistError):
    """A bundle is corrupt, truncated, forged, not a bundle, or of a format version this archivist
    does not know. Raised before any target is written (verify), or during a restore job when a
    member's bytes do not match what verify checked, which stops that job."""

    exit_code = 4


class BackupNotFoundError(ArchivistError):
    """No bundle matches the backup key; the message lists the closest keys there are."""

    exit_code = 5


class TargetNotEmptyError(ArchivistError):
    """A restore in `empty` mode found data in its target, so nothing was written; the message names
    every target that holds data and says that `replace` mode drops what the bundle recreates."""

    exit_code = 6


class JobFailedError(ArchivistError):
    """A backup or restore job failed while running."""

    exit_code = 7


class LockHeldError(ArchivistError):
    """Another backup or restore of the same stack holds the lock in the backup bucket; the
    message names it, since when, and how to clear a lock whose holder is gone."""

    exit_code = 8


class LockLostError(ArchivistError):
    """A running backup or restore found the lock held by someone else: it was taken over or
    cleared while this one ran, so the two may have overlapped."""

    exit_code = 8


# What to do about an Elasticsearch login refused (401) or a request not allowed (403), whether
# before a job (the source's check) or during one (runner/failures.py).
ELASTICSEARCH_LOGIN_FIX = "check the user and password"
ELASTICSEARCH_ROLE_FIX = "give the user a role that allows backups and restores, for example superuser"
# What to do when a TLS handshake fails: the scheme or the trusted CA does not fit the server.
ELASTICSEARCH_TLS_FIX = (
    "use https only if the server speaks TLS, set ca_certs (ELASTICSEARCH_CA_CERTS) to the CA "
    "certificate that signed the server's certificate, and client_cert and client_key to a certificate "
    "the server trusts if it asks for one"
)
POSTGRES_TLS_FIX = (
    "check sslmode, set sslrootcert (DATABASE_SSLROOTCERT) to the CA certificate that signed the "
    "server's certificate, and sslcert and sslkey to a certificate the server trusts if it asks for one"
)


def elasticsearch_where(settings: Any) -> str:
    """How messages name an Elasticsearch server: its URL and where that setting came from."""
    return f"Elasticsearch at {settings.url} ({settings.source})"


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


def tls_reason(exc: BaseException) -> str:
    """What failed in a TLS handshake, in the ssl module's words ("certificate verify failed: unable
    to get local issuer certificate"): the client's own error says only "TLS error"."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return re.sub(r"^\[SSL: \w+\] | \(_ssl\.c:\d+\)$", "", str(cause))
        cause = cause.__cause__ or cause.__context__
    return str(exc)
