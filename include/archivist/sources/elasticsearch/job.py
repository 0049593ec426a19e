"""The Elasticsearch job: indices to ndjson with their templates, settings,
mappings and aliases, and the restore that puts them back in working order.

Each index is read at one point in time, in `_doc` order (the point in time
adds `_shard_doc` as the tiebreaker) with `search_after`, a page at a time, by
EXPORT_SLICES threads that each read one slice of the point in time; their
pages go into the one ndjson of the index as they arrive, one index after
another. The count written must equal the count the server reported for that
point in time.
Restores create each index with its settings and mappings (and LOADING_SETTINGS
while it loads) before any document, send its documents as bulk bodies cut
from the lines (orjson for any other shape), BULK_THREADS requests at a time in
byte-bounded chunks, then put back the index's own settings and aliases and
check counts. Responses are parsed with orjson too.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import IO, Any

import orjson
from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch import AuthenticationException, AuthorizationException
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from archivist.format import bundle
from archivist import runtime
from archivist.format import limits
from archivist.format.bundle import JobResult
from archivist.config import ElasticsearchSettings
from archivist.errors import (ELASTICSEARCH_LOGIN_FIX, ELASTICSEARCH_ROLE_FIX, ConfigurationError, JobFailedError,
                              UnreachableError, elasticsearch_reason, elasticsearch_where)
from archivist.progress import Progress

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
EXPORT_PAGE_SIZE = 2000   # per slice; a page of each slice is read while another waits in the queue
EXPORT_SLICES = 2         # threads reading one index, each its own slice of the point in time
# Index order costs the server half what a `_shard_doc` sort does (docs/PERFORMANCE.md#export-page-order)
EXPORT_SORT = ["_doc"]
KEEP_ALIVE = "5m"
BULK_CHUNK_DOCS = 2000
BULK_CHUNK_BYTES = 8 * 1024 * 1024
# While an index loads: no replicas, no refresh, and the translog synced every few seconds
# rather than at every bulk request; finish_index puts back what the index had, then flushes.
LOADING_SETTINGS = {"number_of_replicas": 0, "refresh_interval": "-1", "translog": {"durability": "async"}}
BULK_THREADS = 4          # as fast as six, less memory (docs/PERFORMANCE.md#bulk-requests-in-flight)
EXPORT_FILTER = ["pit_id", "hits.hits._id", "hits.hits._routing", "hits.hits._source", "hits.hits.sort"]
# Settings a new cluster sets itself and must not receive.
UNPORTABLE_SETTINGS = {"uuid", "creation_date", "creation_date_string", "version", "provided_name",
                       "resize", "verified_before_close", "history_uuid", "shrink", "downsample"}


class _OrjsonCompatibilitySerializer(OrjsonSerializer):
    mimetype = "application/vnd.elasticsearch+json"


def client(settings: ElasticsearchSettings, quick: bool = False) -> Elasticsearch:
    """A client; `quick` for checks that must fail in seconds rather than retry. JSON goes through orjson,
    several times faster than the standard library's on the pages an export reads."""
    return _client(settings, quick, OrjsonSerializer(), _OrjsonCompatibilitySerializer())


