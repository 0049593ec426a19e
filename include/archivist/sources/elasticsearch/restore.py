"""The Elasticsearch side of a restore: templates, then each index created, loaded and finished.

Each index is created with its settings and mappings (and LOADING_SETTINGS while it loads) before
any document; its documents go as bulk bodies cut from the lines (`lines.bulk_bodies`),
BULK_THREADS requests at a time in byte-bounded chunks; then the index's own settings and aliases
are put back. Answers are parsed with orjson, and only when they report errors.
"""

from __future__ import annotations

import fnmatch
import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from archivist import runtime
from archivist.errors import JobFailedError
from archivist.format.streams import Readable
from archivist.progress import Progress
from archivist.sources.elasticsearch import lines as es_lines
from archivist.sources.elasticsearch.selection import STATE

log = logging.getLogger(__name__)

# While an index loads: no replicas, no refresh, and the translog synced every few seconds
# rather than at every bulk request; finish_index puts back what the index had, then flushes.
LOADING_SETTINGS = {"number_of_replicas": 0, "refresh_interval": "-1", "translog": {"durability": "async"}}
BULK_THREADS = 4  # as fast as six, less memory (docs/PERFORMANCE.md#bulk-requests-in-flight)


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


def create_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Creates the index with its settings and mappings, loading-friendly: no replicas, no refresh."""
    body: dict[str, Any] = {"settings": {"index": dict(LOADING_SETTINGS)}}
    if definition:
        body["settings"]["index"] = {**definition["settings"]["index"], **LOADING_SETTINGS}
        body["mappings"] = definition.get("mappings", {})
    es.indices.create(index=index, body=body)


def finish_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Puts back the replicas and refresh interval the index had, then its aliases."""
    original = (definition or {}).get("settings", {}).get("index", {})
    es.indices.put_settings(
        index=index,
        body={
            "index": {
                "number_of_replicas": original.get("number_of_replicas", 1 if definition else None),
                "refresh_interval": original.get("refresh_interval"),
                "translog": {"durability": (original.get("translog") or {}).get("durability")},
            }
        },
    )
    es.indices.flush(index=index)  # what the asynchronous translog had not yet made durable
    es.indices.refresh(index=index)
    for alias, spec in ((definition or {}).get("aliases") or {}).items():
        es.indices.put_alias(index=index, name=alias, body=spec)


def close_if_backed_up_closed(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Closes the restored index when it was closed in the cluster backed up (once counted)."""
    if (definition or {}).get(STATE) == "close":
        es.indices.close(index=index)
        log.info("index %s closed again, as it was when backed up", index)


def send_bulk(raw: Elasticsearch, index: str, body: bytes, docs: int) -> int:
    """Sends one bulk body through `raw`; returns its documents, or raises naming the first refused."""
    # the body goes out as the bytes it is: the raw client's serializer passes bytes through
    filter_path = ["errors", "items.*.error", "items.*._id"]
    answer = raw.bulk(index=index, operations=body, filter_path=filter_path).body  # type: ignore[arg-type]
    if answer.startswith(b'{"errors":false'):  # ids unparsed (docs/PERFORMANCE.md#bulk-answers-left-unparsed)
        return docs
    resp = orjson.loads(answer)
    if resp.get("errors"):
        failed = [item for item in resp.get("items", []) if "error" in next(iter(item.values()))]
        first = next(iter(failed[0].values())) if failed else {}
        raise JobFailedError(
            f"index {index}: {len(failed)} of {docs} documents of a bulk request were refused, "
            f"the first ({first.get('_id')}): {first.get('error')}"
        )
    return docs


def load_documents(raw: Elasticsearch, index: str, lines: Readable) -> int:
    """Sends the ndjson documents as bulk bodies, BULK_THREADS requests in flight, through `raw`
    (a client from `cluster.raw_client`); returns how many."""
    progress = Progress(f"restore {index}", "docs")
    loaded = 0
    pending: set[Future] = set()
    # Two malloc arenas: the bulk threads' bodies and answers would otherwise fragment a heap each.
    with (
        runtime.malloc_arenas(2),
        runtime.frozen(),
        ThreadPoolExecutor(max_workers=BULK_THREADS, thread_name_prefix=f"bulk:{index}") as pool,
    ):
        try:
            for body, docs in es_lines.bulk_bodies(lines, progress):
                if len(pending) >= BULK_THREADS:
                    # Whichever ends first frees its place, so one held-up request does not idle the
                    # server (docs/PERFORMANCE.md#bulk-requests-in-flight).
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    loaded += sum(future.result() for future in done)
                pending.add(pool.submit(send_bulk, raw, index, body, docs))
            done, pending = wait(pending)
            loaded += sum(future.result() for future in done)
        except es_lines.LineTooLongError as exc:
            raise JobFailedError(f"index {index}: {exc}") from None
        finally:
            for future in pending:
                future.cancel()
    progress.done()
    return loaded
