"""The Elasticsearch job: indices to ndjson with their templates, settings,
mappings and aliases, and the restore that puts them back in working order.

Each index is read at one point in time, in `_shard_doc` order with
`search_after`, a page at a time; the count written must equal the count the
server reported for that point in time. Restores create each index with its
settings and mappings before any document, load with `parallel_bulk` in
byte-bounded chunks, then restore aliases and check counts.
"""

from __future__ import annotations

import fnmatch
import io
import logging
import re
import time
from collections.abc import Iterator
from typing import IO, Any

import orjson
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch import AuthenticationException, AuthorizationException
from elasticsearch import helpers

from archivist import bundle
from archivist.bundle import JobResult
from archivist.config import ElasticsearchSettings
from archivist.errors import ConfigurationError, JobFailedError, TargetNotEmptyError, UnreachableError
from archivist.progress import Progress

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
KEEP_ALIVE = "5m"
BULK_CHUNK_DOCS = 2000
BULK_CHUNK_BYTES = 8 * 1024 * 1024
# Settings a new cluster sets itself and must not receive.
UNPORTABLE_SETTINGS = {"uuid", "creation_date", "creation_date_string", "version", "provided_name",
                       "resize", "verified_before_close", "history_uuid", "shrink", "downsample"}


def _where(settings: ElasticsearchSettings) -> str:
    return f"Elasticsearch at {settings.url} ({settings.source})"


def client(settings: ElasticsearchSettings, quick: bool = False) -> Elasticsearch:
    """A client; `quick` for checks that must fail in seconds rather than retry."""
    return Elasticsearch(
        settings.url,
        basic_auth=(settings.user, settings.password) if settings.user else None,
        request_timeout=10 if quick else 120, max_retries=0 if quick else 3, retry_on_timeout=not quick,
    )


def _reason(exc: ApiError) -> str:
    """The server's own reason for refusing, without the request path it repeats."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    reason = (error.get("reason") if isinstance(error, dict) else None) or exc.message
    return re.sub(r" for REST request \[[^\]]*\]$", "", str(reason))


def check(settings: ElasticsearchSettings, quick: bool = False) -> str:
    """Reaches the cluster and returns its version, or names what to fix."""
    try:
        return server_version(client(settings, quick))
    except AuthenticationException as exc:  # 401: wrong or missing user and password
        if not settings.user:
            raise ConfigurationError(f"cannot log in to {_where(settings)}: the server requires a user and password "
                                     f"({_reason(exc)}, 401); set the user and password") from None
        raise ConfigurationError(f"cannot log in to {_where(settings)} as user '{settings.user}': {_reason(exc)} (401); "
                                 "check the user and password") from None
    except AuthorizationException as exc:  # 403: logged in, but not allowed
        raise ConfigurationError(f"user '{settings.user}' may not read {_where(settings)}: {_reason(exc)} (403); "
                                 "give the user a role that allows backups and restores, for example superuser") from None
    except (TransportError, ApiError) as exc:
        raise UnreachableError(f"cannot reach {_where(settings)}: {exc}") from None


def server_version(es: Elasticsearch) -> str:
    """The oldest node's version. Read from the nodes API: `GET /` lives in a module
    (rest-root) that minimal distributions leave out."""
    nodes = es.nodes.info(node_id="_all", metric="_none")["nodes"].values()
    return min((n["version"] for n in nodes), key=lambda v: tuple(int(p) for p in v.split("-")[0].split(".")))


def list_indices(es: Elasticsearch, pattern: str = "*") -> list[str]:
    """Open, non-hidden indices matching `pattern`, skipping names that start with a dot."""
    found = es.indices.get(index=pattern, expand_wildcards="open", allow_no_indices=True, ignore_unavailable=True)
    return sorted(name for name in found if not name.startswith("."))


def _portable_settings(index_settings: dict[str, Any]) -> dict[str, Any]:
    """The index settings a new cluster accepts: without identity, version and shrink/resize traces."""
    portable = {k: v for k, v in index_settings.items() if k not in UNPORTABLE_SETTINGS}
    allocation = (portable.get("routing") or {}).get("allocation") or {}
    if "initial_recovery" in allocation:  # names a node of the old cluster
        allocation = {k: v for k, v in allocation.items() if k != "initial_recovery"}
        routing = {**portable["routing"], "allocation": allocation}
        portable["routing"] = {k: v for k, v in routing.items() if v}
    return portable


def index_definitions(es: Elasticsearch, indices: list[str]) -> dict[str, Any]:
    """Each index's portable settings, mappings and aliases (filters and routing kept)."""
    if not indices:
        return {}
    found = es.indices.get(index=",".join(indices))
    return {
        name: {
            "settings": {"index": _portable_settings(body["settings"]["index"])},
            "mappings": body.get("mappings", {}),
            "aliases": body.get("aliases", {}),
        }
        for name, body in sorted(found.items())
    }