class _BodyNdjsonSerializer(NdjsonSerializer):
    """Sends a bulk body that is already ndjson bytes as it is. The client's own serializer copies
    every body twice (into a bytearray, then into new bytes), so each request in flight would hold
    its body three times over (docs/PERFORMANCE.md#bulk-bodies-sent-as-they-are)."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


def _client(settings: ElasticsearchSettings, quick: bool, json: OrjsonSerializer,
            compatible: OrjsonSerializer) -> Elasticsearch:
    return Elasticsearch(
        settings.url,
        basic_auth=(settings.user, settings.password) if settings.user else None,
        request_timeout=10 if quick else 120, max_retries=0 if quick else 3, retry_on_timeout=not quick,
        serializers={"application/json": json, "application/vnd.elasticsearch+json": compatible,
                     "application/x-ndjson": _BodyNdjsonSerializer()},
    )


def check(settings: ElasticsearchSettings, quick: bool = False) -> str:
    """Reaches the cluster and returns its version, or names what to fix."""
    where = elasticsearch_where(settings)
    try:
        return server_version(client(settings, quick))
    except AuthenticationException as exc:  # 401: wrong or missing user and password
        if not settings.user:
            raise ConfigurationError(f"cannot log in to {where}: the server requires a user and password "
                                     f"({elasticsearch_reason(exc)}, 401); set the user and password") from None
        raise ConfigurationError(f"cannot log in to {where} as user '{settings.user}': {elasticsearch_reason(exc)} "
                                 f"(401); {ELASTICSEARCH_LOGIN_FIX}") from None
    except AuthorizationException as exc:  # 403: logged in, but not allowed
        raise ConfigurationError(f"user '{settings.user}' may not read {where}: {elasticsearch_reason(exc)} (403); "
                                 f"{ELASTICSEARCH_ROLE_FIX}") from None
    except (TransportError, ApiError) as exc:
        raise UnreachableError(f"cannot reach {where}: {exc}") from None


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
                                 sort=EXPORT_SORT, search_after=after, track_total_hits=False)
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


def _hit_lines(index: str, hits: list[dict[str, Any]]) -> bytes:
    out = []
    for hit in hits:
        doc = {"_index": index, "_id": hit["_id"]}
        if "_routing" in hit:
            doc["_routing"] = hit["_routing"]
        doc["_source"] = hit["_source"]
        out.append(orjson.dumps(doc))
    out.append(b"")
    return b"\n".join(out)


# Lines are joined this many documents at a time, so each block stays under the mmap threshold and
# is reused (docs/PERFORMANCE.md#joining-export-lines).
JOIN_DOCS = 500
_HITS = b'"hits":{'
_HIT_LIST = b'"hits":['
_SCORE = b',"_score":null'
_SOURCE = b',"_source":'
_SORT = b',"sort":['
_JSON_STRING = rb'"(?:[^"\\]|\\.)*"'
_ROUTING = re.compile(rb',"_routing":' + _JSON_STRING)


def _page_lines(index: str, page: bytes) -> tuple[int, list[bytes], Any, str | None] | None:
    """(documents, ndjson lines in chunks of JOIN_DOCS, the last sort value, the newest PIT id) of
    one raw page of hits, or None when the page is empty.

    Elasticsearch answers each hit as `{"_index":…,"_id":…,"_score":null[,"_routing":…],
    "_source":{…},"sort":[…]}`, the source copied as it was stored: an ndjson line of the export
    once the score and sort value are cut out. So lines are cut from the answer's bytes instead of
    parsing every document into Python objects and serialising it again, which costs more than
    everything else the export does. (No `filter_path` is asked for: a filtered answer makes the
    server parse and write every source again, a third more of its CPU.) Every hit is checked to
    have that shape; a page where any does not (a source with line breaks, other metadata such as
    `_ignored`, a separator found inside a document) is parsed and written the ordinary way
    instead. Either way the documents written are counted against the point in time's total."""
    start = page.find(_HITS)
    if start < 0:
        return None
    head = orjson.loads(page[:start].rstrip(b",") + b"}")
    failed = (head.get("_shards") or {}).get("failed", 0)
    if failed:
        reasons = {str((f.get("reason") or {}).get("reason", f)) for f in head["_shards"].get("failures", [])}
        raise JobFailedError(f"Elasticsearch could not read {failed} shard(s) of index {index}: "
                             f"{'; '.join(sorted(reasons)) or 'no reason given'}. Check the cluster's health "
                             f"(GET _cluster/health/{index}) and back up again.")
    pit_id = head.get("pit_id")
    first = b'{"_index":' + orjson.dumps(index) + b',"_id":'
    listed = page.find(_HIT_LIST, start)
    at = listed + len(_HIT_LIST)  # where the first hit starts
    separator = b"}," + first
    # The page is split where it is, not sliced first: slices of a page of several MiB are copies.
    if listed >= 0 and page.startswith(first, at) and page.endswith(b"}]}}") and \
            page.find(b"\n", at) < 0 and page.find(b"\r", at) < 0 and page.find(separator, 0, at) < 0:
        pieces = page.split(separator)
        pieces[0] = pieces[0][at + len(first):]
        pieces[-1] = pieces[-1][:-4]  # after the first: with one hit, they are one piece
        out: list[bytes] = []
        for piece in pieces:
            score, cut = piece.find(_SCORE), piece.rfind(_SORT)
            if score < 0 or cut < 0 or not piece.endswith(b"]") or \
                    not piece[cut + len(_SORT):-1].translate(None, b",-").isdigit():
                break
            meta = score + len(_SCORE)
            if not piece.startswith(_SOURCE, meta):
                routing = _ROUTING.match(piece, meta)
                if routing is None or not piece.startswith(_SOURCE, routing.end()):
                    break
            out += (first, piece[:score], piece[meta:cut], b"}\n")
        else:
            last, step = pieces[-1], 4 * JOIN_DOCS  # four pieces a document
            chunks = [b"".join(out[i:i + step]) for i in range(0, len(out), step)]
            return len(pieces), chunks, orjson.loads(last[last.rfind(_SORT) + len(_SORT) - 1:]), pit_id
    hits = orjson.loads(page).get("hits", {}).get("hits", [])
    if not hits:
        return None
    return len(hits), [_hit_lines(index, hits)], hits[-1]["sort"], pit_id


