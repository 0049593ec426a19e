"""What an index holds beyond its documents comes back from a backup, and what cannot come back
is refused by name: index settings (shards, result window, refresh, a custom analyzer, index
sorting), mapping features (_meta, dynamic templates, runtime fields, copy_to), closed indices,
and indices whose _source is disabled or filtered. Against the real Elasticsearch."""

from __future__ import annotations

import secrets

import pytest

from archivist.errors import JobFailedError, elasticsearch_where
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, restore
from archivist.sources.base import DumpOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import selection

# Settings Elasticsearch sets itself on every index, so they differ between the original and the
# restored one (docs/FORMAT.md#index-settings-left-out says why each is left out).
OWN_SETTINGS = {"uuid", "creation_date", "provided_name", "version", "history_uuid"}

# Built from what the server's core offers (the test distribution has no analysis-common module):
# lowercased, noise words dropped, pairs of words indexed as one term.
ANALYSIS = {
    "analyzer": {
        "part_numbers": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "drop_noise", "pairs"]}
    },
    "filter": {
        "drop_noise": {"type": "stop", "stopwords": ["rev", "draft"]},
        "pairs": {"type": "shingle", "min_shingle_size": 2, "max_shingle_size": 2, "output_unigrams": True},
    },
}
SETTINGS = {
    "number_of_shards": 2,
    "number_of_replicas": 0,
    "max_result_window": 20000,
    "refresh_interval": "7s",
    # beside the translog setting a restore changes while it loads
    "translog": {"flush_threshold_size": "1gb"},
    "merge": {"scheduler": {"max_thread_count": 1}},
    "sort": {"field": ["sku"], "order": ["asc"]},
    "analysis": ANALYSIS,
}
MAPPINGS = {
    "_meta": {"owner": "catalog-team", "schema": 3},
    "dynamic_templates": [{"labels_as_keywords": {"path_match": "labels.*", "mapping": {"type": "keyword"}}}],
    # no script: the value comes from _source (the test server has no scripting module)
    "runtime": {"color": {"type": "keyword"}},
    "properties": {
        "sku": {"type": "keyword"},
        "part": {"type": "text", "analyzer": "part_numbers", "copy_to": "everything"},
        "title": {"type": "text", "copy_to": "everything"},
        "everything": {"type": "text"},
        "price": {"type": "double"},
    },
}
DOCS = [
    {
        "sku": "A-1",
        "part": "Bolt M8 rev Zinc",
        "title": "hex bolt",
        "price": 10.0,
        "color": "grey",
        "labels": {"bin": "x1"},
    },
    {
        "sku": "A-2",
        "part": "Nut M8 draft Brass",
        "title": "hex nut",
        "price": 2.5,
        "color": "gold",
        "labels": {"bin": "x2"},
    },
    {"sku": "A-3", "part": "Washer M8 Steel", "title": "flat washer", "price": 0.5},
]


@pytest.fixture
def prefix(es_client):
    """A name prefix of this test's indices, deleted afterwards."""
    name = f"fid-{secrets.token_hex(3)}"
    yield name
    es_client.options(ignore_status=404).indices.delete(index=f"{name}*", expand_wildcards="all")


def _index(es, name: str, docs: list[dict], settings: dict | None = None, mappings: dict | None = None) -> None:
    es.indices.create(index=name, settings=settings or {"number_of_replicas": 0}, mappings=mappings or {})
    for i, doc in enumerate(docs):
        es.index(index=name, id=str(i), document=doc)
    es.indices.refresh(index=name)


def _round_trip(tmp_path, es_settings, prefix: str, options: DumpOptions | None = None) -> dict:
    """Backs up the test's indices into a local bundle, deletes them, restores them; the restore.
    In replace mode: the bundle also holds the cluster's templates, which are still there."""
    options = options or DumpOptions(f"{prefix}*")
    made = backup.run_simple_backup(str(tmp_path / "bundle.tgz"), ("elasticsearch",), options)
    es = es_cluster.client(es_settings)
    es.indices.delete(index=f"{prefix}*", expand_wildcards="all")
    return restore.run_restore(
        BundleSource.file(made["path"]),
        made["key"],
        ("elasticsearch",),
        "replace",
        settings={"elasticsearch": es_settings},
    )


def _definition(es, index: str) -> tuple[dict, dict]:
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    return {k: v for k, v in settings.items() if k not in OWN_SETTINGS}, es.indices.get_mapping(index=index)[index]


def _part_search(es, index: str) -> list[str]:
    """The skus that only the custom analyzer finds so: "BOLT m8" as one lowercased pair of words,
    and nothing for "draft", a word it drops."""
    pair = es.search(index=index, query={"term": {"part": "bolt m8"}})["hits"]["hits"]
    dropped = es.search(index=index, query={"match": {"part": "draft"}})["hits"]["hits"]
    return [hit["_source"]["sku"] for hit in pair + dropped]


