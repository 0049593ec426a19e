"""The drill's digest of an index's ids: the same from the bundle's ndjson and from the index
itself, read as the export reads it, and the same digest drills have always recorded."""

from __future__ import annotations

import io
import secrets

import orjson
import pytest
from elasticsearch.helpers import bulk

from archivist.drill import indices
from archivist.drill.digest import LineDigest
from archivist.sources.elasticsearch import cluster as es_cluster

NDJSON = (
    b'{"_index":"x","_id":"plain","_source":{}}\n'
    b'{"_index":"x","_id":"routed","_routing":"user-7","_source":{"a":1}}\n'
    b"\n" + '{"_index":"x","_id":"quote \\" \\\\ é","_source":{"b":"}\\n{"}}\n'.encode() + b"not json"
)
# sum of BLAKE2b-128 of ["plain",null], ["routed","user-7"], ["quote \" \\ é",null] and [null,null]
# (the line that is no document): what drill records hold for these lines.
NDJSON_DIGEST = "fc5a85123d6da7a5e5ad172c920c4e47"


def _ids(pairs) -> LineDigest:
    digest = LineDigest()
    for doc_id, routing in pairs:
        digest.add(orjson.dumps([doc_id, routing]))
    return digest


def test_the_ids_of_ndjson_are_digested_as_drills_have_recorded_them():
    digest = indices.read_lines(io.BytesIO(NDJSON))
    assert (digest.count, digest.hexdigest) == (4, NDJSON_DIGEST)


@pytest.mark.parametrize("size", [1, 7, 64, len(NDJSON)])
def test_chunks_that_end_inside_a_line_give_the_same_digest(size):
    ids = indices.LineIds()
    for at in range(0, len(NDJSON), size):
        ids.write(NDJSON[at : at + size])
    assert ids.close().hexdigest == NDJSON_DIGEST


@pytest.fixture()
def index(es_client):
    name = f"test-drill-ids-{secrets.token_hex(4)}"
    es_client.indices.create(index=name, settings={"number_of_shards": 3, "number_of_replicas": 0})
    yield name
    es_client.options(ignore_status=404).indices.delete(index=name)


def test_an_index_is_digested_as_its_ndjson_is(es_client, es_settings, index):
    pairs = [(f"d{i}", f"r{i % 3}" if i % 2 else None) for i in range(1200)] + [('quote " \\ é', "é")]
    bulk(es_client, ({"_index": index, "_id": i, "_routing": r, "_source": {"n": i}} for i, r in pairs), refresh=True)
    es_client.indices.close(index=index)  # as a restore leaves an index the bundle says was closed

    digest = indices.read_index(es_client, index, es_cluster.raw_client(es_settings))

    assert digest == _ids(pairs)
    assert indices.read_index(es_client, index) == digest  # pages parsed, not cut
    assert indices.read_index(es_client, index + "-none") is None


def test_a_source_that_misleads_the_cut_of_raw_pages_is_read_again(es_client, es_settings, index, caplog):
    # As JSON structure: the cut of a raw page takes the fake hit inside it for a document.
    fake = {"_index": index, "_id": "fake", "_score": None, "_source": {}, "sort": [2]}
    es_client.index(index=index, id="tricky", document={"hits": [{"x": 0, "sort": [1]}, fake]})
    es_client.index(index=index, id="plain", document={"msg": "hello"}, refresh=True)

    digest = indices.read_index(es_client, index, es_cluster.raw_client(es_settings))

    assert digest == _ids([("tricky", None), ("plain", None)])
    assert "reading it again" in caplog.text