class _RawSerializer(OrjsonSerializer):
    """Leaves answers as bytes (requests are still serialised with orjson)."""

    def loads(self, data: bytes) -> bytes:
        return data


class _RawCompatibilitySerializer(_RawSerializer):
    mimetype = "application/vnd.elasticsearch+json"


def raw_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """A client whose answers are the raw bytes Elasticsearch sent: the export's pages, and the
    restore's bulk answers, which need parsing only when they report errors."""
    return _client(settings, False, _RawSerializer(), _RawCompatibilitySerializer())


_DONE = object()


def export_index(es: Elasticsearch, index: str, write, progress: Progress | None = None,
                 slices: int = EXPORT_SLICES, page_size: int = EXPORT_PAGE_SIZE,
                 raw: Elasticsearch | None = None) -> tuple[int, int]:
    """Writes the index's documents as ndjson through `write`; returns (written, expected).

    `slices` threads each read one slice of one point in time, in `_doc` order with
    `search_after`, and hand their pages (already ndjson, see `_page_lines`) to this thread
    through a queue of a few pages, so memory stays bounded whatever the index's size.
    `raw` is a client from `raw_client`; without one, pages are parsed the ordinary way."""
    pit = es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"]
    pages: queue.Queue = queue.Queue(maxsize=slices)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def read(slice_id: int) -> None:
        try:
            pit_id, after = pit, None
            while not stop.is_set():
                body: dict[str, Any] = {"pit": {"id": pit_id, "keep_alive": KEEP_ALIVE}, "size": page_size,
                                        "sort": EXPORT_SORT, "track_total_hits": False}
                if slices > 1:
                    body["slice"] = {"id": slice_id, "max": slices}
                if after is not None:
                    body["search_after"] = after
                if raw is not None:
                    got = _page_lines(index, raw.search(body=body).body)
                    if got is None:
                        break
                    count, data, after, new_pit = got
                else:
                    page = es.search(body=body, filter_path=EXPORT_FILTER)
                    hits = page.get("hits", {}).get("hits", [])
                    if not hits:
                        break
                    count, data, after, new_pit = len(hits), [_hit_lines(index, hits)], hits[-1]["sort"], page.get("pit_id")
                pit_id = new_pit or pit_id
                put((count, data))
            put(_DONE)
        except BaseException as exc:  # handed to the writing thread, which raises it
            put(exc)

    try:
        first = es.search(pit={"id": pit, "keep_alive": KEEP_ALIVE}, size=0, track_total_hits=True)
        expected = first["hits"]["total"]["value"]
        threads = [threading.Thread(target=read, args=(i,), name=f"export:{index}:{i}", daemon=True)
                   for i in range(slices)]
        for thread in threads:
            thread.start()
        written, running = 0, slices
        try:
            while running:
                item = pages.get()
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
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    finally:
        es.options(ignore_status=404).close_point_in_time(id=pit)
    return written, expected


