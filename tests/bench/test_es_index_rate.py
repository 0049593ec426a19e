"""bench/es_index_rate.py: the orders it sends documents in, its windows, and a load of a
generated index into the real Elasticsearch, the scratch index deleted after."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from archivist.sources.elasticsearch import cluster as es_cluster  # noqa: E402
from bench import es_index_rate, generate  # noqa: E402

DOCS = [b'{"index":{"_id":"d-%d"}}\n{"n":%d}\n' % (i, i) for i in range(5)]


@pytest.mark.unit
def test_auto_order_leaves_the_ids_to_the_server():
    got = list(es_index_rate.in_order(iter(DOCS[:2]), "auto"))
    assert got == [b'{"index":{}}\n{"n":0}\n', b'{"index":{}}\n{"n":1}\n']
    routed = b'{"index":{"_id":"a","routing":"u1"}}\n{}\n'
    assert es_index_rate.without_id(routed) == b'{"index":{"routing":"u1"}}\n{}\n'


@pytest.mark.unit
def test_interleaved_order_gives_the_two_halves_a_page_at_a_time(monkeypatch):
    monkeypatch.setattr(es_index_rate, "SLICE_PAGE", 2)
    got = list(es_index_rate.in_order(iter(DOCS), "interleaved"))
    assert got == [DOCS[0], DOCS[1], DOCS[3], DOCS[4], DOCS[2]]
    assert list(es_index_rate.in_order(iter(DOCS), "own")) == DOCS


@pytest.mark.unit
def test_window_rates_count_each_full_window():
    done_at = [(1000, 0.5), (2000, 1.0), (3000, 2.0), (4000, 3.0), (4500, 3.2)]
    assert es_index_rate.window_rates(done_at, 2000) == [2000, 1000]


def test_a_generated_index_loads_whole_and_its_scratch_index_goes(es_settings, es_client, monkeypatch):
    monkeypatch.setattr(es_index_rate, "BODY_DOCS", 50)  # windows of 100 documents: two bodies each
    data = generate.data_dir(0.001) / "elasticsearch"
    if generate.marker(data) is None:
        generate.generate_elasticsearch(0.001, data)
    definition = json.loads((data / "indices.json").read_text())["logs-2026.11"]
    path = data / "logs-2026.11.bulk"
    expected = sum(1 for _ in es_index_rate.pairs(path, None))
    found = es_index_rate.measure(
        es_client,
        es_cluster.raw_client(es_settings),
        {"settings": {"index": definition["settings"]}, "mappings": definition["mappings"]},
        path,
        "interleaved",
        None,
        100,
    )
    assert found["documents"] == expected > 200
    assert len(found["window_rates"]) == expected // 100 and min(found["window_rates"]) > 0
    assert found["merges"] >= 0
    assert not es_client.indices.exists(index=es_index_rate.SCRATCH)
