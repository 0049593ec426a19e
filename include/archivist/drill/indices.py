"""Elasticsearch in a drill: each index's documents as the bundle's ndjson holds them and as the
scratch index holds them after the restore: how many, and a digest of their ids (with routing).

Both are digested from ndjson lines by the same code: the scratch index's lines are the ones the
export writes (export.export_index), so it is read as a backup reads it on every search server,
a page at a time, never whole."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from archivist.drill.digest import LineDigest, chunks_of
from archivist.format.streams import Readable
from archivist.sources.elasticsearch import export as es_export

log = logging.getLogger(__name__)


def _identity(doc_id: Any, routing: Any) -> bytes:
    return orjson.dumps([doc_id, routing])


class LineIds:
    """A digest of the ids in ndjson written to it in chunks, which may end inside a line."""

    def __init__(self) -> None:
        self.digest = LineDigest()
        self._partial = b""

    def write(self, chunk: bytes) -> None:
        lines = (self._partial + bytes(chunk) if self._partial else bytes(chunk)).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._add(line)

    def close(self) -> LineDigest:
        """The digest, with a last line that has no newline."""
        if self._partial:
            self._add(self._partial)
            self._partial = b""
        return self.digest

    def _add(self, line: bytes) -> None:
        """A line that is no document counts under a null id; blank lines are skipped, as readers
        skip them (docs/FORMAT.md)."""
        if not line.strip():
            return
        try:
            doc = orjson.loads(line)
            self.digest.add(_identity(doc.get("_id"), doc.get("_routing")))
        except (orjson.JSONDecodeError, AttributeError):
            self.digest.add(_identity(None, None))


def read_lines(ndjson: Readable) -> LineDigest:
    """The ids of an index's ndjson member."""
    ids = LineIds()
    for chunk in chunks_of(ndjson):
        ids.write(chunk)
    return ids.close()


def read_index(es: Elasticsearch, index: str, raw: Elasticsearch | None = None) -> LineDigest | None:
    """The ids of index `index` (opened first if the restore left it closed, as the bundle said
    it was), or None when there is no such index. `raw` (cluster.raw_client) lets the export cut
    lines from raw pages instead of parsing them."""
    if not es.indices.exists(index=index):
        return None
    state = es.cluster.state(metric="metadata", index=index, filter_path="metadata.indices.*.state")
    if state.get("metadata", {}).get("indices", {}).get(index, {}).get("state") == "close":
        es.indices.open(index=index, wait_for_active_shards="all")
    es.indices.refresh(index=index)
    digest, whole = _exported_ids(es, index, raw)
    if not whole and raw is not None:
        # A source shaped like the boundary between two hits misleads the cut of raw pages (as in
        # the export); parsed pages cannot be misled.
        log.warning("index %s: the lines cut from raw pages were not the server's count; reading it again", index)
        digest, _ = _exported_ids(es, index, None)
    return digest


def _exported_ids(es: Elasticsearch, index: str, raw: Elasticsearch | None) -> tuple[LineDigest, bool]:
    """(the digest of the index's lines as the export writes them, whether they were as many as
    the server counted)."""
    ids = LineIds()
    written, expected = es_export.export_index(es, index, ids.write, raw=raw)
    return ids.close(), written == expected
