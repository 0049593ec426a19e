"""The Elasticsearch side of a backup: templates, index definitions and one ndjson per index.

Each index is read at one point in time, in `_doc` order (the point in time adds `_shard_doc` as
the tiebreaker) with `search_after`, a page at a time, by EXPORT_SLICES threads that each read one
slice of the point in time; their pages go into the one ndjson of the index as they arrive, one
index after another. The count written must equal the count the server reported for that point
in time. A server without a sliced point in time (OpenSearch, Elasticsearch before 7.15) is read
the same way through a sliced scroll, each slice's count its own scroll context's.

A part of a split backup may instead read some slices of a large index from a point in time the
planning task opened (`export_slices`, runner/slicing.py); its count is those slices' own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext, suppress
from typing import Any

import orjson
from elasticsearch import Elasticsearch, NotFoundError

from archivist import runtime
from archivist.config import ElasticsearchSettings
from archivist.errors import ConfigurationError, JobFailedError, elasticsearch_reason, elasticsearch_where
from archivist.format import bundle, handoff, limits
from archivist.format.bundle import JobResult
from archivist.progress import Progress
from archivist.sources.base import DumpOptions, PitSlices
from archivist.sources.elasticsearch import cluster, datastreams, selection
from archivist.sources.elasticsearch import lines as es_lines

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
EXPORT_PAGE_SIZE = 2000  # per slice; a page of each slice is read while another waits in the queue
EXPORT_SLICES = 2  # threads reading one index, each its own slice of the point in time
# Index order costs the server half what a `_shard_doc` sort does (docs/PERFORMANCE.md#export-page-order)
EXPORT_SORT = ["_doc"]
KEEP_ALIVE = "5m"
EXPORT_FILTER = ["pit_id", "hits.hits._id", "hits.hits._routing", "hits.hits._source", "hits.hits.sort"]
# Settings a new cluster sets itself and must not receive.
UNPORTABLE_SETTINGS = {
    "uuid",
    "creation_date",
    "creation_date_string",
    "version",
    "provided_name",
    "resize",
    "verified_before_close",
    "history_uuid",
    "shrink",
    "downsample",
}


def dump(settings: ElasticsearchSettings, staging, backup_id: str, options: DumpOptions = DumpOptions()) -> JobResult:
    """Writes templates, index definitions and one ndjson per index into `staging`."""
    # Two malloc arenas: the slice threads' pages would otherwise fragment a heap each.
    with runtime.malloc_arenas(2), runtime.frozen():
        return _dump(settings, staging, backup_id, options)


def _dump(settings: ElasticsearchSettings, staging, backup_id: str, options: DumpOptions) -> JobResult:
    started = time.monotonic()
    version = cluster.check_login(settings)
    es, raw = cluster.client(settings), cluster.raw_client(settings)
    states = cluster.index_states(es, options.index_pattern)
    if options.indices is not None:  # a part's share, chosen here rather than listed in a URL
        part = set(options.indices)
        states = {index: state for index, state in states.items() if index in part}
    definitions = index_definitions(es, list(states))
    chosen = selection.select(states, definitions, options, elasticsearch_where(settings))
    for index in chosen.closed:
        definitions[index][selection.STATE] = "close"
    for index, why in chosen.mappings_only.items():
        definitions[index][selection.DOCUMENTS_OMITTED] = why
    cluster_templates = templates(es)
    streams = _data_streams(es, options, cluster_templates, definitions)
    artifacts = [
        _write_json(staging, bundle.templates_path(backup_id), cluster_templates),
        _write_json(staging, bundle.indices_path(backup_id), definitions),
    ]
    if options.pit_slices is not None:
        artifact, written = _export_share(settings, staging, backup_id, es, raw, chosen, options.pit_slices)
        counts = {"indices": {options.pit_slices.index: written}, "documents": written}
        return JobResult("elasticsearch", [*artifacts, artifact], counts, time.monotonic() - started, version)
    docs = {}
    for index in chosen.indices:  # two at once: no faster, more memory (docs/PERFORMANCE.md#one-index-at-a-time)
        if index in chosen.mappings_only:
            log.warning(
                "index %s: settings and mappings backed up, no documents: %s", index, chosen.mappings_only[index]
            )
            docs[index] = 0
            continue
        with cluster.opened_for_reading(es, index) if index in chosen.closed else nullcontext():
            artifact, docs[index] = _export_checked(
                settings,
                staging,
                bundle.elasticsearch_index_path(index, backup_id),
                index,
                _whole_index(es, index),
                raw,
            )
        artifacts.append(artifact)
    for name in streams:  # read through the data stream's name: every backing index at once
        path = bundle.elasticsearch_index_path(name, backup_id)
        artifact, docs[name] = _export_checked(settings, staging, path, name, _whole_index(es, name), raw)
        artifacts.append(artifact)
    counted: dict[str, Any] = {"indices": docs, "documents": sum(docs.values())}
    if streams:
        counted[datastreams.COUNTS_KEY] = streams
    return JobResult("elasticsearch", artifacts, counted, time.monotonic() - started, version)


def _whole_index(es: Elasticsearch, index: str) -> Export:
    return lambda write, progress, raw_client: export_index(es, index, write, progress, raw=raw_client)


def _export_share(
    settings: ElasticsearchSettings,
    staging,
    backup_id: str,
    es: Elasticsearch,
    raw: Elasticsearch,
    chosen: selection.Selection,
    share: PitSlices,
) -> tuple[bundle.Artifact, int]:
    """This part's slices of one large index, into the index's ndjson in the part's folder (the
    join puts the slices of the index together); (its artifact, documents written)."""
    index = share.index
    if index not in chosen.indices or index in chosen.closed or index in chosen.mappings_only:
        raise JobFailedError(
            f"index {index} of {elasticsearch_where(settings)} was planned to be read in slices but is now "
            "gone, closed or chosen for mappings only; start the backup again, which plans anew"
        )
    return _export_checked(
        settings,
        staging,
        bundle.elasticsearch_index_path(index, backup_id),
        index,
        lambda write, progress, raw_client: export_slices(es, share, write, progress, raw=raw_client),
        raw,
    )


def _data_streams(
    es: Elasticsearch, options: DumpOptions, cluster_templates: dict[str, Any], definitions: dict
) -> list[str]:
    """The data streams matching the run's pattern (of a part, those of its share), each added to
    `definitions`; warns of what is left out."""
    found = datastreams.find(es, options.index_pattern)
    share = (
        found.streams
        if options.indices is None
        else {n: found.streams[n] for n in options.indices if n in found.streams}
    )
    every = es.indices.get_index_template().get("index_templates", []) if share else []  # managed too
    kept = {t["name"] for t in cluster_templates["index_templates"]}
    for name, backing in sorted(share.items()):
        write_index = index_definitions(es, backing[-1:])[backing[-1]]
        definitions[name] = datastreams.definition(name, found, write_index, every)
        template = definitions[name][datastreams.DATA_STREAM]["template"]
        if template not in kept:
            log.warning(
                "data stream %s: its template %s is the cluster's own, not in the bundle; the target of "
                "a restore must have a data-stream template matching it",
                name,
                template,
            )
    for line in found.left_out:
        log.warning("left out of the backup: %s", line)
    return sorted(share)


def _write_json(staging, path: str, value: Any) -> bundle.Artifact:
    body = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    if len(body) > limits.ES_JSON_BYTES:  # a restore would refuse it
        raise ConfigurationError(
            f"{path} would be {len(body)} bytes, more than the "
            f"{limits.human(limits.ES_JSON_BYTES)} a restore reads (docs/FORMAT.md): back "
            "up fewer indices per bundle with the param index_pattern"
        )
    with staging.writer(path, "application/json") as out:
        out.write(body)
    return bundle.Artifact(path, out.size, out.sha256)


# Reads documents through `write` with a raw client or, given None, parsing every page; (written, expected).
Export = Callable[[Callable[[bytes], Any], Progress, Elasticsearch | None], tuple[int, int]]


def _export_checked(
    settings: ElasticsearchSettings, staging, path: str, index: str, export: Export, raw: Elasticsearch
) -> tuple[bundle.Artifact, int]:
    """Exports documents of `index` into `path` with `export`, checking the count; (its artifact,
    documents written)."""
    written, expected, out = _export_to(staging, path, index, export, raw)
    if written != expected:
        # A source holding, as JSON structure, what looks like the boundary between two hits
        # misleads the cut of raw pages; parsed pages cannot be misled, so the index is read again.
        log.warning(
            "index %s: %d lines cut from raw pages for %d documents; reading it again, parsing every page",
            index,
            written,
            expected,
        )
        written, expected, out = _export_to(staging, path, index, export, None)
    if written != expected:
        raise JobFailedError(
            f"index {index} of {elasticsearch_where(settings)}: wrote {written} documents "
            f"but the server reported {expected}; nothing of this backup was kept"
        )
    return bundle.Artifact(path, out.size, out.sha256), written


def _export_to(staging, path: str, index: str, export: Export, raw: Elasticsearch | None) -> tuple[int, int, Any]:
    """Exports into `path` of the staging; (written, expected, the finished writer)."""
    progress = Progress(f"export {index}", "docs")
    with staging.writer(path, "application/x-ndjson") as out:
        written, expected = export(out.write, progress, raw)
    progress.done()
    return written, expected, out


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
    found: dict[str, Any] = {}
    for batch in cluster.name_batches(indices):  # many long names would pass the server's URL limit
        found.update(es.indices.get(index=",".join(batch)))
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
        "component_templates": [
            t for t in component if not t["name"].startswith(".") and _user_made(t["component_template"])
        ],
        "index_templates": [t for t in composable if not t["name"].startswith(".") and _user_made(t["index_template"])],
        "legacy_templates": {n: b for n, b in sorted(legacy.items()) if not n.startswith(".")},
    }


def document_lines(es: Elasticsearch, index: str, page_size: int = PAGE_SIZE) -> Iterator[bytes]:
    """The index's documents as ndjson lines, read by `export_index` (one slice, parsed pages) on
    any server it reads and handed over a page at a time: for checks, not backups. Raises
    JobFailedError after the last line when they are not as many as the server counted."""
    pages = _Pages(1)

    def write(chunk: bytes) -> None:
        pages.put(chunk)
        if pages.stop.is_set():  # the caller stopped reading: export_index closes what it opened
            raise _Abandoned

    def read() -> None:
        try:
            written, expected = export_index(es, index, write, slices=1, page_size=page_size)
            if written != expected:
                raise JobFailedError(f"index {index}: read {written} documents, the server counted {expected}")
            pages.put(_DONE)
        except BaseException as exc:  # handed to the reading caller, which raises it
            pages.put(exc)

    reader = threading.Thread(target=read, name=f"documents:{index}", daemon=True)
    reader.start()
    try:
        while (item := pages.queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield from item.splitlines(keepends=True)
    finally:
        pages.stop.set()
        reader.join()


class _Abandoned(Exception):
    """Ends the reading of `document_lines` whose caller stopped iterating."""


# --- one index, read by slices ------------------------------------------------------------------

_DONE = object()


class _Pages:
    """Pages handed from the slice threads to the writing one through a queue of a few, so memory
    stays bounded whatever the index's size; `stop` frees a thread waiting to put one."""

    def __init__(self, slices: int):
        self.queue: queue.Queue = queue.Queue(maxsize=slices)
        self.stop = threading.Event()

    def put(self, item) -> None:
        """Hands `item` to the writing side, or drops it once that side has stopped."""
        try:
            handoff.put(self.queue, item, self.stop.is_set)
        except handoff.Stopped:
            pass


