"""Elasticsearch in a drill: each index's documents as the bundle's ndjson holds them and as the
scratch index holds them after the restore: how many, and a digest of their ids (with routing)."""

from __future__ import annotations

from typing import Any

import orjson
from elasticsearch import Elasticsearch

from archivist.drill.digest import LineDigest, chunks_of, split_lines
from archivist.format.streams import Readable

PAGE = 5000
KEEP_ALIVE = "2m"


def _identity(doc_id: Any, routing: Any) -> bytes:
    return orjson.dumps([doc_id, routing])


def read_lines(ndjson: Readable) -> LineDigest:
    """The ids of an index's ndjson member; a line that is no document counts under a null id."""
    digest = LineDigest()
    for line in split_lines(chunks_of(ndjson)):
        if not line.strip():
            continue  # readers skip blank lines (docs/FORMAT.md)
        try:
            doc = orjson.loads(line)
            digest.add(_identity(doc.get("_id"), doc.get("_routing")))
        except (orjson.JSONDecodeError, AttributeError):
            digest.add(_identity(None, None))
    return digest


def read_index(es: Elasticsearch, index: str) -> LineDigest | None:
    """The ids of index `index` (opened first if the restore left it closed, as the bundle said
    it was), or None when there is no such index."""
    if not es.indices.exists(index=index):
        return None
    state = es.cluster.state(metric="metadata", index=index, filter_path="metadata.indices.*.state")
    if state.get("metadata", {}).get("indices", {}).get(index, {}).get("state") == "close":
        es.indices.open(index=index, wait_for_active_shards="all")
    es.indices.refresh(index=index)
    digest = LineDigest()
    pit = es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"]
    after = None
    try:
        while True:
            page = es.search(
                pit={"id": pit, "keep_alive": KEEP_ALIVE},
                size=PAGE,
                sort=["_shard_doc"],
                search_after=after,
                source=False,
                track_total_hits=False,
            )
            pit = page.get("pit_id", pit)
            hits = page["hits"]["hits"]
            if not hits:
                return digest
            for hit in hits:
                digest.add(_identity(hit["_id"], hit.get("_routing")))
            after = hits[-1]["sort"]
    finally:
        es.close_point_in_time(id=pit)
