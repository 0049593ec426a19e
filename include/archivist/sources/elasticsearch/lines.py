"""Documents cut out of bytes, with no client and no JSON parse of a document in the usual shapes.

The export turns a raw page of search hits into ndjson lines (`page_lines`); the restore turns
ndjson lines into bulk request bodies (`bulk_bodies`). Either way a document's source is copied
as the bytes it is, and anything of another shape is parsed and written with orjson instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from archivist.errors import JobFailedError
from archivist.format import limits
from archivist.format.streams import Readable
from archivist.progress import Progress

# Lines are joined this many documents at a time, so each block stays under the mmap threshold and
# is reused (docs/PERFORMANCE.md#joining-export-lines).
JOIN_DOCS = 500
BULK_CHUNK_DOCS = 2000
BULK_CHUNK_BYTES = 8 * 1024 * 1024
READ_BLOCK = 1024 * 1024
LINE_MAX_BYTES = limits.NDJSON_LINE_BYTES

_HITS = b'"hits":{'
_HIT_LIST = b'"hits":['
_SCORE = b',"_score":null'
_SOURCE = b',"_source":'
_SORT = b',"sort":['
_JSON_STRING = rb'"(?:[^"\\]|\\.)*"'
_ROUTING = re.compile(rb',"_routing":' + _JSON_STRING)
_LINE_START = b'{"_index":"'  # index names hold no quotes or backslashes
_INDEX_ACTION = b'{"index":'  # how every action line of _bulk_action and _bulk_pair begins
_ID_KEY = b'","_id":'
# The id, and the routing after it, of a line whose metadata holds escapes or routing.
_META_RE = re.compile(b"(" + _JSON_STRING + rb')(?:,"_routing":(' + _JSON_STRING + b"))?")


# --- export: search pages to ndjson lines ------------------------------------------------------


def hit_lines(index: str, hits: list[dict[str, Any]]) -> bytes:
    """Parsed hits as ndjson lines."""
    out = []
    for hit in hits:
        doc = {"_index": index, "_id": hit["_id"]}
        if "_routing" in hit:
            doc["_routing"] = hit["_routing"]
        doc["_source"] = hit["_source"]
        out.append(orjson.dumps(doc))
    out.append(b"")
    return b"\n".join(out)


def page_lines(index: str, page: bytes) -> tuple[int, list[bytes], Any, str | None] | None:
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
    pit_id = _page_cursor(index, page[:start])
    cut = _cut_page(index, page, start)
    if cut is not None:
        return (*cut, pit_id)
    hits = orjson.loads(page).get("hits", {}).get("hits", [])
    if not hits:
        return None
    return len(hits), [hit_lines(index, hits)], hits[-1]["sort"], pit_id


def page_total(page: bytes) -> int | None:
    """The `hits.total` of a raw page (None when it has none), read without parsing its hits."""
    start = page.find(_HITS)
    listed = page.find(_HIT_LIST, start + len(_HITS)) if start >= 0 else -1
    if listed < 0:
        return None
    total = orjson.loads(page[start + len(_HITS) - 1 : listed].rstrip(b",") + b"}").get("total")
    return total.get("value") if isinstance(total, dict) else total


def _page_cursor(index: str, head: bytes) -> str | None:
    """The PIT or scroll id in the part of a page before its hits; raises if any shard could not be read."""
    meta = orjson.loads(head.rstrip(b",") + b"}")
    failed = (meta.get("_shards") or {}).get("failed", 0)
    if failed:
        reasons = {str((f.get("reason") or {}).get("reason", f)) for f in meta["_shards"].get("failures", [])}
        raise JobFailedError(
            f"Elasticsearch could not read {failed} shard(s) of index {index}: "
            f"{'; '.join(sorted(reasons)) or 'no reason given'}. Check the cluster's health "
            f"(GET _cluster/health/{index}) and back up again."
        )
    return meta.get("pit_id") or meta.get("_scroll_id")


def _cut_page(index: str, page: bytes, start: int) -> tuple[int, list[bytes], Any] | None:
    """(documents, lines in chunks, last sort value) cut from a page whose hits, found after
    `start`, all have the usual shape; None for any other page."""
    first = b'{"_index":' + orjson.dumps(index) + b',"_id":'
    listed = page.find(_HIT_LIST, start)
    at = listed + len(_HIT_LIST)  # where the first hit starts
    seen = _hit_start(page, at, first)  # how hits start in the page; `first` is how lines start
    separator = b"}," + seen
    if (
        listed < 0
        or not page.startswith(seen, at)
        or not page.endswith(b"}]}}")
        or page.find(b"\n", at) >= 0
        or page.find(b"\r", at) >= 0
        or page.find(separator, 0, at) >= 0
    ):
        return None
    # The page is split where it is, not sliced first: slices of a page of several MiB are copies.
    pieces = page.split(separator)
    pieces[0] = pieces[0][at + len(seen) :]
    pieces[-1] = pieces[-1][:-4]  # after the first: with one hit, they are one piece
    out = _hit_parts(first, pieces)
    if out is None:
        return None
    last, step = pieces[-1], 4 * JOIN_DOCS  # four parts a document
    chunks = [b"".join(out[i : i + step]) for i in range(0, len(out), step)]
    return len(pieces), chunks, orjson.loads(last[last.rfind(_SORT) + len(_SORT) - 1 :])


def _hit_start(page: bytes, at: int, first: bytes) -> bytes:
    """How the hit at `at` starts: `first`, or in Elasticsearch 7 `first` with the document's
    `"_type":"…",` (one type an index), which the lines leave out: no server since 8 takes it."""
    typed = first[: -len(_ID_KEY) + 1] + b',"_type":'  # '{"_index":"<index>","_type":'
    if not page.startswith(typed, at):
        return first
    end = page.find(b',"_id":', at + len(typed))
    kind = page[at + len(typed) : end] if end >= 0 else b""
    if kind.count(b'"') != 2 or b"\\" in kind or not kind.startswith(b'"') or not kind.endswith(b'"'):
        return first
    return page[at : end + len(b',"_id":')]


def _hit_parts(first: bytes, pieces: list[bytes]) -> list[bytes] | None:
    """The parts of the lines of hits split at their starts (each piece a hit without `first`),
    four a document; None as soon as a piece is not of the usual shape."""
    out: list[bytes] = []
    for piece in pieces:
        score, cut = piece.find(_SCORE), piece.rfind(_SORT)
        if (
            score < 0
            or cut < 0
            or not piece.endswith(b"]")
            or not piece[cut + len(_SORT) : -1].translate(None, b",-").isdigit()
        ):
            return None
        meta = score + len(_SCORE)
        if not piece.startswith(_SOURCE, meta):
            routing = _ROUTING.match(piece, meta)
            if routing is None or not piece.startswith(_SOURCE, routing.end()):
                return None
        out += (first, piece[:score], piece[meta:cut], b"}\n")
    return out


# --- restore: ndjson lines to bulk bodies -------------------------------------------------------


class LineTooLongError(JobFailedError):
    """An ndjson line longer than any document Elasticsearch could have taken."""

    def __init__(self, line: int):
        self.line = line
        super().__init__(
            f"line {line} is longer than {limits.human(LINE_MAX_BYTES)} (http.max_content_length, the largest "
            "request Elasticsearch takes, is 100mb by default): the bundle is damaged or was not made by archivist"
        )


class _LineTooLong(Exception):
    """A line ran past LINE_MAX_BYTES without its newline."""


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


def _line_blocks(stream: Readable) -> Iterator[tuple[bytes, int, int]]:
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
            head = b"".join([*rest, chunk[: first + 1]])
            rest, pending = [], 0
            yield head, 0, len(head)
            start = first + 1
        last = chunk.rfind(b"\n")
        if last >= start:
            yield chunk, start, last + 1
        if last + 1 < len(chunk):
            rest.append(chunk[last + 1 :])
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
    action = _bulk_action(buf[id_at + len(_ID_KEY) : source_at])
    return None if action is None else (action, source_at + len(_SOURCE))


def bulk_bodies(lines: Readable, progress: Progress, op: str = "index") -> Iterator[tuple[bytes, int]]:
    """Bulk request bodies (action and source lines) of at most BULK_CHUNK_DOCS documents or
    BULK_CHUNK_BYTES bytes, each with its number of documents. `op`: the bulk action, `index`, or
    `create` (the only one a data stream takes).

    Lines are found in the blocks they were read in, and an archivist line's source goes into the
    body straight from there (a memoryview, copied once by the join). Other lines go through
    `_bulk_pair`."""
    parts: list[bytes | memoryview] = []
    docs = size = 0
    other_op = b'{"' + op.encode() + b'":' if op != "index" else None
    counted = 0  # lines before the current body's: documents of the bodies yielded, and blank lines
    try:
        for block, pos, stop in _line_blocks(lines):
            view = memoryview(block)
            while pos < stop:
                end = block.index(b"\n", pos)
                cut = _cut_line(block, pos, end)
                if cut is not None:
                    action, source_at = cut
                    source: bytes | memoryview = view[source_at : end - 1]
                else:
                    line = block[pos:end]
                    if not line.strip():
                        pos = end + 1
                        counted += 1
                        continue
                    action, source = _bulk_pair(line)
                    source = source[:-1]
                pos = end + 1
                if other_op is not None:
                    action = other_op + action[len(_INDEX_ACTION) :]
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