def dump(settings: ElasticsearchSettings, staging, backup_id: str, pattern: str = "*") -> JobResult:
    """Writes templates, index definitions and one ndjson per index into `staging`."""
    # Two malloc arenas: the slice threads' pages would otherwise fragment a heap each.
    with runtime.malloc_arenas(2), runtime.frozen():
        return _dump(settings, staging, backup_id, pattern)


def _dump(settings: ElasticsearchSettings, staging, backup_id: str, pattern: str) -> JobResult:
    started = time.monotonic()
    version = check(settings)
    es, raw = client(settings), raw_client(settings)
    indices = list_indices(es, pattern)
    artifacts, docs = [], {}
    for path, value in ((bundle.templates_path(backup_id), templates(es)),
                        (bundle.indices_path(backup_id), index_definitions(es, indices))):
        body = orjson.dumps(value, option=orjson.OPT_INDENT_2)
        if len(body) > limits.ES_JSON_BYTES:  # a restore would refuse it
            raise ConfigurationError(f"{path} would be {len(body)} bytes, more than the "
                                     f"{limits.human(limits.ES_JSON_BYTES)} a restore reads (docs/FORMAT.md): back "
                                     "up fewer indices per bundle with the param index_pattern")
        with staging.writer(path, "application/json") as out:
            out.write(body)
        artifacts.append(bundle.Artifact(path, out.size, out.sha256))
    for index in indices:  # two at once: no faster, more memory (docs/PERFORMANCE.md#one-index-at-a-time)
        path = bundle.elasticsearch_index_path(index, backup_id)
        written, expected, out = _export_to(staging, path, es, index, raw)
        if written != expected:
            # A source holding, as JSON structure, what looks like the boundary between two hits
            # misleads the cut of raw pages; parsed pages cannot be misled, so the index is read again.
            log.warning("index %s: %d lines cut from raw pages for %d documents; reading it again, "
                        "parsing every page", index, written, expected)
            written, expected, out = _export_to(staging, path, es, index, None)
        if written != expected:
            raise JobFailedError(f"index {index} of {elasticsearch_where(settings)}: wrote {written} documents "
                                 f"but the server reported {expected}; nothing of this backup was kept")
        artifacts.append(bundle.Artifact(path, out.size, out.sha256))
        docs[index] = written
    counts = {"indices": docs, "documents": sum(docs.values())}
    return JobResult("elasticsearch", artifacts, counts, time.monotonic() - started, version)


def _export_to(staging, path: str, es: Elasticsearch, index: str,
               raw: Elasticsearch | None) -> tuple[int, int, Any]:
    """Exports one index into `path` of the staging; (written, expected, the finished writer)."""
    progress = Progress(f"export {index}", "docs")
    with staging.writer(path, "application/x-ndjson") as out:
        written, expected = export_index(es, index, out.write, progress, raw=raw)
    progress.done()
    return written, expected, out


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


def _bulk_pair(raw: bytes) -> tuple[bytes, bytes]:
    """The bulk action line and source line of one ndjson line.

    A line in the shape archivist writes is cut, not parsed (`_cut_line`): its id and routing are
    copied as the JSON strings they are, its source as the bytes it is. Any other line (the
    original tool's, a document without `_source`, …) is parsed and serialised with orjson."""
    line = raw.rstrip()
    cut = _cut_line(line, 0, len(line)) if b"\n" not in line else None
    if cut is not None:
        action, source_at = cut
        return action, line[source_at:-1] + b"\n"
    doc = orjson.loads(raw)
    meta = {"_id": doc["_id"]}
    if doc.get("_routing") is not None:
        meta["routing"] = doc["_routing"]
    return b'{"index":' + orjson.dumps(meta) + b"}\n", orjson.dumps(doc["_source"]) + b"\n"


