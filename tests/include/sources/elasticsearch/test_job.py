"""Tests of archivist.sources.elasticsearch.job's export and restore lines. The export cuts lines out of the
server's raw pages: against the real server, every shape of document comes out as indexed, cut
without parsing where the page allows it. The restore turns lines into bulk bodies: lines in
archivist's shape are cut exactly as parsing them would give, other shapes are parsed, bodies hold
whole documents at any size limit and go to the client uncopied; and documents the server refuses
fail the restore with the server's reason."""

from __future__ import annotations

import io
import secrets
import time

import orjson
import pytest

from archivist.format import bundle
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.elasticsearch import lines as es_lines
from archivist.sources.elasticsearch import restore as es_restore
from archivist.errors import JobFailedError
from archivist.progress import Progress
from archivist.transport.staging import LocalStaging

ARCHIVIST_LINES = [
    b'{"_index":"logs","_id":"a1","_source":{"msg":"hello","n":1}}\n',
    b'{"_index":"logs","_id":"quote \\" and \\\\ slash","_routing":"user-7","_source":{"msg":"routed"}}\n',
    '{"_index":"logs","_id":"unicode é 日本","_source":{"msg":"{\\"_index\\":\\"x\\"}\\n","nested":{"a":[1,{"b":"}"}]}}}\n'.encode(),
    b'{"_index":"logs","_id":"empty","_source":{}}\n',
]
# The original tool's lines (elasticdump's shape: spaces, _type, _score) and a blank line.
FOREIGN_LINES = [
    b'{"_index": "logs", "_type": "_doc", "_id": "old-1", "_score": 1, "_source": {"msg": "from tranque"}}\n',
    b'\n',
]


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
    written, expected = es_export.export_index(es_client, index, chunks.append, page_size=page_size,
                                               raw=es_cluster.raw_client(es_settings))
    assert written == expected
    return b"".join(chunks).splitlines()


@pytest.fixture()
def export_index(es_client):
    index = f"test-export-{secrets.token_hex(4)}"
    es_client.indices.create(index=index, body={"mappings": {"properties": {"code": {"type": "keyword",
                                                                                      "ignore_above": 5}}}})
    yield index
    es_client.indices.delete(index=index)


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_export_lines_hold_each_document_as_indexed(es_client, es_settings, export_index, page_size):
    for doc_id, (source, routing) in AWKWARD_SOURCES.items():
        es_client.index(index=export_index, id=doc_id, document=source, routing=routing)
    # Stored as sent, line breaks and spaces included: such a page is parsed, and its lines are still single lines.
    es_client.perform_request("PUT", f"/{export_index}/_doc/pretty", headers={"content-type": "application/json", "accept": "application/json"},
                              body='{\n  "msg" : "pretty"\n}')
    es_client.indices.refresh(index=export_index)
    lines = _export(es_client, es_settings, export_index, page_size)
    docs = {doc["_id"]: doc for doc in map(orjson.loads, lines)}
    assert len(lines) == len(docs) == len(AWKWARD_SOURCES) + 1
    for doc_id, (source, routing) in AWKWARD_SOURCES.items():
        assert docs[doc_id] == {"_index": export_index, "_id": doc_id, "_source": source,
                                **({"_routing": routing} if routing else {})}
    assert docs["pretty"]["_source"] == {"msg": "pretty"}


def test_export_cuts_clean_pages_without_parsing_documents(es_client, es_settings, export_index, monkeypatch):
    sources = [{"msg": f"document {i}", "tags": ["a", "b"], "at": {"day": i}} for i in range(50)]
    for i, source in enumerate(sources):
        es_client.index(index=export_index, id=f"doc-{i}", document=source, routing="r1" if i % 2 else None)
    es_client.indices.refresh(index=export_index)
    monkeypatch.setattr(es_lines, "hit_lines", lambda *a: pytest.fail("a clean page was parsed"))
    lines = _export(es_client, es_settings, export_index, 7)
    assert sorted(lines) == sorted(orjson.dumps({"_index": export_index, "_id": f"doc-{i}",
                                                 **({"_routing": "r1"} if i % 2 else {}), "_source": source})
                                   for i, source in enumerate(sources))


