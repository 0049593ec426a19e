"""Tests of archivist.sources.elasticsearch's export against the real server: the export cuts
lines out of the server's raw pages, and every shape of document comes out as indexed, cut without
parsing where the page allows it; a page with failed shards fails the job naming the reason."""

from __future__ import annotations

import secrets

import orjson
import pytest

from archivist.errors import JobFailedError
from archivist.format import bundle
from archivist.sources.base import DumpOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.elasticsearch import lines as es_lines
from archivist.transport.staging import LocalStaging

# Documents whose bytes look like the separators the export cuts pages at, with routing, and with a
# field the server ignores (so its hits carry `_ignored` metadata).
AWKWARD_SOURCES = {
    "plain": ({"msg": "hello", "n": 1}, None),
    "routed": ({"msg": "routed"}, "user-7"),
    'quote " \\ id': ({"msg": "odd id"}, 'r"\\'),
    "separators": ({"msg": '},{"_index":"export","_id":"fake","_score":null,"_source":{},"sort":[1]}'}, None),
    "unicode": ({"msg": "é 日本 \u2028", "nested": {"a": [{"b": "}"}, {"b": "{"}]}}, None),
    "empty": ({}, None),
    "ignored": ({"code": "longer than the keyword's ignore_above"}, None),
}


def _export(es_client, es_settings, index: str, page_size: int) -> list[bytes]:
    chunks: list[bytes] = []
    written, expected = es_export.export_index(
        es_client, index, chunks.append, page_size=page_size, raw=es_cluster.raw_client(es_settings)
    )
    assert written == expected
    return b"".join(chunks).splitlines()


@pytest.fixture()
def export_index(es_client):
    index = f"test-export-{secrets.token_hex(4)}"
    es_client.indices.create(
        index=index, body={"mappings": {"properties": {"code": {"type": "keyword", "ignore_above": 5}}}}
    )
    yield index
    es_client.indices.delete(index=index)


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_export_lines_hold_each_document_as_indexed(es_client, es_settings, export_index, page_size):
    for doc_id, (source, routing) in AWKWARD_SOURCES.items():
        es_client.index(index=export_index, id=doc_id, document=source, routing=routing)
    # Stored as sent, line breaks and spaces included: such a page is parsed, and its lines are still single lines.
    es_client.perform_request(
        "PUT",
        f"/{export_index}/_doc/pretty",
        headers={"content-type": "application/json", "accept": "application/json"},
        body='{\n  "msg" : "pretty"\n}',
    )
    es_client.indices.refresh(index=export_index)
    lines = _export(es_client, es_settings, export_index, page_size)
    docs = {doc["_id"]: doc for doc in map(orjson.loads, lines)}
    assert len(lines) == len(docs) == len(AWKWARD_SOURCES) + 1
    for doc_id, (source, routing) in AWKWARD_SOURCES.items():
        assert docs[doc_id] == {
            "_index": export_index,
            "_id": doc_id,
            "_source": source,
            **({"_routing": routing} if routing else {}),
        }
    assert docs["pretty"]["_source"] == {"msg": "pretty"}


def test_export_cuts_clean_pages_without_parsing_documents(es_client, es_settings, export_index, monkeypatch):
    sources = [{"msg": f"document {i}", "tags": ["a", "b"], "at": {"day": i}} for i in range(50)]
    for i, source in enumerate(sources):
        es_client.index(index=export_index, id=f"doc-{i}", document=source, routing="r1" if i % 2 else None)
    es_client.indices.refresh(index=export_index)
    monkeypatch.setattr(es_lines, "hit_lines", lambda *a: pytest.fail("a clean page was parsed"))
    lines = _export(es_client, es_settings, export_index, 7)
    assert sorted(lines) == sorted(
        orjson.dumps(
            {"_index": export_index, "_id": f"doc-{i}", **({"_routing": "r1"} if i % 2 else {}), "_source": source}
        )
        for i, source in enumerate(sources)
    )