READ_BLOCK = 1024 * 1024
LINE_MAX_BYTES = limits.NDJSON_LINE_BYTES
_LINE_START = b'{"_index":"'   # index names hold no quotes or backslashes
_ID_KEY = b'","_id":'
# The id, and the routing after it, of a line whose metadata holds escapes or routing.
_META_RE = re.compile(b"(" + _JSON_STRING + rb')(?:,"_routing":(' + _JSON_STRING + b"))?")


class _LineTooLong(Exception):
    """A line ran past LINE_MAX_BYTES without its newline."""


def _line_blocks(stream: IO[bytes]) -> Iterator[tuple[bytes, int, int]]:
    """(buffer, start, stop): spans of whole lines, read READ_BLOCK bytes at a time and left in
    the buffers they were read into; a last line without its newline gets one. A line longer than
    LINE_MAX_BYTES raises _LineTooLong once that much of it is held, and no later."""
    rest: list[bytes] = []
    pending = 0  # bytes in `rest`: the only place a line grows past one block
    while chunk := stream.read(READ_BLOCK):
        first = chunk.find(b"\n")
        if first < 0:
            rest.append(chunk)
            pending += len(chunk)
            if pending > LINE_MAX_BYTES:
                raise _LineTooLong()
            continue
        start = 0
        if rest:
            if pending + first > LINE_MAX_BYTES:
                raise _LineTooLong()
            head = b"".join([*rest, chunk[:first + 1]])
            rest, pending = [], 0
            yield head, 0, len(head)
            start = first + 1
        last = chunk.rfind(b"\n")
        if last >= start:
            yield chunk, start, last + 1
        if last + 1 < len(chunk):
            rest.append(chunk[last + 1:])
            pending = len(chunk) - last - 1
    if rest:
        tail = b"".join([*rest, b"\n"])
        yield tail, 0, len(tail)


def _bulk_action(meta: bytes) -> bytes | None:
    """The bulk action line for the metadata between `"_id":` and `,"_source":` of an archivist
    line (`"id"` or `"id","_routing":"r"`), or None when it is anything else."""
    if b"\\" not in meta:
        quotes = meta.count(b'"')
        if quotes == 2 and meta[:1] == b'"' and meta[-1:] == b'"':
            return b'{"index":{"_id":' + meta + b"}}\n"
        if quotes != 6:
            return None
    match = _META_RE.fullmatch(meta)
    if match is None:
        return None
    if match.group(2) is None:
        return b'{"index":{"_id":' + meta + b"}}\n"
    return b'{"index":{"_id":' + match.group(1) + b',"routing":' + match.group(2) + b"}}\n"


def _cut_line(buf: bytes, pos: int, end: int) -> tuple[bytes, int] | None:
    """For the line `buf[pos:end]` in archivist's shape, `{"_index":"…","_id":"…"[,"_routing":"…"],
    "_source":{…}}`: its bulk action line and where its source starts in `buf`. None for any other
    line. A few searches, no regular expression over the line and no copy of it."""
    if not (buf.startswith(_LINE_START, pos) and buf.startswith(b"}}", end - 2)):
        return None
    id_at = buf.find(_ID_KEY, pos + len(_LINE_START), end)
    source_at = buf.find(_SOURCE, id_at, end) if id_at >= 0 else -1
    if source_at < 0:
        return None
    action = _bulk_action(buf[id_at + len(_ID_KEY):source_at])
    return None if action is None else (action, source_at + len(_SOURCE))