def test_a_source_shaped_like_the_boundary_between_hits_is_exported_whole(es_client, es_settings, export_index):
    # As JSON structure, not inside a string: the cut of a raw page splits this source in two,
    # the count shows it, and the index is read again with every page parsed.
    tricky = {"hits": [{"x": 0, "sort": [1]}, {"_index": export_index, "_id": "fake", "_score": None,
                                                "_source": {}, "sort": [2]}]}
    es_client.index(index=export_index, id="tricky", document=tricky)
    es_client.index(index=export_index, id="plain", document={"msg": "hello"})
    es_client.indices.refresh(index=export_index)
    staging = LocalStaging()
    try:
        result = es_export.dump(es_settings, staging, "tricky-backup", export_index)
        with staging.open(bundle.elasticsearch_index_path(export_index, "tricky-backup")) as f:
            docs = {doc["_id"]: doc["_source"] for doc in map(orjson.loads, f.read().splitlines())}
    finally:
        staging.cleanup()
    assert docs == {"tricky": tricky, "plain": {"msg": "hello"}}
    assert result.counts["indices"] == {export_index: 2}


def test_a_page_missing_shards_fails_naming_the_reason():
    # A shard that fails mid-export cannot be provoked on a one-node cluster; this is the page the
    # server sends then (partial results, the failure beside them).
    page = (b'{"pit_id":"p","took":1,"timed_out":false,"_shards":{"total":2,"successful":1,"skipped":0,'
            b'"failed":1,"failures":[{"shard":1,"index":"logs","node":"n","reason":{"type":"io_exception",'
            b'"reason":"disk read failed"}}]},"hits":{"max_score":null,"hits":[{"_index":"logs","_id":"a",'
            b'"_score":null,"_source":{},"sort":[1]}]}}')
    with pytest.raises(JobFailedError, match=r"1 shard\(s\) of index logs: disk read failed\. Check"):
        es_lines.page_lines("logs", page)
    assert es_lines.page_lines("logs", page.replace(b'"failed":1', b'"failed":0'))[:3] == \
        (1, [b'{"_index":"logs","_id":"a","_source":{}}\n'], [1])


def test_a_page_is_cut_into_chunks_of_join_docs_documents():
    hits = b",".join(b'{"_index":"logs","_id":"%d","_score":null,"_source":{"n":%d},"sort":[%d,7]}' % (i, i, i)
                     for i in range(2 * es_lines.JOIN_DOCS + 1))
    page = b'{"pit_id":"p","took":1,"timed_out":false,"_shards":{"failed":0},"hits":{"hits":[' + hits + b"]}}"
    count, chunks, after, pit_id = es_lines.page_lines("logs", page)
    assert (count, after, pit_id) == (2 * es_lines.JOIN_DOCS + 1, [2 * es_lines.JOIN_DOCS, 7], "p")
    assert [c.count(b"\n") for c in chunks] == [es_lines.JOIN_DOCS, es_lines.JOIN_DOCS, 1]
    assert b"".join(chunks).splitlines()[-1] == \
        b'{"_index":"logs","_id":"%d","_source":{"n":%d}}' % ((2 * es_lines.JOIN_DOCS,) * 2)


def _parsed(lines: list[bytes]) -> bytes:
    """The bulk body a full JSON parse of each line gives."""
    out = []
    for raw in lines:
        if raw.strip():
            doc = orjson.loads(raw)
            meta = {"_id": doc["_id"], **({"routing": doc["_routing"]} if "_routing" in doc else {})}
            out += [orjson.dumps({"index": meta}), orjson.dumps(doc["_source"])]
    return b"".join(line + b"\n" for line in out)


def _parsed_shape(lines: list[bytes]) -> bytes:
    """The body line by line through _bulk_pair, for comparing bodies cut at different limits."""
    return b"".join(part for raw in lines if raw.strip() for part in es_lines._bulk_pair(raw))


