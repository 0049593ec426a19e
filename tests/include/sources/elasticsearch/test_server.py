"""Which server a nodes-API answer names, what each is sent, and how meta.json records it."""

from __future__ import annotations

import orjson
import pytest
from elastic_transport import HttpHeaders

from archivist.sources.elasticsearch import server
from archivist.sources.elasticsearch.server import ELASTICSEARCH, OPENSEARCH, Server


def _nodes(*nodes: dict) -> bytes:
    return orjson.dumps({"nodes": {f"n{i}": node for i, node in enumerate(nodes)}})


@pytest.mark.parametrize(
    ("nodes", "headers", "family", "number"),
    [
        (
            [{"version": "8.19.21", "build_flavor": "default"}],
            {"x-elastic-product": "Elasticsearch"},
            ELASTICSEARCH,
            "8.19.21",
        ),
        ([{"version": "7.17.29", "build_flavor": "oss"}], {}, ELASTICSEARCH, "7.17.29"),
        ([{"version": "2.19.6"}], {}, OPENSEARCH, "2.19.6"),
        ([{"version": "3.6.0"}, {"version": "2.19.6"}], {}, OPENSEARCH, "2.19.6"),
        (
            [{"version": "9.2.4", "build_flavor": "default"}, {"version": "9.10.0", "build_flavor": "default"}],
            {},
            ELASTICSEARCH,
            "9.2.4",
        ),
    ],
)
def test_the_nodes_answer_names_the_family_and_the_oldest_version(nodes, headers, family, number):
    assert server.identify(_nodes(*nodes), headers) == Server(family, number)


def test_a_nodes_answer_without_nodes_is_refused():
    with pytest.raises(ValueError, match="no node"):
        server.identify(b'{"nodes":{}}', {})


@pytest.mark.parametrize(
    ("found", "plain", "pit", "label"),
    [
        (Server(ELASTICSEARCH, "7.17.29"), True, True, "7.17.29"),
        (Server(ELASTICSEARCH, "7.10.2"), True, False, "7.10.2"),
        (Server(ELASTICSEARCH, "8.19.21"), False, True, "8.19.21"),
        (Server(ELASTICSEARCH, "9.2.4"), False, True, "9.2.4"),
        (Server(OPENSEARCH, "2.19.6"), True, False, "opensearch 2.19.6"),
    ],
)
def test_each_server_gets_its_media_types_its_reader_and_its_label(found, plain, pit, label):
    assert (found.plain_json, found.has_pit, found.label) == (plain, pit, label)
    assert server.parse(label) == found


def test_compatible_media_types_become_plain_ones_and_others_stay():
    sent = HttpHeaders(
        {
            "accept": "application/vnd.elasticsearch+json; compatible-with=8",
            "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
            "authorization": "Basic eA==",
        }
    )
    plain = server._plain(sent)
    assert plain["accept"] == "application/json"
    assert plain["content-type"] == "application/x-ndjson"
    assert plain["authorization"] == "Basic eA=="
    assert sent["accept"].startswith("application/vnd."), "the client's own headers are left as they were"