def test_index_settings_and_mapping_features_round_trip(tmp_path, es_client, es_settings, prefix):
    index = f"{prefix}-parts"
    _index(es_client, index, DOCS, SETTINGS, MAPPINGS)
    before = _definition(es_client, index)
    assert _part_search(es_client, index) == ["A-1"]
    everything = es_client.search(index=index, query={"match": {"everything": "washer"}})["hits"]["total"]["value"]

    result = _round_trip(tmp_path, es_settings, prefix)

    assert result["problems"] == []
    assert _definition(es_client, index) == before, "GET _settings / _mapping differ after the round trip"
    assert _part_search(es_client, index) == ["A-1"], "the custom analyzer does not analyse as it did"
    assert es_client.search(index=index, query={"match": {"everything": "washer"}})["hits"]["total"]["value"] == (
        everything
    ), "copy_to no longer fills the field it copies to"
    colored = es_client.search(index=index, query={"term": {"color": "gold"}})["hits"]["hits"]
    assert [hit["_source"]["sku"] for hit in colored] == ["A-2"], "the runtime field is gone"


def _refusal(tmp_path, prefix: str) -> str:
    """What the job says when it refuses to back up the test's indices (and that it left no file)."""
    with pytest.raises(JobFailedError) as failed:
        backup.run_simple_backup(str(tmp_path / "b.tgz"), ("elasticsearch",), DumpOptions(f"{prefix}*"))
    assert not list(tmp_path.iterdir()), "a refused backup left a file"
    head = "backup failed, no bundle was made: elasticsearch: "
    assert str(failed.value).startswith(head)
    return str(failed.value)[len(head) :]


def test_a_closed_index_is_refused_by_name_by_default(tmp_path, es_client, es_settings, prefix):
    _index(es_client, f"{prefix}-open", DOCS)
    _index(es_client, f"{prefix}-archived", DOCS)
    es_client.indices.close(index=f"{prefix}-archived")
    assert _refusal(tmp_path, prefix) == (
        f"1 index(es) of {elasticsearch_where(es_settings)} are closed and cannot be read: {prefix}-archived. "
        "Back them up with the param closed_indices='open' (each is opened for reading, closed again, and "
        "restored closed), or leave them out with index_pattern (e.g. '*,-name')"
    )
    assert es_cluster.index_states(es_client, f"{prefix}*")[f"{prefix}-archived"] == "close"


def test_a_closed_index_is_opened_read_closed_and_restored_closed(tmp_path, es_client, es_settings, prefix):
    index = f"{prefix}-archived"
    _index(es_client, index, DOCS, SETTINGS, MAPPINGS)
    es_client.indices.close(index=index)
    before = _definition(es_client, index)

    result = _round_trip(tmp_path, es_settings, prefix, DumpOptions(f"{prefix}*", closed_indices="open"))

    assert result["restored"]["elasticsearch"]["indices"] == {index: len(DOCS)}
    assert result["problems"] == []
    assert es_cluster.index_states(es_client, f"{prefix}*") == {index: "close"}
    # a closed index's settings carry verified_before_close once it has been closed
    assert _definition(es_client, index)[1] == before[1]
    es_client.indices.open(index=index, wait_for_active_shards="1")
    assert es_client.count(index=index)["count"] == len(DOCS)
    assert _part_search(es_client, index) == ["A-1"]


@pytest.mark.parametrize(
    ("mappings", "why"),
    [
        ({"_source": {"enabled": False}}, selection.DISABLED),
        ({"_source": {"excludes": ["secret"]}}, selection.FILTERED),
        ({"_source": {"includes": ["sku"]}}, selection.FILTERED),
    ],
    ids=["disabled", "excludes", "includes"],
)
def test_an_index_whose_source_cannot_be_read_back_fails_the_backup_by_name(
    tmp_path, es_client, es_settings, prefix, mappings, why
):
    _index(es_client, f"{prefix}-fine", DOCS)
    _index(es_client, f"{prefix}-lossy", [{"sku": "s1", "secret": "kept only in the index"}], mappings=mappings)
    assert _refusal(tmp_path, prefix) == (
        f"the documents of 1 index(es) of {elasticsearch_where(es_settings)} cannot be restored from "
        f"Elasticsearch's own data: {prefix}-lossy: {why}. Leave them out with index_pattern (e.g. "
        "'*,-name'), or back up their settings and mappings alone with the param mappings_only (their "
        "names or patterns)"
    )


def test_an_index_left_out_by_pattern_or_taken_mappings_only_backs_up(tmp_path, es_client, es_settings, prefix):
    _index(es_client, f"{prefix}-fine", DOCS)
    lossy = f"{prefix}-lossy"
    _index(es_client, lossy, [{"sku": "s1"}], mappings={"_source": {"enabled": False}})
    lossy_mapping = es_client.indices.get_mapping(index=lossy)[lossy]

    left_out = backup.run_simple_backup(
        str(tmp_path / "left-out.tgz"), ("elasticsearch",), DumpOptions(f"{prefix}*,-{lossy}")
    )
    assert left_out["counts"]["jobs.elasticsearch"]["indices"] == {f"{prefix}-fine": len(DOCS)}

    result = _round_trip(tmp_path, es_settings, prefix, DumpOptions(f"{prefix}*", mappings_only=(lossy,)))
    assert result["problems"] == []
    assert result["restored"]["elasticsearch"]["indices"] == {f"{prefix}-fine": len(DOCS), lossy: 0}
    assert es_client.indices.get_mapping(index=lossy)[lossy] == lossy_mapping
    assert es_client.count(index=lossy)["count"] == 0