def _bulk_bodies(lines: IO[bytes], progress: Progress) -> Iterator[tuple[bytes, int]]:
    """Bulk request bodies (action and source lines) of at most BULK_CHUNK_DOCS documents or
    BULK_CHUNK_BYTES bytes, each with its number of documents.

    Lines are found in the blocks they were read in, and an archivist line's source goes into the
    body straight from there (a memoryview, copied once by the join). Other lines go through
    `_bulk_pair`."""
    parts: list[bytes | memoryview] = []
    docs = size = 0
    counted = 0  # lines before the current body's: documents of the bodies yielded, and blank lines
    try:
        for block, pos, stop in _line_blocks(lines):
            view = memoryview(block)
            while pos < stop:
                end = block.index(b"\n", pos)
                cut = _cut_line(block, pos, end)
                if cut is not None:
                    action, source_at = cut
                    source = view[source_at:end - 1]
                else:
                    line = block[pos:end]
                    if not line.strip():
                        pos = end + 1
                        counted += 1
                        continue
                    action, source = _bulk_pair(line)
                    source = source[:-1]
                pos = end + 1
                grow = len(action) + len(source) + 1
                if docs and (docs >= BULK_CHUNK_DOCS or size + grow > BULK_CHUNK_BYTES):
                    yield b"".join(parts), docs
                    progress.add(docs)
                    counted += docs
                    parts, docs, size = [], 0, 0
                parts += (action, source, b"\n")
                docs += 1
                size += grow
    except _LineTooLong:
        raise LineTooLongError(counted + docs + 1) from None
    if docs:
        progress.add(docs)
        yield b"".join(parts), docs


class LineTooLongError(JobFailedError):
    """An ndjson line longer than any document Elasticsearch could have taken."""

    def __init__(self, line: int):
        self.line = line
        super().__init__(
            f"line {line} is longer than {limits.human(LINE_MAX_BYTES)} (http.max_content_length, the largest "
            "request Elasticsearch takes, is 100mb by default): the bundle is damaged or was not made by archivist")


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
    es.indices.put_settings(index=index, body={"index": {
        "number_of_replicas": original.get("number_of_replicas", 1 if definition else None),
        "refresh_interval": original.get("refresh_interval"),
        "translog": {"durability": (original.get("translog") or {}).get("durability")},
    }})
    es.indices.flush(index=index)  # what the asynchronous translog had not yet made durable
    es.indices.refresh(index=index)
    for alias, spec in ((definition or {}).get("aliases") or {}).items():
        es.indices.put_alias(index=index, name=alias, body=spec)


def _send_bulk(raw: Elasticsearch, index: str, body: bytes, docs: int) -> int:
    answer = raw.bulk(index=index, operations=body, filter_path=["errors", "items.*.error", "items.*._id"]).body
    if answer.startswith(b'{"errors":false'):  # ids unparsed (docs/PERFORMANCE.md#bulk-answers-left-unparsed)
        return docs
    resp = orjson.loads(answer)
    if resp.get("errors"):
        failed = [item for item in resp.get("items", []) if "error" in next(iter(item.values()))]
        first = next(iter(failed[0].values())) if failed else {}
        raise JobFailedError(f"index {index}: {len(failed)} of {docs} documents of a bulk request were refused, "
                             f"the first ({first.get('_id')}): {first.get('error')}")
    return docs


def load_documents(raw: Elasticsearch, index: str, lines: IO[bytes]) -> int:
    """Sends the ndjson documents as bulk bodies, BULK_THREADS requests in flight, through `raw`
    (a client from `raw_client`); returns how many."""
    progress = Progress(f"restore {index}", "docs")
    loaded = 0
    pending: set[Future] = set()
    # Two malloc arenas: the bulk threads' bodies and answers would otherwise fragment a heap each.
    with runtime.malloc_arenas(2), runtime.frozen(), \
            ThreadPoolExecutor(max_workers=BULK_THREADS, thread_name_prefix=f"bulk:{index}") as pool:
        try:
            for body, docs in _bulk_bodies(lines, progress):
                if len(pending) >= BULK_THREADS:
                    # Whichever ends first frees its place, so one held-up request does not idle the
                    # server (docs/PERFORMANCE.md#bulk-requests-in-flight).
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    loaded += sum(future.result() for future in done)
                pending.add(pool.submit(_send_bulk, raw, index, body, docs))
            done, pending = wait(pending)
            loaded += sum(future.result() for future in done)
        except LineTooLongError as exc:
            raise JobFailedError(f"index {index}: {exc}") from None
        finally:
            for future in pending:
                future.cancel()
    progress.done()
    return loaded


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return es.count(index=index)["count"]