def _bodies(data: bytes, docs: int, size: int, monkeypatch) -> list[tuple[bytes, int]]:
    monkeypatch.setattr(es_lines, "BULK_CHUNK_DOCS", docs)
    monkeypatch.setattr(es_lines, "BULK_CHUNK_BYTES", size)
    return list(es_lines.bulk_bodies(io.BytesIO(data), Progress("test", "docs")))


@pytest.mark.parametrize("lines", [ARCHIVIST_LINES, ARCHIVIST_LINES + FOREIGN_LINES, FOREIGN_LINES],
                         ids=["archivist", "mixed", "foreign"])
def test_lines_become_the_bulk_body_parsing_them_gives(lines, monkeypatch):
    (body, docs), = _bodies(b"".join(lines), 1000, 1 << 20, monkeypatch)
    assert orjson.loads(b"[" + b",".join(body.splitlines()) + b"]") == \
        orjson.loads(b"[" + b",".join(_parsed(lines).splitlines()) + b"]")
    assert docs == sum(1 for line in lines if line.strip())


def test_archivist_lines_are_cut_not_parsed(monkeypatch):
    monkeypatch.setattr(es_lines.orjson, "loads", lambda raw: pytest.fail(f"parsed: {raw!r}"))
    action, source = es_lines._bulk_pair(ARCHIVIST_LINES[1])
    assert action == b'{"index":{"_id":"quote \\" and \\\\ slash","routing":"user-7"}}\n'
    assert source == b'{"msg":"routed"}\n'


def test_archivist_lines_reach_the_bodies_without_parsing_or_regex(monkeypatch):
    expected = _parsed_shape(ARCHIVIST_LINES)
    monkeypatch.setattr(es_lines, "_bulk_pair", lambda raw: pytest.fail(f"cut line by line: {raw!r}"))
    (body, docs), = _bodies(b"".join(ARCHIVIST_LINES), 1000, 1 << 20, monkeypatch)
    assert body == expected and docs == len(ARCHIVIST_LINES)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_lines_cut_across_read_blocks_give_the_same_bodies(block, monkeypatch):
    # Lines longer than a read block, blank lines, Windows line ends and no newline at the end.
    lines = ARCHIVIST_LINES + [b"\n", b"\r\n", ARCHIVIST_LINES[1][:-1] + b"\r\n"] + FOREIGN_LINES + ARCHIVIST_LINES
    monkeypatch.setattr(es_lines, "READ_BLOCK", block)
    bodies = _bodies(b"".join(lines)[:-1], 1000, 1 << 20, monkeypatch)
    assert bodies == [(_parsed_shape(lines), sum(1 for line in lines if line.strip()))]


@pytest.mark.parametrize("docs,size", [(1, 1 << 20), (3, 1 << 20), (1000, 1), (1000, 300)])
def test_bodies_hold_whole_documents_within_the_limits(docs, size, monkeypatch):
    lines = ARCHIVIST_LINES * 5 + FOREIGN_LINES + ARCHIVIST_LINES
    data = b"".join(lines)[:-1]  # the last line without its newline
    bodies = _bodies(data, docs, size, monkeypatch)
    assert b"".join(body for body, _ in bodies) == _parsed_shape(lines)
    assert sum(n for _, n in bodies) == sum(1 for line in lines if line.strip())
    assert all(body.endswith(b"\n") and body.count(b"\n") == 2 * n and n <= docs for body, n in bodies)
    assert all(len(body) <= size or n == 1 for body, n in bodies)


def test_documents_the_server_refuses_fail_with_its_reason(es_client, es_settings):
    index = f"test-refused-{secrets.token_hex(4)}"
    es_client.indices.create(index=index, body={"mappings": {"properties": {"n": {"type": "long"}}}})
    try:
        lines = b'{"_index":"x","_id":"good","_source":{"n":1}}\n{"_index":"x","_id":"bad","_source":{"n":"not a number"}}\n'
        with pytest.raises(JobFailedError, match=rf"index {index}: 1 of 2 documents .* \(bad\): .*not a number"):
            es_restore.load_documents(es_cluster.raw_client(es_settings), index, io.BytesIO(lines))
    finally:
        es_client.indices.delete(index=index)


