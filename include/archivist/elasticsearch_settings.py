"""Where the Elasticsearch cluster lives and how to reach it: from the original tool's
ELASTICSEARCH_* variables, or from a connection read as the Elasticsearch provider documents it
(`elasticsearch://user:password@host:9243/https`: the scheme in the schema field) with the
Elasticsearch client's own arguments in the extra (verify_certs, ca_certs, http_compress, api_key...).

Every client archivist makes takes its login, TLS and compression from `client_options`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from archivist.errors import ConfigurationError
from archivist.settings_values import flag, port, required

SCHEMES = ("http", "https")
# The extras archivist reads, each an argument of the Elasticsearch client of the same name
# (`timeout` is the provider's documented name for request_timeout).
TLS_EXTRAS = ("verify_certs", "ca_certs", "client_cert", "client_key", "ssl_assert_fingerprint")
CLIENT_EXTRAS = ("http_compress", "api_key", "timeout", "request_timeout", *TLS_EXTRAS)
# Extras only the provider's SQL hook reads, and the scheme as older archivist connections gave it.
IGNORED_EXTRAS = frozenset({"fetch_size", "field_multi_value_leniency"})
SCHEME_EXTRAS = ("scheme", "protocol")
DEFAULT_SOURCE = "settings given in code"


@dataclass(frozen=True)
class ElasticsearchSettings:
    """Where the Elasticsearch cluster lives (`url`, with its scheme) and how to log in and verify
    it. TLS options apply to an https URL only; `api_key` replaces the user and password."""

    url: str
    user: str = ""
    password: str = field(default="", repr=False)
    source: str = DEFAULT_SOURCE
    verify_certs: bool = True
    ca_certs: str = ""  # a PEM file of the CAs to trust; the system's when empty
    client_cert: str = ""  # a PEM certificate (and client_key its key) to prove who archivist is
    client_key: str = ""
    ssl_assert_fingerprint: str = ""  # the server certificate's SHA-256, instead of a CA
    http_compress: bool = False
    api_key: str = field(default="", repr=False)  # base64 of "id:key", as Elasticsearch issues it
    request_timeout: float | None = None  # seconds a job's request may take; archivist's own when None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    def client_options(self) -> dict[str, Any]:
        """The Elasticsearch client's arguments for login, TLS and compression. A file named here
        that is not there is a configuration error naming the setting."""
        options: dict[str, Any] = {"http_compress": self.http_compress}
        if self.api_key:
            options["api_key"] = self.api_key
        elif self.user:
            options["basic_auth"] = (self.user, self.password)
        if self.scheme != "https":
            return options
        options["verify_certs"] = self.verify_certs
        for name in ("ca_certs", "client_cert", "client_key"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise ConfigurationError(f"{name} of {self.source} names {path}, which is not a file")
            if path:
                options[name] = path
        if self.ssl_assert_fingerprint:
            options["ssl_assert_fingerprint"] = self.ssl_assert_fingerprint
        return options


def _api_key(value: Any, source: str) -> str:
    """The API key as the client sends it: the encoded key, or an [id, key] pair encoded here."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return base64.b64encode(f"{value[0]}:{value[1]}".encode()).decode()
    if isinstance(value, str):
        return value.strip()
    raise ConfigurationError(f"extra 'api_key' of {source} must be the encoded key or an [id, key] pair")


