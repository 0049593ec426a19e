"""Tests of archivist.sources.elasticsearch's restore: lines become bulk bodies, lines in
archivist's shape cut exactly as parsing them would give and other shapes parsed; bodies hold whole
documents at any size limit and go to the client uncopied; requests in flight do not wait for the
oldest; and documents the server refuses fail the restore with the server's reason."""

from __future__ import annotations

import io
import secrets
import time

import orjson
import pytest

from archivist.errors import JobFailedError
from archivist.progress import Progress
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import lines as es_lines
from archivist.sources.elasticsearch import restore as es_restore

ARCHIVIST_LINES = [
    b'{"_index":"logs","_id":"a1","_source":{"msg":"hello","n":1}}\n',
    b'{"_index":"logs","_id":"quote \\" and \\\\ slash","_routing":"user-7","_source":{"msg":"routed"}}\n',
    (
        '{"_index":"logs","_id":"unicode é 日本",'
        '"_source":{"msg":"{\\"_index\\":\\"x\\"}\\n","nested":{"a":[1,{"b":"}"}]}}}\n'
    ).encode(),
    b'{"_index":"logs","_id":"empty","_source":{}}\n',
]
# The original tool's lines (elasticdump's shape: spaces, _type, _score) and a blank line.
FOREIGN_LINES = [
    b'{"_index": "logs", "_type": "_doc", "_id": "old-1", "_score": 1, "_source": {"msg": "from tranque"}}\n',
    b"\n",
]


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


@pytest.mark.parametrize(
    "lines", [ARCHIVIST_LINES, ARCHIVIST_LINES + FOREIGN_LINES, FOREIGN_LINES], ids=["archivist", "mixed", "foreign"]
)
def test_lines_become_the_bulk_body_parsing_them_gives(lines, monkeypatch):
    ((body, docs),) = _bodies(b"".join(lines), 1000, 1 << 20, monkeypatch)
    assert orjson.loads(b"[" + b",".join(body.splitlines()) + b"]") == orjson.loads(
        b"[" + b",".join(_parsed(lines).splitlines()) + b"]"
    )
    assert docs == sum(1 for line in lines if line.strip())


def test_archivist_lines_are_cut_not_parsed(monkeypatch):
    monkeypatch.setattr(es_lines.orjson, "loads", lambda raw: pytest.fail(f"parsed: {raw!r}"))
    action, source = es_lines._bulk_pair(ARCHIVIST_LINES[1])
    assert action == b'{"index":{"_id":"quote \\" and \\\\ slash","routing":"user-7"}}\n'
    assert source == b'{"msg":"routed"}\n'


def test_archivist_lines_reach_the_bodies_without_parsing_or_regex(monkeypatch):
    expected = _parsed_shape(ARCHIVIST_LINES)
    monkeypatch.setattr(es_lines, "_bulk_pair", lambda raw: pytest.fail(f"cut line by line: {raw!r}"))
    ((body, docs),) = _bodies(b"".join(ARCHIVIST_LINES), 1000, 1 << 20, monkeypatch)
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
        lines = (
            b'{"_index":"x","_id":"good","_source":{"n":1}}\n'
            b'{"_index":"x","_id":"bad","_source":{"n":"not a number"}}\n'
        )
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
    lines = b"".join(
        b'{"_index":"x","_id":"%d","_source":{"n":%d}}\n' % (n, n) for n in range(3 * es_restore.BULK_THREADS)
    )
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
        assert (
            client.transport.serializers.dumps([{"index": {}}, {"n": 1}], "application/x-ndjson")
            == b'{"index":{}}\n{"n":1}\n'
        )


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


def test_a_setting_the_server_does_not_know_is_dropped_naming_it(es_client, caplog):
    """As a setting of an older or another server would be: the index is made without it."""
    index = f"restore-unknown-{secrets.token_hex(3)}"
    definition = {
        "settings": {"index": {"number_of_shards": "2", "frozen_gadget": {"level": "3"}, "refresh_interval": "5s"}},
        "mappings": {"properties": {"n": {"type": "long"}}},
    }
    try:
        es_restore.create_index(es_client, index, definition)
        made = es_client.indices.get_settings(index=index)[index]["settings"]["index"]
        assert made["number_of_shards"] == "2"
        assert "frozen_gadget" not in made
        assert "index.frozen_gadget.level" in caplog.text and "Elasticsearch 8." in caplog.text
    finally:
        es_client.options(ignore_status=404).indices.delete(index=index)


def test_loading_settings_lie_over_the_index_own_leaf_by_leaf():
    own = {
        "refresh_interval": "7s",
        "translog": {"durability": "request", "flush_threshold_size": "1gb"},
        "merge": {"scheduler": {"max_thread_count": "1"}},
    }
    assert es_restore.loading_settings(own) == {
        "number_of_replicas": 0,
        "refresh_interval": "-1",
        "translog": {"durability": "async", "flush_threshold_size": "1gb"},
        "merge": {"scheduler": {"max_thread_count": "1"}},
    }
    assert es_restore.settings_put_back(own) == {
        "number_of_replicas": None,
        "refresh_interval": "7s",
        "translog": {"durability": "request"},
    }


def test_a_mapping_the_server_refuses_fails_naming_the_index_and_the_feature(es_client):
    index = f"restore-refused-{secrets.token_hex(3)}"
    definition = {"settings": {"index": {}}, "mappings": {"properties": {"v": {"type": "vector_of_dreams"}}}}
    with pytest.raises(JobFailedError) as refused:
        es_restore.create_index(es_client, index, definition)
    assert f"index {index} cannot be created on Elasticsearch 8." in str(refused.value)
    assert "vector_of_dreams" in str(refused.value)
    assert not es_client.indices.exists(index=index)


@pytest.mark.parametrize(
    ("settings", "dotted", "left", "found"),
    [
        ({"index": {"a": {"b": 1, "c": 2}}}, "index.a.b", {"index": {"a": {"c": 2}}}, True),
        ({"index": {"a": {"b": 1}}, "x": 1}, "index.a.b", {"x": 1}, True),
        ({"index": {"a.b": 1}}, "index.a.b", {}, True),
        ({"index": {"a": 1}}, "index.z", {"index": {"a": 1}}, False),
    ],
)
def test_drop_setting_finds_nested_and_dotted_names(settings, dotted, left, found):
    assert es_restore.drop_setting(settings, dotted) is found
    assert settings == left