def test_a_slow_request_does_not_hold_back_the_others(es_client, es_settings, monkeypatch):
    """The first request is held until more requests than there are places beside it have been
    answered (or 10 s): only a loop that refills whichever place frees first sends them. Waiting for
    the oldest would idle the server whenever that one is held up
    (docs/PERFORMANCE.md#bulk-requests-in-flight)."""
    index = f"test-inflight-{secrets.token_hex(4)}"
    es_client.indices.create(index=index)
    monkeypatch.setattr(es_lines, "BULK_CHUNK_DOCS", 1)
    send, answered, held_while = es_restore.send_bulk, [], []

    def send_holding_the_first(raw, target, body, docs):
        if not held_while:
            held_while.append(0)
            deadline = time.monotonic() + 10
            while len(answered) <= es_restore.BULK_THREADS and time.monotonic() < deadline:
                time.sleep(0.01)
            held_while[0] = len(answered)
        sent = send(raw, target, body, docs)
        answered.append(body)
        return sent

    monkeypatch.setattr(es_restore, "send_bulk", send_holding_the_first)
    lines = b"".join(b'{"_index":"x","_id":"%d","_source":{"n":%d}}\n' % (n, n)
                     for n in range(3 * es_restore.BULK_THREADS))
    try:
        loaded = es_restore.load_documents(es_cluster.raw_client(es_settings), index, io.BytesIO(lines))
        assert es_cluster.count(es_client, index) == loaded == 3 * es_restore.BULK_THREADS
    finally:
        es_client.indices.delete(index=index)
    assert held_while[0] > es_restore.BULK_THREADS


def test_bulk_bodies_go_out_without_copies(es_settings):
    """The client's own ndjson serializer copies a bytes body twice; each request in flight held it
    three times over."""
    body = b'{"index":{"_id":"a"}}\n{"n":1}\n'
    for client in (es_cluster.client(es_settings), es_cluster.raw_client(es_settings)):
        for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"):
            assert client.transport.serializers.dumps(body, mimetype) is body
        # Anything else is still serialised the client's way.
        assert client.transport.serializers.dumps(b'{"n":1}', "application/x-ndjson") == b'{"n":1}\n'
        assert client.transport.serializers.dumps([{"index": {}}, {"n": 1}], "application/x-ndjson") == \
            b'{"index":{}}\n{"n":1}\n'


@pytest.mark.parametrize("block", [7, 64])
def test_a_line_longer_than_the_cap_fails_naming_its_number(block, monkeypatch):
    # Only a line that spans read blocks is held: the cap is far above a block, so blocks are small here.
    monkeypatch.setattr(es_lines, "READ_BLOCK", block)
    monkeypatch.setattr(es_lines, "LINE_MAX_BYTES", 100)
    head = b'{"_index":"logs","_id":"a","_source":{"s":"'
    at_cap = head + b"x" * (100 - len(head) - 3) + b'"}}'
    lines = [ARCHIVIST_LINES[0], b"\n", at_cap + b"\n", at_cap + b"\n"]
    assert sum(n for _, n in _bodies(b"".join(lines)[:-1], 1000, 1 << 20, monkeypatch)) == 3
    with pytest.raises(es_lines.LineTooLongError, match=r"^line 4 is longer than 100 bytes"):
        _bodies(b"".join(lines[:3]) + at_cap + b"x" * 10_000, 2, 1 << 20, monkeypatch)
    with pytest.raises(es_lines.LineTooLongError, match=r"^line 5 is longer"):  # just over, newline after
        _bodies(b"".join(lines) + at_cap[:-1] + b'x"}}\n', 2, 1 << 20, monkeypatch)
