"""The search servers of the server matrix (marker `esmatrix`): the stack's Elasticsearch 8.19 and
those ARCHIVIST_ES_VERSIONS names (scripts/search_servers.sh), one extra one running at a time
because memory is shared, and what the matrix puts in each and reads back from it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from typing import Any

from elasticsearch.helpers import bulk, scan

from archivist.config import ElasticsearchSettings
from archivist.sources.elasticsearch import cluster
from archivist.sources.elasticsearch.server import Server
from tests.support import ROOT

MAIN = "8.19"
# Oldest first: a migration test restores a bundle of an older server, made when it ran.
ORDER = ["7.17", MAIN, "9", "opensearch-2", "opensearch-3"]
SCRIPT = ROOT / "scripts" / "search_servers.sh"


def labels() -> list[str]:
    """The servers of the matrix: 8.19 and those ARCHIVIST_ES_VERSIONS names, oldest first."""
    asked = set(os.environ.get("ARCHIVIST_ES_VERSIONS", "").split()) | {MAIN}
    asked = {MAIN if a in ("8", "8.19") else a for a in asked}
    unknown = asked - set(ORDER)
    if unknown:
        raise ValueError(f"ARCHIVIST_ES_VERSIONS names {', '.join(sorted(unknown))}; known: {', '.join(ORDER)}")
    return [label for label in ORDER if label in asked]


def _script(*args: str) -> str:
    """The script's answer: its last line of stdout, which must be nothing but that."""
    run = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"search_servers.sh {' '.join(args)} failed:\n{run.stderr[-3000:]}"
    answer = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert answer.isprintable(), f"search_servers.sh {' '.join(args)} printed more than its answer: {answer!r}"
    return answer


class Servers:
    """Starts the extra server asked for, stopping the one running before it."""

    def __init__(self, main: ElasticsearchSettings):
        self.main = main
        self.running: str | None = None

    def use(self, label: str) -> ElasticsearchSettings:
        if label == MAIN:
            return self.main
        if self.running not in (None, label):
            _script("stop", self.running)
        url = _script("start", label)
        self.running = label
        return dataclasses.replace(self.main, url=url, source=f"search server {label}")

    def stop(self) -> None:
        if self.running:
            _script("stop", self.running)
            self.running = None


def connection(settings: ElasticsearchSettings) -> str:
    """AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH for `settings`: the runners read the connection."""
    host, port = settings.url.removeprefix("http://").split(":")
    return (
        f'{{"conn_type":"elasticsearch","host":"{host}","port":{port},"login":"{settings.user}",'
        f'"password":"{settings.password}","schema":"http"}}'
    )


# --- what each server is given --------------------------------------------------------------

BIG_DOCS = 25_000  # past the 10,000 result window


def seed(es: Any, prefix: str, server: Server) -> None:
    """An index of BIG_DOCS documents with a filtered alias, an index whose documents need a
    routing value, and a template of each kind the server takes."""
    big, routed = f"{prefix}-big", f"{prefix}-routed"
    es.indices.create(
        index=big,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
        mappings={"properties": {"n": {"type": "long"}, "kind": {"type": "keyword"}, "text": {"type": "text"}}},
        aliases={f"{prefix}-even": {"filter": {"term": {"kind": "even"}}}},
    )
    es.indices.create(
        index=routed,
        settings={"number_of_shards": 3, "number_of_replicas": 0},
        mappings={"_routing": {"required": True}, "properties": {"owner": {"type": "keyword"}}},
        aliases={f"{prefix}-owners": {}},
    )
    kinds = ("even", "odd")
    bulk(
        es,
        (
            {"_index": big, "_id": f"d{i}", "_source": {"n": i, "kind": kinds[i % 2], "text": f"doc {i}"}}
            for i in range(BIG_DOCS)
        ),
        chunk_size=5000,
    )
    bulk(
        es,
        (
            {"_index": routed, "_id": str(i), "_routing": f"owner-{i % 7}", "_source": {"owner": f"o{i % 7}"}}
            for i in range(500)
        ),
    )
    es.cluster.put_component_template(
        name=f"{prefix}-ct",
        template={"settings": {"number_of_shards": 1}, "mappings": {"properties": {"t": {"type": "keyword"}}}},
    )
    es.indices.put_index_template(
        name=f"{prefix}-it", index_patterns=[f"{prefix}-tpl-*"], composed_of=[f"{prefix}-ct"], priority=500
    )
    es.indices.put_template(
        name=f"{prefix}-lt", index_patterns=[f"{prefix}-legacy-*"], settings={"number_of_shards": 1}
    )
    es.indices.refresh(index=f"{prefix}-*")


def documents(es: Any, index: str) -> dict[str, tuple[str | None, Any]]:
    """Each document's id with its routing and source, read with a plain scroll."""
    return {
        hit["_id"]: (hit.get("_routing"), hit["_source"])
        for hit in scan(es, index=index, query={"sort": ["_doc"]}, size=5000, preserve_order=True)
    }