def export_index(
    es: Elasticsearch,
    index: str,
    write: Callable[[bytes], Any],
    progress: Progress | None = None,
    slices: int = EXPORT_SLICES,
    page_size: int = EXPORT_PAGE_SIZE,
    raw: Elasticsearch | None = None,
) -> tuple[int, int]:
    """Writes the index's documents as ndjson through `write`; returns (written, expected).

    `slices` threads each read one slice of one point in time, in `_doc` order with
    `search_after`, and hand their pages (already ndjson, see `lines.page_lines`) to this thread.
    `raw` is a client from `cluster.raw_client`; without one, pages are parsed the ordinary way."""
    if not cluster.server_of(es).has_pit:
        return _export_scrolled(es, index, write, progress, slices, page_size, raw)
    pit = es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"]
    try:
        first = es.search(pit={"id": pit, "keep_alive": KEEP_ALIVE}, size=0, track_total_hits=True)
        expected = first["hits"]["total"]["value"]
        written = _read_pit(es, raw, index, pit, tuple(range(slices)), slices, KEEP_ALIVE, write, progress, page_size)
    finally:
        es.options(ignore_status=404).close_point_in_time(id=pit)
    return written, expected


def export_slices(
    es: Elasticsearch,
    share: PitSlices,
    write: Callable[[bytes], Any],
    progress: Progress | None = None,
    page_size: int = EXPORT_PAGE_SIZE,
    raw: Elasticsearch | None = None,
) -> tuple[int, int]:
    """Writes the documents of slices `share.ids` of a point in time another task opened, a thread
    a slice, as export_index does; (written, the documents those slices hold, counted first)."""
    try:
        expected = sum(
            es.search(
                pit={"id": share.pit, "keep_alive": share.keep_alive},
                size=0,
                track_total_hits=True,
                slice={"id": i, "max": share.of},
            )["hits"]["total"]["value"]
            for i in share.ids
        )
        written = _read_pit(
            es, raw, share.index, share.pit, share.ids, share.of, share.keep_alive, write, progress, page_size
        )
    except NotFoundError as exc:
        raise JobFailedError(
            f"index {share.index}: the point in time that split_elasticsearch opened for its slices is gone "
            f"({elasticsearch_reason(exc)}); it lives {share.keep_alive} after its last use, and this part "
            "started later than that or the cluster restarted. Clear split_elasticsearch of this run with "
            "its downstream tasks (or start a new backup): the planning opens a new one"
        ) from None
    return written, expected


