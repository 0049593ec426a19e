"""The Elasticsearch side of a restore: templates, then each index created, loaded and finished.

Each index is created with its settings and mappings (and LOADING_SETTINGS while it loads) before
any document; its documents go as bulk bodies cut from the lines (`lines.bulk_bodies`),
BULK_THREADS requests at a time in byte-bounded chunks; then the index's own settings and aliases
are put back. Answers are parsed with orjson, and only when they report errors.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import orjson
from elasticsearch import BadRequestError, Elasticsearch

from archivist import runtime
from archivist.errors import JobFailedError, elasticsearch_reason
from archivist.format.streams import Readable
from archivist.progress import Progress
from archivist.sources.elasticsearch import datastreams
from archivist.sources.elasticsearch import lines as es_lines
from archivist.sources.elasticsearch.cluster import server_of
from archivist.sources.elasticsearch.selection import STATE

log = logging.getLogger(__name__)

# While an index loads: no replicas, no refresh, and the translog synced every few seconds
# rather than at every bulk request; finish_index puts back what the index had, then flushes
# (docs/PERFORMANCE.md#loading-settings).
LOADING_SETTINGS: dict[str, Any] = {
    "number_of_replicas": 0,
    "refresh_interval": "-1",
    "translog": {"durability": "async"},
}
# How Elasticsearch and OpenSearch name a setting they do not know (of an older or another server).
_UNKNOWN_SETTING = re.compile(r"unknown setting \[([^\]]+)\]")
SYSTEM_TEMPLATE_KEYS = {"created_date_millis", "modified_date_millis", "created_date", "modified_date"}
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
        with _refused("component template", t["name"], es):
            es.cluster.put_component_template(name=t["name"], body=writable_template(t["component_template"]))
        count += 1
    for t in data.get("index_templates", []):
        with _refused("index template", t["name"], es):
            body = datastreams.for_server(writable_template(t["index_template"]), server_of(es))
            es.indices.put_index_template(name=t["name"], body=body)
        count += 1
    for name, body in data.get("legacy_templates", {}).items():
        body = {k: v for k, v in body.items() if k != "version" or v is not None}
        with _refused("legacy template", name, es):
            es.indices.put_template(name=name, body=body)
        count += 1
    log.info("restored %d templates", count)
    return count


def writable_template(body: dict[str, Any]) -> dict[str, Any]:
    """A composable or component template without the properties the server keeps itself
    (Elasticsearch 9 shows when it made and changed one, and refuses them in a request)."""
    return {k: v for k, v in body.items() if k not in SYSTEM_TEMPLATE_KEYS}


@contextmanager
def _refused(kind: str, name: str, es: Elasticsearch) -> Iterator[None]:
    """A template the server refuses fails the restore naming it, the server and why."""
    try:
        yield
    except BadRequestError as exc:
        raise JobFailedError(
            f"{kind} {name} cannot be restored into {server_of(es)}: {elasticsearch_reason(exc)}"
        ) from None


def create_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Creates the index with its settings and mappings, loading-friendly: no replicas, no refresh.

    A setting the server does not know (one of an older or another server's) is dropped with a
    warning naming it, and the index created without it; anything else it refuses fails the
    restore, naming the index, the server and what it refused."""
    body: dict[str, Any] = {"settings": {"index": loading_settings({})}}
    if definition:
        body["settings"]["index"] = loading_settings(definition["settings"]["index"])
        body["mappings"] = definition.get("mappings", {})
    while True:
        try:
            es.indices.create(index=index, body=body)
            return
        except BadRequestError as exc:
            reason = elasticsearch_reason(exc)
            unknown = _UNKNOWN_SETTING.search(reason)
            if unknown is None or not drop_setting(body["settings"], unknown.group(1)):
                raise JobFailedError(
                    f"index {index} cannot be created on {server_of(es)}, which refuses its definition: {reason}"
                ) from None
            log.warning("index %s: setting %s dropped, %s does not know it", index, unknown.group(1), server_of(es))


def drop_setting(settings: dict[str, Any], dotted: str) -> bool:
    """Removes the setting `dotted` ("index.a.b") from nested or dotted settings; whether it was there."""
    for key in list(settings):
        value = settings[key]
        if key == dotted:
            del settings[key]
            return True
        if dotted.startswith(key + ".") and isinstance(value, dict) and drop_setting(value, dotted[len(key) + 1 :]):
            if not value:
                del settings[key]
            return True
    return False


def loading_settings(own: dict[str, Any]) -> dict[str, Any]:
    """The index's own settings with LOADING_SETTINGS laid over them, leaf by leaf: its other
    translog settings stay as they are."""
    return _laid_over(own, LOADING_SETTINGS)


def _laid_over(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A new dict at every level `over` has one: drop_setting edits the result, never LOADING_SETTINGS."""
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict):
            below = merged.get(key)
            value = _laid_over(below if isinstance(below, dict) else {}, value)
        merged[key] = value
    return merged


def settings_put_back(own: dict[str, Any], loading: dict[str, Any] = LOADING_SETTINGS) -> dict[str, Any]:
    """For each setting LOADING_SETTINGS changed, the index's own value, or None (the default)."""
    back: dict[str, Any] = {}
    for key, value in loading.items():
        mine = own.get(key)
        if isinstance(value, dict):
            mine = settings_put_back(mine if isinstance(mine, dict) else {}, value)
        back[key] = mine
    return back


def finish_index(es: Elasticsearch, index: str, definition: dict[str, Any] | None) -> None:
    """Puts back the settings LOADING_SETTINGS changed to those the index had, then its aliases."""
    back = settings_put_back((definition or {}).get("settings", {}).get("index", {}))
    if definition and back["number_of_replicas"] is None:
        back["number_of_replicas"] = 1
    es.indices.put_settings(index=index, body={"index": back})
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


def load_documents(raw: Elasticsearch, index: str, lines: Readable, op: str = "index") -> int:
    """Sends the ndjson documents as bulk bodies, BULK_THREADS requests in flight, through `raw`
    (a client from `cluster.raw_client`); returns how many. `op`: the bulk action (`create` for a
    data stream)."""
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
            for body, docs in es_lines.bulk_bodies(lines, progress, op):
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
