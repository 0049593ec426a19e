"""Which search server a connection reaches (Elasticsearch 7, 8 or 9, or OpenSearch), and the one
transport every client of this package speaks to it through.

The 8.x Python client is kept for every server (docs/ARCHITECTURE.md#one-client-for-every-search-server
says why): its request shapes are what all of them accept, and only two things differ on the
wire. Elasticsearch 8 and 9 are sent the client's `compatible-with=8` media types (9 serves 8's API
through them); Elasticsearch 7 and OpenSearch are sent plain `application/json`. OpenSearch sends
no `X-Elastic-Product` header, which the client otherwise insists on, so the transport vouches for
it once it has identified the server itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from elastic_transport import HttpHeaders, Transport, TransportApiResponse
from elastic_transport.client_utils import DEFAULT

ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"
PRODUCT_HEADER = "x-elastic-product"
# The nodes API, not `GET /`: that lives in a module (rest-root) the minimal distributions leave out.
NODES = "/_nodes/_all/_none?filter_path=nodes.*.version,nodes.*.build_flavor,nodes.*.distribution"
_COMPATIBLE = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson); compatible-with=\d+")


@dataclass(frozen=True)
class Server:
    """A search server's family and version (its oldest node's)."""

    family: str  # ELASTICSEARCH or OPENSEARCH
    number: str  # "7.17.29", "2.19.6"

    @property
    def version(self) -> tuple[int, int]:
        major, minor = (self.number.split("-")[0].split(".") + ["0"])[:2]
        return int(major), int(minor)

    @property
    def name(self) -> str:
        return "OpenSearch" if self.family == OPENSEARCH else "Elasticsearch"

    def __str__(self) -> str:
        return f"{self.name} {self.number}"

    @property
    def label(self) -> str:
        """As meta.json's `servers` records it: the bare version for Elasticsearch, as bundles always
        have, and `opensearch <version>` for OpenSearch."""
        return self.number if self.family == ELASTICSEARCH else f"{OPENSEARCH} {self.number}"

    @property
    def plain_json(self) -> bool:
        """Whether requests go as plain `application/json` rather than 8's compatible media types."""
        return self.family == OPENSEARCH or self.version < (8, 0)

    @property
    def has_pit(self) -> bool:
        """Whether the export reads through Elasticsearch's point in time, sliced, with the implicit
        `_shard_doc` tiebreaker (7.15+). OpenSearch's own point in time has no tiebreaker for
        search_after and no slicing, so OpenSearch is read with a sliced scroll instead."""
        return self.family == ELASTICSEARCH and self.version >= (7, 15)

    @property
    def has_data_streams(self) -> bool:
        return self.family == OPENSEARCH or self.version >= (7, 9)


def parse(label: str) -> Server:
    """A server from meta.json's `servers` entry: `8.19.21` or `opensearch 2.19.6`."""
    family, _, number = label.rpartition(" ")
    return Server(OPENSEARCH if family == OPENSEARCH else ELASTICSEARCH, number)


def identify(answer: bytes, headers: Mapping[str, str]) -> Server:
    """The server of a nodes-API answer: Elasticsearch names itself in a header (7.14+) and each
    node's build flavour; OpenSearch does neither."""
    nodes = (orjson.loads(answer).get("nodes") or {}).values()
    if not nodes:
        raise ValueError("the nodes API listed no node")
    oldest = min(nodes, key=lambda n: tuple(int(p) for p in re.findall(r"\d+", n["version"].split("-")[0])))
    elastic = headers.get(PRODUCT_HEADER) == "Elasticsearch" or "build_flavor" in oldest
    family = ELASTICSEARCH if elastic and oldest.get("distribution") != OPENSEARCH else OPENSEARCH
    return Server(family, oldest["version"])


def _plain(headers: Any) -> Any:
    """The headers with 8's compatible media types turned back into plain ones."""
    if headers is DEFAULT or not headers:
        return headers
    out = HttpHeaders(headers)
    for key in ("accept", "content-type"):
        if key in out:
            out[key] = _COMPATIBLE.sub(r"application/\1", out[key])
    return out


class SearchTransport(Transport):
    """Identifies the server with its first request, then speaks its dialect (module docstring)."""

    server: Server | None = None
    _plain_json = False  # of the server, kept apart: asked on every request
    _vouch = False

    def perform_request(self, method: str, target: str, **kwargs: Any) -> TransportApiResponse:
        if self.server is None:
            self.server = self._identify(kwargs)
            if self.server is not None:
                self._plain_json, self._vouch = self.server.plain_json, self.server.family == OPENSEARCH
        if self._plain_json:
            kwargs["headers"] = _plain(kwargs.get("headers", DEFAULT))
        response = super().perform_request(method, target, **kwargs)
        if self._vouch:
            headers = HttpHeaders(response.meta.headers)
            headers[PRODUCT_HEADER] = "Elasticsearch"  # the client's product check: identified above
            response = TransportApiResponse(dataclasses.replace(response.meta, headers=headers), response.body)
        return response

    def _identify(self, kwargs: dict[str, Any]) -> Server | None:
        """The server, from the nodes API asked with the request's own login; None when it does not
        answer that (the request itself then fails the way the client reports)."""
        asked = {k: v for k, v in kwargs.items() if k != "body"}
        asked["headers"] = _plain(kwargs.get("headers", DEFAULT))
        meta, body = super().perform_request("GET", NODES, **asked)
        if meta.status != 200:
            return None
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return identify(raw, meta.headers)