def _read_pit(
    es: Elasticsearch,
    raw: Elasticsearch | None,
    index: str,
    pit: str,
    ids: tuple[int, ...],
    of: int,
    keep_alive: str,
    write: Callable[[bytes], Any],
    progress: Progress | None,
    page_size: int,
) -> int:
    """Reads slices `ids` of `of` of the point in time, a thread each, through `write`; the documents written."""
    return _read_slices(
        len(ids),
        index,
        write,
        progress,
        lambda pages, t: _read_slice(pages, es, raw, index, pit, ids[t], of, page_size, keep_alive),
    )


def _export_scrolled(
    es: Elasticsearch,
    index: str,
    write: Callable[[bytes], Any],
    progress: Progress | None,
    slices: int,
    page_size: int,
    raw: Elasticsearch | None,
) -> tuple[int, int]:
    """export_index through one scroll a slice: (written, the sum of the slices' totals)."""
    totals = [0] * slices
    written = _read_slices(
        slices,
        index,
        write,
        progress,
        lambda pages, i: _read_scroll_slice(pages, es, raw, index, i, slices, page_size, totals),
    )
    return written, sum(totals)


def _read_slices(
    slices: int,
    index: str,
    write: Callable[[bytes], Any],
    progress: Progress | None,
    read: Callable[[_Pages, int], None],
) -> int:
    """Runs `read(pages, slice)` in a thread a slice and writes their pages; the documents written."""
    pages = _Pages(slices)
    threads = [
        threading.Thread(target=read, args=(pages, i), name=f"export:{index}:{i}", daemon=True) for i in range(slices)
    ]
    for thread in threads:
        thread.start()
    try:
        return _write_pages(pages, slices, write, progress)
    finally:
        pages.stop.set()
        for thread in threads:
            thread.join()