def _user_made(body: dict[str, Any]) -> bool:
    return not (body.get("_meta") or {}).get("managed", False)


def templates(es: Elasticsearch) -> dict[str, Any]:
    """Component, composable and legacy templates, without the ones the cluster manages itself."""
    component = es.cluster.get_component_template().get("component_templates", [])
    composable = es.indices.get_index_template().get("index_templates", [])
    legacy = dict(es.indices.get_template())
    return {
        "component_templates": [t for t in component
                                if not t["name"].startswith(".") and _user_made(t["component_template"])],
        "index_templates": [t for t in composable
                            if not t["name"].startswith(".") and _user_made(t["index_template"])],
        "legacy_templates": {n: b for n, b in sorted(legacy.items()) if not n.startswith(".")},
    }


def iter_documents(es: Elasticsearch, index: str, page_size: int = PAGE_SIZE) -> tuple[int, Iterator[bytes]]:
    """The index's document count at a point in time, and its documents as ndjson lines."""
    pit = es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"]
    first = es.search(pit={"id": pit, "keep_alive": KEEP_ALIVE}, size=0, track_total_hits=True)
    total = first["hits"]["total"]["value"]

    def lines() -> Iterator[bytes]:
        pit_id, after = first.get("pit_id", pit), None
        try:
            while True:
                page = es.search(pit={"id": pit_id, "keep_alive": KEEP_ALIVE}, size=page_size,
                                 sort=["_shard_doc"], search_after=after, track_total_hits=False)
                pit_id = page.get("pit_id", pit_id)
                hits = page["hits"]["hits"]
                if not hits:
                    return
                for hit in hits:
                    doc = {"_index": index, "_id": hit["_id"]}
                    if "_routing" in hit:
                        doc["_routing"] = hit["_routing"]
                    doc["_source"] = hit["_source"]
                    yield orjson.dumps(doc) + b"\n"
                after = hits[-1]["sort"]
        finally:
            es.close_point_in_time(id=pit_id)

    return total, lines()


def dump(settings: ElasticsearchSettings, staging, backup_id: str, pattern: str = "*") -> JobResult:
    """Writes templates, index definitions and one ndjson per index into `staging`."""
    started = time.monotonic()
    version = check(settings)
    es = client(settings)
    indices = list_indices(es, pattern)
    artifacts, docs = [], {}
    for path, value in ((bundle.templates_path(backup_id), templates(es)),
                        (bundle.indices_path(backup_id), index_definitions(es, indices))):
        with staging.writer(path, "application/json") as out:
            out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2))
        artifacts.append(bundle.Artifact(path, out.size, out.sha256))
    for index in indices:
        path = bundle.elasticsearch_index_path(index, backup_id)
        expected, lines = iter_documents(es, index)
        progress, written = Progress(f"export {index}", "docs"), 0
        with staging.writer(path, "application/x-ndjson") as out:
            try:
                for line in lines:
                    out.write(line)
                    written += 1
                    progress.add(1)
            finally:
                lines.close()  # closes the point in time now, not whenever the generator is collected
            if written != expected:
                raise JobFailedError(f"index {index} of {_where(settings)}: wrote {written} documents "
                                     f"but the server reported {expected}; nothing of this backup was kept")
        progress.done()
        artifacts.append(bundle.Artifact(path, out.size, out.sha256))
        docs[index] = written
    counts = {"indices": docs, "documents": sum(docs.values())}
    return JobResult("elasticsearch", artifacts, counts, time.monotonic() - started, version)


