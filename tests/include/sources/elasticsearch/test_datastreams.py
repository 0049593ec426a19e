"""Data streams: which template makes one, when a restore must refuse before writing, and, on the
stack's Elasticsearch 8.19, a data stream backed up with its documents and definition and restored
as a data stream. Its integ-test-zip distribution has no `_data_stream` API, so a data stream
there cannot be deleted: each test makes its own names, backs them up by name (hidden, as
servers.py says why) and restores under a prefix."""

from __future__ import annotations

import secrets

import orjson
import pytest
from elasticsearch.helpers import bulk

from archivist.errors import ArchivistError, TargetNotEmptyError
from archivist.format import bundle
from archivist.format.bundle_index import BundleSource
from archivist.format.members import members
from archivist.runner import backup, restore, split
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.elasticsearch import datastreams
from archivist.sources.elasticsearch.server import Server
from tests.include.sources.elasticsearch import servers


def _template(name: str, patterns: list[str], priority: int | None = None, stream: bool = True) -> dict:
    body: dict = {"index_patterns": patterns, **({"data_stream": {}} if stream else {})}
    if priority is not None:
        body["priority"] = priority
    return {"name": name, "index_template": body}


def test_the_matching_template_of_highest_priority_makes_the_data_stream_as_servers_choose():
    templates = [
        _template("logs", ["logs-*"], 100),
        _template("logs-app", ["logs-app*"], 200, stream=False),
        _template("metrics", ["metrics-*"]),
    ]
    assert datastreams.template_for("logs-web", templates) == ("logs", True)
    assert datastreams.template_for("logs-app-1", templates) == ("logs-app", False)
    assert datastreams.template_for("metrics-cpu", templates) == ("metrics", True)
    assert datastreams.template_for("other", templates) == (None, False)


ES_8 = Server("elasticsearch", "8.19.21")


def test_a_data_stream_no_template_can_make_is_refused_naming_it_and_why():
    restored = {"index_templates": [_template("logs", ["logs-*"])]}
    plain = [_template("copy", ["copy-*"], stream=False)]
    assert datastreams.refusals(ES_8, {"logs-app": "logs-app"}, restored, []) == []
    assert datastreams.refusals(ES_8, {"logs-app": "logs-app"}, {}, [_template("t", ["logs-*"])]) == []
    assert datastreams.refusals(ES_8, {"logs-app": "copy-app"}, restored, plain) == [
        "data stream logs-app (restored as copy-app): the template that matches it, copy, makes no data "
        "stream (it has no `data_stream`)"
    ]
    assert datastreams.refusals(ES_8, {"logs-app": "logs-app"}, {}, []) == [
        "data stream logs-app: no composable index template of the restore or the target matches that name"
    ]
    assert datastreams.refusals(ES_8, {"logs-app": "logs-app"}, restored, [], "unknown field [data_stream]") == [
        "data stream logs-app: Elasticsearch 8.19.21 has no data streams (unknown field [data_stream])"
    ]
    old = Server("elasticsearch", "7.8.1")
    assert datastreams.refusals(old, {"logs-app": "logs-app"}, restored, []) == [
        "data stream logs-app: Elasticsearch 7.8.1 has no data streams"
    ]


def test_a_data_stream_template_speaks_the_targets_words(caplog):
    es7 = {"index_patterns": ["logs-*"], "data_stream": {"hidden": True}, "priority": 5}
    opensearch = Server("opensearch", "2.19.6")
    assert datastreams.for_server(es7, opensearch) == {**es7, "data_stream": {}}
    assert "hidden dropped, OpenSearch 2.19.6 does not know it" in caplog.text
    os2 = {"index_patterns": ["logs-*"], "data_stream": {"timestamp_field": {"name": "@timestamp"}}}
    assert datastreams.for_server(os2, ES_8) == {**os2, "data_stream": {}}
    assert datastreams.for_server(os2, opensearch) == os2
    assert datastreams.for_server({"index_patterns": ["x"]}, ES_8) == {"index_patterns": ["x"]}


# --- on the stack's Elasticsearch 8.19 ----------------------------------------------------------


@pytest.fixture
def stream_bundle(es_client, tmp_path):
    """A bundle of a data stream of STREAM_DOCS documents beside a plain index of 5: (path, key,
    prefix, data stream, its documents, a fresh prefix to restore under, removed afterwards)."""
    prefix = f"dst{secrets.token_hex(4)}"
    name = servers.seed_stream(es_client, prefix, hidden=not servers.deletes_streams(es_client))
    bulk(es_client, ({"_index": f"{prefix}-plain", "_id": str(i), "_source": {"n": i}} for i in range(5)), refresh=True)
    made = backup.run_simple_backup(str(tmp_path / "b.tgz"), ("elasticsearch",), DumpOptions(f"{name},{prefix}-plain"))
    elsewhere = f"r{secrets.token_hex(3)}-"
    yield made["path"], made["key"], prefix, name, servers.documents(es_client, name), elsewhere
    servers.remove_restored(es_client, elsewhere)
    es_client.options(ignore_status=404).indices.delete(index=f"{prefix}-plain")
    servers.drop_streams(es_client, prefix)