def _scroll_page(index: str, answer: Any) -> tuple[tuple[int, list[bytes]] | None, int | None, str | None]:
    """(documents and their lines or None when the page is empty, the total it reports, its scroll
    id) of a scroll page, raw bytes or parsed."""
    if isinstance(answer, bytes):
        got = es_lines.page_lines(index, answer)
        total = es_lines.page_total(answer)
        scroll_id = got[3] if got else orjson.loads(answer).get("_scroll_id")
        return (got[:2] if got else None), total, scroll_id
    hits = answer.get("hits", {}).get("hits", [])
    total = answer.get("hits", {}).get("total")
    total = total.get("value") if isinstance(total, dict) else total
    return ((len(hits), [es_lines.hit_lines(index, hits)]) if hits else None), total, answer.get("_scroll_id")


def _read_scroll_slice(
    pages: _Pages,
    es: Elasticsearch,
    raw: Elasticsearch | None,
    index: str,
    slice_id: int,
    slices: int,
    page_size: int,
    totals: list[int],
) -> None:
    """Reads one slice of its own scroll into `pages`, then _DONE, or what it raised; the total of
    its first page goes into totals[slice_id]."""
    scroll_id = None
    client = raw if raw is not None else es
    try:
        body: dict[str, Any] = {"size": page_size, "sort": EXPORT_SORT, "track_total_hits": True}
        if slices > 1:
            body["slice"] = {"id": slice_id, "max": slices}
        answer = client.search(index=index, scroll=KEEP_ALIVE, body=body).body
        first = True
        while not pages.stop.is_set():
            got, total, scroll_id = _scroll_page(index, answer)
            if first:
                totals[slice_id], first = total or 0, False
            if got is None:
                break
            pages.put(got)
            answer = client.scroll(scroll_id=scroll_id, scroll=KEEP_ALIVE).body
        pages.put(_DONE)
    except BaseException as exc:  # handed to the writing thread, which raises it
        pages.put(exc)
    finally:
        if scroll_id:  # at worst the context expires after KEEP_ALIVE
            with suppress(Exception):
                es.options(ignore_status=404).clear_scroll(scroll_id=scroll_id)