def _timeout(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds above 0, got {value!r}")
    return seconds


def _checked(settings: ElasticsearchSettings) -> ElasticsearchSettings:
    """Refuses TLS options on a plain http URL, where they would be dropped without a word,
    and two logins at once."""
    tls = [name for name in TLS_EXTRAS if name != "verify_certs" and getattr(settings, name)]
    if settings.scheme == "http" and tls:
        raise ConfigurationError(
            f"{settings.source} sets {', '.join(tls)} but its scheme is http, which has no TLS: make the scheme https"
        )
    if settings.api_key and settings.user:
        raise ConfigurationError(
            f"{settings.source} has both a login and an API key: keep one of them (an API key needs no login)"
        )
    return settings


def elasticsearch_from_env(env: Mapping[str, str]) -> ElasticsearchSettings:
    """The ELASTICSEARCH_* variables; TLS from ELASTICSEARCH_CA_CERTS, _VERIFY_CERTS, _CLIENT_CERT,
    _CLIENT_KEY, and ELASTICSEARCH_API_KEY for a key instead of a user and password."""
    protocol = env.get("ELASTICSEARCH_PROTOCOL", "").strip() or "http"
    if protocol not in SCHEMES:
        raise ConfigurationError(f"ELASTICSEARCH_PROTOCOL must be http or https, got {protocol!r}")
    host = required(env, "ELASTICSEARCH_HOST")
    verify = env.get("ELASTICSEARCH_VERIFY_CERTS", "").strip()
    return _checked(
        ElasticsearchSettings(
            url=f"{protocol}://{host}:{port(env, 'ELASTICSEARCH_PORT', 9200)}",
            user=env.get("ELASTICSEARCH_USER", ""),
            password=env.get("ELASTICSEARCH_PASSWORD", ""),
            source="ELASTICSEARCH_* variables",
            verify_certs=flag(verify, "ELASTICSEARCH_VERIFY_CERTS") if verify else True,
            ca_certs=env.get("ELASTICSEARCH_CA_CERTS", "").strip(),
            client_cert=env.get("ELASTICSEARCH_CLIENT_CERT", "").strip(),
            client_key=env.get("ELASTICSEARCH_CLIENT_KEY", "").strip(),
            api_key=env.get("ELASTICSEARCH_API_KEY", "").strip(),
        )
    )


def _scheme(conn: Any, host: str, extra: Mapping[str, Any], source: str) -> tuple[str, str]:
    """The scheme and the bare host: from `https://` before the host, else the schema field (where
    the provider documents it), else an extra `scheme`; http when none is given."""
    found = [("the schema field", conn.schema)] + [(f"extra {name!r}", extra.get(name)) for name in SCHEME_EXTRAS]
    if "://" in host:
        scheme, _, host = host.partition("://")
        found.insert(0, ("the host", scheme))
    where, scheme = next(((w, s) for w, s in found if s), ("", "http"))
    scheme = scheme.strip().lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(f"{source} has the scheme {scheme!r} in {where}: use http or https")
    return scheme, host.rstrip("/")


def elasticsearch_from_connection(conn: Any) -> ElasticsearchSettings:
    """An Elasticsearch connection as the provider documents it, URI or JSON."""
    source = f"connection '{conn.conn_id}'"
    if not conn.host:
        raise ConfigurationError(f"{source} needs a host")
    extra = conn.extra_dejson
    unknown = sorted(set(extra) - set(CLIENT_EXTRAS) - IGNORED_EXTRAS - set(SCHEME_EXTRAS))
    if unknown:
        raise ConfigurationError(
            f"{source} has extra {', '.join(map(repr, unknown))}, which archivist does not pass to "
            f"Elasticsearch: use {', '.join(CLIENT_EXTRAS)}, or remove it"
        )
    scheme, host = _scheme(conn, conn.host, extra, source)
    timeout = extra.get("request_timeout", extra.get("timeout"))
    return _checked(
        ElasticsearchSettings(
            url=f"{scheme}://{host}:{int(conn.port or 9200)}",
            user=conn.login or "",
            password=conn.password or "",
            source=source,
            verify_certs=flag(extra.get("verify_certs", True), f"extra 'verify_certs' of {source}"),
            ca_certs=str(extra.get("ca_certs") or ""),
            client_cert=str(extra.get("client_cert") or ""),
            client_key=str(extra.get("client_key") or ""),
            ssl_assert_fingerprint=str(extra.get("ssl_assert_fingerprint") or ""),
            http_compress=flag(extra.get("http_compress", False), f"extra 'http_compress' of {source}"),
            api_key=_api_key(extra["api_key"], source) if extra.get("api_key") else "",
            request_timeout=None if timeout in (None, "") else _timeout(timeout, f"extra 'timeout' of {source}"),
        )
    )