def _definitions(path: str) -> dict:
    found = [
        orjson.loads(fileobj.read())
        for _, fileobj in members(BundleSource.file(path), lambda p: p.startswith("jobs.elasticsearch/indices-"))
    ]
    assert len(found) == 1, "the bundle has no indices-<id>.json, or several"
    return found[0]


def test_a_data_stream_is_backed_up_as_its_documents_and_a_definition_marked_as_one(stream_bundle):
    path, _, prefix, name, held, _ = stream_bundle
    assert len(held) == servers.STREAM_DOCS
    meta = restore.verify(BundleSource.file(path)).meta
    assert meta["format_version"] == 5, "an older reader would restore the data stream as a plain index"
    counts = meta["counts"]["jobs.elasticsearch"]
    assert counts[bundle.DATA_STREAMS_COUNT] == [name]
    assert counts["indices"] == {name: servers.STREAM_DOCS, f"{prefix}-plain": 5}
    definition = _definitions(path)[name]
    assert definition["data_stream"] == {
        "template": f"{prefix}-dst",
        "timestamp_field": "@timestamp",
        "backing_indices": 1,
    }
    assert definition["mappings"]["properties"]["n"] == {"type": "long"}
    assert "data_stream" not in _definitions(path)[f"{prefix}-plain"]


def test_a_data_stream_is_restored_elsewhere_as_a_data_stream_with_its_documents(stream_bundle, es_client):
    path, key, prefix, name, held, r = stream_bundle
    options = RestoreOptions(index_prefix=r)

    result = restore.run_restore(BundleSource.file(path), key, ("elasticsearch",), "empty", options)

    assert result["problems"] == []
    assert servers.is_data_stream(es_client, f"{r}{name}")
    assert servers.documents(es_client, f"{r}{name}") == held, "documents or ids differ"
    assert not servers.is_data_stream(es_client, f"{r}{prefix}-plain"), "a plain index became a data stream"
    assert es_client.count(index=f"{r}{prefix}-plain")["count"] == 5
    with pytest.raises(TargetNotEmptyError, match=rf"already has data stream\(s\) {r}{name}"):
        restore.run_restore(BundleSource.file(path), key, ("elasticsearch",), "empty", options)


NO_TEMPLATE = "no composable index template of the restore or the target matches that name"


def test_a_restore_without_templates_refuses_the_data_stream_before_writing(stream_bundle, es_client):
    path, key, prefix, name, _, r = stream_bundle
    options = RestoreOptions(index_prefix=r, skip_templates=True)
    with pytest.raises(ArchivistError, match=rf"data stream {name} \(restored as {r}{name}\): {NO_TEMPLATE}") as got:
        restore.run_restore(BundleSource.file(path), key, ("elasticsearch",), "empty", options)
    assert "restore without skip_templates" in str(got.value)
    assert not es_client.indices.exists(index=f"{r}{prefix}-plain"), "an index was written before the refusal"
    assert not servers.is_data_stream(es_client, f"{r}{name}")


def test_a_data_stream_renamed_apart_from_its_template_is_refused_before_writing(stream_bundle, es_client):
    path, key, prefix, name, _, r = stream_bundle
    options = RestoreOptions(index_rename=((name, f"copy{prefix}-logs"),))
    with pytest.raises(ArchivistError, match=rf"data stream {name} \(restored as copy{prefix}-logs\): {NO_TEMPLATE}"):
        restore.run_restore(BundleSource.file(path), key, ("elasticsearch",), "replace", options)
    assert es_client.count(index=f"{prefix}-plain")["count"] == 5, "replace mode deleted an index before refusing"
    assert not servers.is_data_stream(es_client, f"copy{prefix}-logs")


def test_a_dry_run_names_the_data_streams_it_would_make(stream_bundle):
    path, key, prefix, name, _, r = stream_bundle
    result = restore.run_restore(
        BundleSource.file(path), key, ("elasticsearch",), "empty", RestoreOptions(index_prefix=r), dry_run=True
    )
    assert result["restored"]["elasticsearch"]["data_streams"] == [f"{r}{name}"]


def test_a_split_backup_gives_each_data_stream_to_a_part(stream_bundle, es_settings):
    _, _, prefix, name, _, _ = stream_bundle
    parts = split.plan_elasticsearch(es_settings, DumpOptions(f"{name},{prefix}-plain"), 2)
    assert sorted(i for part in parts for i in part["indices"]) == [name, f"{prefix}-plain"]