def _write_pages(pages: _Pages, slices: int, write: Callable[[bytes], Any], progress: Progress | None) -> int:
    """Writes the pages as they arrive until every slice is done; raises what a slice raised."""
    written, running = 0, slices
    while running:
        item = pages.queue.get()
        if item is _DONE:
            running -= 1
        elif isinstance(item, BaseException):
            raise item
        else:
            count, chunks = item
            for chunk in chunks:
                write(chunk)
            written += count
            if progress is not None:
                progress.add(count)
    return written


def _read_slice(
    pages: _Pages,
    es: Elasticsearch,
    raw: Elasticsearch | None,
    index: str,
    pit: str,
    slice_id: int,
    slices: int,
    page_size: int,
    keep_alive: str = KEEP_ALIVE,
) -> None:
    """Reads one slice a page at a time into `pages`, then _DONE, or what it raised. Each search
    asks `keep_alive` again: less than the point in time was opened with would shorten its life."""
    try:
        pit_id, after = pit, None
        while not pages.stop.is_set():
            body: dict[str, Any] = {
                "pit": {"id": pit_id, "keep_alive": keep_alive},
                "size": page_size,
                "sort": EXPORT_SORT,
                "track_total_hits": False,
            }
            if slices > 1:
                body["slice"] = {"id": slice_id, "max": slices}
            if after is not None:
                body["search_after"] = after
            got = (
                es_lines.page_lines(index, raw.search(body=body).body)
                if raw is not None
                else _parsed_page(es, index, body)
            )
            if got is None:
                break
            count, data, after, new_pit = got
            pit_id = new_pit or pit_id
            pages.put((count, data))
        pages.put(_DONE)
    except BaseException as exc:  # handed to the writing thread, which raises it
        pages.put(exc)


def _parsed_page(
    es: Elasticsearch, index: str, body: dict[str, Any]
) -> tuple[int, list[bytes], Any, str | None] | None:
    """What `lines.page_lines` gives for a page read the ordinary way, parsed by the client."""
    page = es.search(body=body, filter_path=EXPORT_FILTER)
    hits = page.get("hits", {}).get("hits", [])
    if not hits:
        return None
    return len(hits), [es_lines.hit_lines(index, hits)], hits[-1]["sort"], page.get("pit_id")