def state(es: Any, prefix: str) -> dict[str, Any]:
    """What the round trip must keep, as the server shows it."""
    got = es.indices.get(index=f"{prefix}-*")
    templates = {
        "component_templates": sorted(
            (t["name"], t["component_template"]["template"])
            for t in es.cluster.get_component_template(name=f"{prefix}-*")["component_templates"]
        ),
        "index_templates": sorted(
            (t["name"], t["index_template"]["index_patterns"], t["index_template"].get("composed_of"))
            for t in es.indices.get_index_template(name=f"{prefix}-*")["index_templates"]
        ),
        "legacy_templates": {n: b["index_patterns"] for n, b in es.indices.get_template(name=f"{prefix}-*").items()},
    }
    return {
        "mappings": {i: b["mappings"] for i, b in got.items()},
        "aliases": {i: b["aliases"] for i, b in got.items()},
        "shards": {i: b["settings"]["index"]["number_of_shards"] for i, b in got.items()},
        "templates": templates,
    }


def clean(es: Any, prefix: str) -> None:
    """Removes what `seed` and a restore of it made."""
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")
    es.options(ignore_status=404).cluster.delete_component_template(name=f"{prefix}-*")
    es.options(ignore_status=404).indices.delete_template(name=f"{prefix}-*")


def client(settings: ElasticsearchSettings) -> Any:
    es = cluster.client(settings)
    cluster.server_of(es)
    return es


# --- data streams ------------------------------------------------------------------------------
# Elasticsearch's integ-test-zip distributions make data streams (from a template, at the first
# document) but lack the `_data_stream` API, so none made there can be deleted, nor its template.
# There a test's data streams are hidden (a `*` backup of another test never sees them) and its
# templates marked as the cluster's own afterwards (no later bundle takes them): see `drop_streams`.

STREAM_DOCS = 3_000
START_MILLIS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def deletes_streams(es: Any) -> bool:
    """Whether the server has the `_data_stream` API (a missing data stream is then a 404)."""
    answer = es.options(ignore_status=(400, 404, 405)).indices.get_data_stream(name="archivist-no-such-stream")
    return answer.meta.status == 404


def seed_stream(es: Any, prefix: str, hidden: bool) -> str:
    """A data-stream template for `<prefix>-ds-*` and the data stream `<prefix>-ds-logs` of
    STREAM_DOCS documents with @timestamp, made by bulk `create` as a shipper makes one; its name."""
    es.indices.put_index_template(
        name=f"{prefix}-dst",
        index_patterns=[f"{prefix}-ds-*"],
        data_stream={"hidden": True} if hidden else {},
        priority=500,
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"@timestamp": {"type": "date"}, "n": {"type": "long"}}},
        },
    )
    name = f"{prefix}-ds-logs"
    bulk(
        es,
        (
            {
                "_op_type": "create",
                "_index": name,
                "_id": f"e{i}",
                "_source": {"@timestamp": START_MILLIS + i * 1000, "n": i, "msg": f"event {i}"},
            }
            for i in range(STREAM_DOCS)
        ),
        chunk_size=1000,
    )
    es.indices.refresh(index=name)
    return name


def is_data_stream(es: Any, name: str) -> bool:
    """Whether `name` is a data stream on the server (not an index or alias of that name)."""
    found = es.options(ignore_status=404).indices.resolve_index(name=name, expand_wildcards="all")
    return name in [d["name"] for d in found.get("data_streams", [])]


def drop_streams(es: Any, prefix: str) -> bool:
    """Deletes the data streams and templates whose names hold `prefix`; where the server cannot
    delete them, marks the templates as the cluster's own (`_meta.managed`) so that no later
    bundle takes them. Whether they were deleted."""
    if not deletes_streams(es):
        for entry in (
            es.options(ignore_status=404).indices.get_index_template(name=f"*{prefix}*").get("index_templates", [])
        ):
            body = {k: v for k, v in entry["index_template"].items() if not k.endswith(("_date_millis", "_date"))}
            body["_meta"] = {**(body.get("_meta") or {}), "managed": True}
            es.indices.put_index_template(name=entry["name"], body=body)
        return False
    found = es.options(ignore_status=404).indices.resolve_index(name=f"*{prefix}*", expand_wildcards="all")
    for stream in found.get("data_streams", []):
        es.indices.delete_data_stream(name=stream["name"])
    es.options(ignore_status=404).indices.delete_index_template(name=f"*{prefix}*")
    return True


def remove_restored(es: Any, prefix: str) -> None:
    """Removes what a restore under `prefix` (fresh each test) made: its data streams as
    `drop_streams` does, its indices, and the renamed copies of every template the bundle held
    (a template still in use by a data stream cannot be deleted, and is marked by drop_streams)."""
    drop_streams(es, prefix)
    es.options(ignore_status=404).indices.delete(index=f"{prefix}*")
    made = es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}*").get("index_templates", [])
    for entry in made:  # one at a time: a pattern fails whole when one of its templates is in use
        es.options(ignore_status=(400, 404)).indices.delete_index_template(name=entry["name"])
    es.options(ignore_status=404).cluster.delete_component_template(name=f"{prefix}*")
    es.options(ignore_status=404).indices.delete_template(name=f"{prefix}*")