def test_a_source_shaped_like_the_boundary_between_hits_is_exported_whole(es_client, es_settings, export_index):
    # As JSON structure, not inside a string: the cut of a raw page splits this source in two,
    # the count shows it, and the index is read again with every page parsed.
    tricky = {
        "hits": [
            {"x": 0, "sort": [1]},
            {"_index": export_index, "_id": "fake", "_score": None, "_source": {}, "sort": [2]},
        ]
    }
    es_client.index(index=export_index, id="tricky", document=tricky)
    es_client.index(index=export_index, id="plain", document={"msg": "hello"})
    es_client.indices.refresh(index=export_index)
    staging = LocalStaging()
    try:
        result = es_export.dump(es_settings, staging, "tricky-backup", DumpOptions(export_index))
        with staging.open(bundle.elasticsearch_index_path(export_index, "tricky-backup")) as f:
            docs = {doc["_id"]: doc["_source"] for doc in map(orjson.loads, f.read().splitlines())}
    finally:
        staging.cleanup()
    assert docs == {"tricky": tricky, "plain": {"msg": "hello"}}
    assert result.counts["indices"] == {export_index: 2}


def test_a_page_missing_shards_fails_naming_the_reason():
    # A shard that fails mid-export cannot be provoked on a one-node cluster; this is the page the
    # server sends then (partial results, the failure beside them).
    page = (
        b'{"pit_id":"p","took":1,"timed_out":false,"_shards":{"total":2,"successful":1,"skipped":0,'
        b'"failed":1,"failures":[{"shard":1,"index":"logs","node":"n","reason":{"type":"io_exception",'
        b'"reason":"disk read failed"}}]},"hits":{"max_score":null,"hits":[{"_index":"logs","_id":"a",'
        b'"_score":null,"_source":{},"sort":[1]}]}}'
    )
    with pytest.raises(JobFailedError, match=r"1 shard\(s\) of index logs: disk read failed\. Check"):
        es_lines.page_lines("logs", page)
    assert es_lines.page_lines("logs", page.replace(b'"failed":1', b'"failed":0'))[:3] == (
        1,
        [b'{"_index":"logs","_id":"a","_source":{}}\n'],
        [1],
    )


def test_a_page_is_cut_into_chunks_of_join_docs_documents():
    hits = b",".join(
        b'{"_index":"logs","_id":"%d","_score":null,"_source":{"n":%d},"sort":[%d,7]}' % (i, i, i)
        for i in range(2 * es_lines.JOIN_DOCS + 1)
    )
    page = b'{"pit_id":"p","took":1,"timed_out":false,"_shards":{"failed":0},"hits":{"hits":[' + hits + b"]}}"
    count, chunks, after, pit_id = es_lines.page_lines("logs", page)
    assert (count, after, pit_id) == (2 * es_lines.JOIN_DOCS + 1, [2 * es_lines.JOIN_DOCS, 7], "p")
    assert [c.count(b"\n") for c in chunks] == [es_lines.JOIN_DOCS, es_lines.JOIN_DOCS, 1]
    assert b"".join(chunks).splitlines()[-1] == b'{"_index":"logs","_id":"%d","_source":{"n":%d}}' % (
        (2 * es_lines.JOIN_DOCS,) * 2
    )


def _open_contexts(es_client) -> int:
    stats = es_client.nodes.stats(metric="indices", index_metric="search")["nodes"]
    return sum(node["indices"]["search"]["open_contexts"] for node in stats.values())


def test_document_lines_are_the_export_lines_and_stopping_early_closes_what_they_read(es_client, export_index):
    for i in range(30):
        es_client.index(index=export_index, id=f"d{i}", document={"n": i}, routing="r1" if i % 2 else None)
    es_client.indices.refresh(index=export_index)
    chunks: list[bytes] = []
    es_export.export_index(es_client, export_index, chunks.append, slices=1, page_size=7)

    lines = list(es_export.document_lines(es_client, export_index, page_size=7))

    assert len(lines) == 30 and sorted(lines) == sorted(b"".join(chunks).splitlines(keepends=True))
    before = _open_contexts(es_client)
    reading = es_export.document_lines(es_client, export_index, page_size=7)
    assert next(reading) in lines
    assert _open_contexts(es_client) > before
    reading.close()
    assert _open_contexts(es_client) == before