# --- restore ---------------------------------------------------------------------------------


def matches_any(index: str, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(index, p) for p in patterns)


def put_templates(es: Elasticsearch, data: dict[str, Any]) -> int:
    """Component, then composable, then legacy templates: the order their references need.

    A templates file of the original tool is the plain `GET _template` answer
    (legacy templates by name), and is read as such."""
    if data and not {"component_templates", "index_templates", "legacy_templates"} & set(data):
        data = {"legacy_templates": data}
    count = 0
    for t in data.get("component_templates", []):
        es.cluster.put_component_template(name=t["name"], body=t["component_template"])
        count += 1
    for t in data.get("index_templates", []):
        es.indices.put_index_template(name=t["name"], body=t["index_template"])
        count += 1
    for name, body in data.get("legacy_templates", {}).items():
        body = {k: v for k, v in body.items() if k != "version" or v is not None}
        es.indices.put_template(name=name, body=body)
        count += 1
    log.info("restored %d templates", count)
    return count


def _actions(lines: IO[bytes], index: str, progress: Progress) -> Iterator[dict[str, Any]]:
    for raw in lines:
        if not raw.strip():
            continue
        doc = orjson.loads(raw)
        action = {"_op_type": "index", "_index": index, "_id": doc["_id"], "_source": doc["_source"]}
        if doc.get("_routing") is not None:
            action["_routing"] = doc["_routing"]
        progress.add(1)
        yield action


def prepare_targets(es: Elasticsearch, indices: list[str], mode: str, settings: ElasticsearchSettings) -> None:
    """In `empty` mode refuse existing indices; in `replace` mode delete just those."""
    existing = [i for i in indices if es.indices.exists(index=i)]
    if existing and mode == "empty":
        raise TargetNotEmptyError(
            f"{_where(settings)} already has the index(es) {', '.join(existing)}: restore with mode "
            "'replace' to drop and recreate them, or delete them first"
        )
    for index in existing:
        log.info("replace mode: deleting index %s", index)
        es.indices.delete(index=index)


def create_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Creates the index with its settings and mappings, loading-friendly: no replicas, no refresh."""
    body: dict[str, Any] = {"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "-1"}}}
    if definition:
        body["settings"]["index"] = {**definition["settings"]["index"], "number_of_replicas": 0, "refresh_interval": "-1"}
        body["mappings"] = definition.get("mappings", {})
    es.indices.create(index=index, body=body)


def finish_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Puts back the replicas and refresh interval the index had, then its aliases."""
    original = (definition or {}).get("settings", {}).get("index", {})
    es.indices.put_settings(index=index, body={"index": {
        "number_of_replicas": original.get("number_of_replicas", 1 if definition else None),
        "refresh_interval": original.get("refresh_interval"),
    }})
    es.indices.refresh(index=index)
    for alias, spec in ((definition or {}).get("aliases") or {}).items():
        es.indices.put_alias(index=index, name=alias, body=spec)


def load_documents(es: Elasticsearch, index: str, lines: IO[bytes]) -> int:
    """Sends the ndjson documents with parallel bulk in byte-bounded chunks; returns how many."""
    progress = Progress(f"restore {index}", "docs")
    loaded = 0
    for ok, item in helpers.parallel_bulk(
        es, _actions(io.BufferedReader(lines, 1024 * 1024), index, progress), thread_count=2,
        chunk_size=BULK_CHUNK_DOCS, max_chunk_bytes=BULK_CHUNK_BYTES, raise_on_error=True,
    ):
        loaded += ok
    progress.done()
    return loaded


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return es.count(index=index)["count"]
