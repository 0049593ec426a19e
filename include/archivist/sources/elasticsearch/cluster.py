"""Reaching an Elasticsearch or OpenSearch cluster: its clients (answers parsed, or left as the
bytes sent), the check that names what to fix when it refuses and which server it is, and the
indices it lists and the documents it counts.

JSON goes through orjson both ways, several times faster than the standard library's on the pages
an export reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from elastic_transport import TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, TransportError
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from archivist.config import ElasticsearchSettings
from archivist.errors import (
    ELASTICSEARCH_LOGIN_FIX,
    ELASTICSEARCH_ROLE_FIX,
    ELASTICSEARCH_TLS_FIX,
    ConfigurationError,
    UnreachableError,
    elasticsearch_reason,
    elasticsearch_where,
    tls_reason,
)
from archivist.sources.elasticsearch.server import SearchTransport, Server

log = logging.getLogger(__name__)

# The names one request carries in its URL: the server refuses a request line over 4 KB
# (`http.max_initial_line_length`), and the rest of the line needs room too.
URL_NAMES_BYTES = 3000


class _OrjsonCompatibilitySerializer(OrjsonSerializer):
    mimetype = "application/vnd.elasticsearch+json"


class _BodyNdjsonSerializer(NdjsonSerializer):
    """Sends a bulk body that is already ndjson bytes as it is. The client's own serializer copies
    every body twice (into a bytearray, then into new bytes), so each request in flight would hold
    its body three times over (docs/PERFORMANCE.md#bulk-bodies-sent-as-they-are)."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


class _RawSerializer(OrjsonSerializer):
    """Leaves answers as bytes (requests are still serialised with orjson)."""

    def loads(self, data: bytes) -> bytes:
        return data


class _RawCompatibilitySerializer(_RawSerializer):
    mimetype = "application/vnd.elasticsearch+json"


def client(settings: ElasticsearchSettings, quick: bool = False) -> Elasticsearch:
    """A client; `quick` for checks that must fail in seconds rather than retry."""
    return _client(settings, quick, OrjsonSerializer(), _OrjsonCompatibilitySerializer())


def raw_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """A client whose answers are the raw bytes Elasticsearch sent: the export's pages, and the
    restore's bulk answers, which need parsing only when they report errors."""
    return _client(settings, False, _RawSerializer(), _RawCompatibilitySerializer())


def _client(
    settings: ElasticsearchSettings, quick: bool, json: OrjsonSerializer, compatible: OrjsonSerializer
) -> Elasticsearch:
    return Elasticsearch(
        settings.url,
        **settings.client_options(),
        request_timeout=10 if quick else settings.request_timeout or 120,
        max_retries=0 if quick else 3,
        retry_on_timeout=not quick,
        transport_class=SearchTransport,
        serializers={
            "application/json": json,
            "application/vnd.elasticsearch+json": compatible,
            "application/x-ndjson": _BodyNdjsonSerializer(),
        },
    )


def check_login(settings: ElasticsearchSettings, quick: bool = False) -> str:
    """Reaches the cluster and returns its version as meta.json records it, or names what to fix."""
    return check_server(settings, quick).label


def check_server(settings: ElasticsearchSettings, quick: bool = False) -> Server:
    """Reaches the cluster and returns which server it is, or names what to fix."""
    where = elasticsearch_where(settings)
    try:
        return server_of(client(settings, quick))
    except AuthenticationException as exc:  # 401: wrong or missing user and password
        if settings.api_key:
            raise ConfigurationError(
                f"cannot log in to {where} with the API key: {elasticsearch_reason(exc)} (401); "
                "check that the key is valid and not expired"
            ) from None
        if not settings.user:
            raise ConfigurationError(
                f"cannot log in to {where}: the server requires a user and password "
                f"({elasticsearch_reason(exc)}, 401); set the user and password"
            ) from None
        raise ConfigurationError(
            f"cannot log in to {where} as user '{settings.user}': {elasticsearch_reason(exc)} "
            f"(401); {ELASTICSEARCH_LOGIN_FIX}"
        ) from None
    except AuthorizationException as exc:  # 403: logged in, but not allowed
        raise ConfigurationError(
            f"user '{settings.user}' may not read {where}: {elasticsearch_reason(exc)} (403); {ELASTICSEARCH_ROLE_FIX}"
        ) from None
    except TlsError as exc:
        raise ConfigurationError(
            f"cannot open a TLS connection to {where}: {tls_reason(exc)}; {ELASTICSEARCH_TLS_FIX}"
        ) from None
    except (TransportError, ApiError) as exc:
        raise UnreachableError(f"cannot reach {where}: {exc}") from None


def server_of(es: Elasticsearch) -> Server:
    """The server the client reaches: its transport identifies it with its first request."""
    transport = es.transport
    if not isinstance(transport, SearchTransport):
        raise TypeError("a client of cluster.client() or cluster.raw_client() is needed")
    if transport.server is None:
        es.nodes.info(node_id="_all", metric="_none")  # fails as the client reports a refusal
    if transport.server is None:
        raise UnreachableError("the server answered requests but not its nodes API (GET _nodes)")
    return transport.server


def list_indices(es: Elasticsearch, pattern: str = "*") -> list[str]:
    """Open, non-hidden indices matching `pattern`, skipping names that start with a dot."""
    found = es.indices.get(index=pattern, expand_wildcards="open", allow_no_indices=True, ignore_unavailable=True)
    return sorted(name for name in found if not name.startswith("."))


def index_states(es: Elasticsearch, pattern: str = "*") -> dict[str, str]:
    """Each non-hidden index matching `pattern`, open or closed, with its state ("open" or
    "close"), skipping names that start with a dot."""
    found = es.cluster.state(
        metric="metadata",
        index=pattern,
        expand_wildcards="open,closed",
        allow_no_indices=True,
        ignore_unavailable=True,
        filter_path="metadata.indices.*.state",
    )
    indices = (found.get("metadata") or {}).get("indices") or {}
    return {name: body["state"] for name, body in sorted(indices.items()) if not name.startswith(".")}


@contextmanager
def opened_for_reading(es: Elasticsearch, index: str) -> Iterator[None]:
    """A closed index opened while its documents are read, and closed again whatever happens."""
    log.warning("index %s is closed: opening it for the backup, it is closed again afterwards", index)
    es.indices.open(index=index, wait_for_active_shards="1")
    try:
        es.cluster.health(index=index, wait_for_status="yellow", timeout="60s")
        yield
    finally:
        es.indices.close(index=index)


def count(es: Elasticsearch, index: str) -> int:
    """The index's documents, once all it was sent is searchable."""
    es.indices.refresh(index=index)
    return es.count(index=index)["count"]


def name_batches(names: Iterable[str], limit: int = URL_NAMES_BYTES) -> list[list[str]]:
    """The names in batches whose comma-joined list, as the URL carries it (percent-encoded), stays
    within `limit` bytes; a name longer than that alone is its own batch."""
    batches: list[list[str]] = [[]]
    size = 0
    for name in names:
        length = len(quote(name, safe="")) + 1
        if batches[-1] and size + length > limit:
            batches.append([])
            size = 0
        batches[-1].append(name)
        size += length
    return [b for b in batches if b]
