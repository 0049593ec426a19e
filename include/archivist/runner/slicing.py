"""One large index read by several parts of a split backup (docs/FORMAT.md#9-split-jobs): how many
slices it is cut into, the one point in time every slice reads, and the slices put together again
as the index's one ndjson.

The planning task opens the point in time, so every part reads the same snapshot whichever worker
runs it and whenever; each part reads its slices with the export's own sliced reader. The join
checks the slices add up to what the point in time held, then closes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, cast

from archivist import config
from archivist.errors import ConfigurationError, JobFailedError
from archivist.format import bundle
from archivist.format.bundle import Artifact, JobResult
from archivist.transport.staging import S3Staging

log = logging.getLogger(__name__)

# An index is cut into slices when its store is at least this many times a part's share: one part
# of about a share each, instead of one part that alone takes as long as the others together.
SLICE_ABOVE_SHARE = 1.5
# Below this store size an index is never sliced, whatever its share: the bookkeeping (a point in
# time, a count per slice, the join reading the slices once more) would cost more than it saves.
SLICE_MIN_MB_VARIABLE = "ARCHIVIST_SLICE_MIN_MB"
DEFAULT_SLICE_MIN_MB = 1024
# The point in time must outlive the last part that reads it. A part may wait in the executor's
# queue for as long as the parts ahead of it run, and a retry comes later still, but none outlives
# the run, so it is kept alive as long as the run may last (ARCHIVIST_RUN_TIMEOUT_HOURS), within
# the 24 hours Elasticsearch allows by default (`search.max_keep_alive`). It holds the segments it
# reads from being merged away until the join closes it.
MAX_KEEP_ALIVE_SECONDS = 24 * 3600
COPY_CHUNK = 1024 * 1024


def slice_min_bytes(env: Mapping[str, str] | None = None) -> int:
    """ARCHIVIST_SLICE_MIN_MB in bytes: the store size below which an index is never sliced."""
    env = os.environ if env is None else env
    text = env.get(SLICE_MIN_MB_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SLICE_MIN_MB * 1024 * 1024
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(f"{SLICE_MIN_MB_VARIABLE} must be a number of megabytes (0 or more), got {text!r}")
    return int(value * 1024 * 1024)


def keep_alive() -> str:
    """How long the point in time of a sliced index lives after each use (see MAX_KEEP_ALIVE_SECONDS)."""
    seconds = min(int(config.load_timeouts().run.total_seconds()), MAX_KEEP_ALIVE_SECONDS)
    return f"{max(seconds, 60)}s"


def slice_counts(weights: Mapping[str, int], n: int, sliceable: Iterable[str], min_bytes: int) -> dict[str, int]:
    """How many slices (parts) each index of `sliceable` large against a part's share is cut into,
    so that those slices and at least one part for the other indices fit in `n` parts."""
    if n <= 1 or not weights:
        return {}
    share = sum(weights.values()) / n
    counts = {
        index: max(2, round(weights[index] / share))
        for index in sliceable
        if weights[index] >= max(min_bytes, SLICE_ABOVE_SHARE * share)
    }
    whole = len(weights) > len(counts)  # indices left whole need a part of their own
    while counts and sum(counts.values()) + whole > n:
        largest = max(counts, key=lambda i: (counts[i], weights[i], i))
        counts[largest] -= 1
        if counts[largest] < 2:
            del counts[largest]
            whole = True
    return counts


def open_shares(es: Any, index: str, slices: int, threads: int, alive: str) -> list[dict[str, Any]]:
    """Opens the point in time every slice of `index` reads and counts it; the `slices` shares,
    each of `threads` slices of slices*threads (one part reads as fast as one whole index does)."""
    from elasticsearch import ApiError

    from archivist.errors import elasticsearch_reason

    try:
        pit = es.open_point_in_time(index=index, keep_alive=alive)["id"]
        answer = es.search(pit={"id": pit, "keep_alive": alive}, size=0, track_total_hits=True)
    except ApiError as exc:
        raise JobFailedError(
            f"index {index}: cannot open the point in time its slices would read, kept alive {alive}: "
            f"{elasticsearch_reason(exc)}. If the cluster allows less (search.max_keep_alive), set "
            "ARCHIVIST_RUN_TIMEOUT_HOURS below it; or raise ARCHIVIST_SLICE_MIN_MB above the index's size "
            "to keep it whole"
        ) from None
    total = answer["hits"]["total"]["value"]
    of = slices * threads
    return [
        {
            "index": index,
            "pit": pit,
            "ids": [s * threads + t for t in range(threads)],
            "of": of,
            "total": total,
            "keep_alive": alive,
        }
        for s in range(slices)
    ]


def close_points_in_time(pits: Iterable[str]) -> None:
    """Closes the points in time of sliced indices, best effort: one left open expires anyway."""
    pits = set(pits)
    if not pits:
        return
    from archivist.sources.elasticsearch import cluster

    try:
        es = cluster.client(config.load_elasticsearch())
        for pit in pits:
            es.options(ignore_status=404).close_point_in_time(id=pit)
    except Exception as exc:  # nothing depends on it any more; the point in time expires on its own
        log.warning("could not close the point in time of a sliced index (it expires on its own): %s", exc)


def planned_points_in_time(parts: list[dict[str, Any]] | None) -> list[str]:
    """The points in time a split_elasticsearch plan opened."""
    return [p["slices"]["pit"] for p in parts or [] if "slices" in p]


def result_points_in_time(results: list[JobResult]) -> list[str]:
    """The points in time the slice parts among `results` read."""
    return [r.slices["pit"] for r in results if r.slices]


class Concatenated:
    """The staged objects read one after another as one stream: `read(n)` gives n bytes until the
    last object ends (tarfile needs whole reads)."""

    def __init__(self, openers: list[Callable[[], IO[bytes]]]):
        self._openers = list(openers)
        self._current: IO[bytes] | None = None

    def read(self, n: int = -1) -> bytes:
        chunks, wanted = [], n
        while self._openers or self._current is not None:
            if self._current is None:
                self._current = self._openers.pop(0)()
            data = self._current.read(wanted if wanted >= 0 else COPY_CHUNK)
            if not data:
                self._current.close()
                self._current = None
                continue
            chunks.append(data)
            if wanted >= 0:
                wanted -= len(data)
                if wanted == 0:
                    break
        return b"".join(chunks)

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        self._openers = []


def join_index(index: str, parts: list[JobResult], staging: S3Staging) -> tuple[Artifact, Callable[[], IO[bytes]], int]:
    """The slices of one index (each part's ndjson) as the index's one member: its artifact (size
    and sha256 of the slices one after another, read once), how to open it, and its documents.
    Refuses a slice missing or twice, and a sum that is not the point in time's total."""
    ordered = sorted(parts, key=lambda r: min((r.slices or {}).get("ids") or [0]))
    first = ordered[0].slices or {}
    ids = sorted(i for r in ordered for i in (r.slices or {}).get("ids", []))
    if ids != list(range(first.get("of", 0))):
        raise JobFailedError(f"index {index}: the parts read slices {ids} of {first.get('of')}; no bundle was made")
    written = sum(r.counts.get("indices", {}).get(index, 0) for r in ordered)
    if written != first.get("total"):
        raise JobFailedError(
            f"index {index}: its slices wrote {written} documents but its point in time held "
            f"{first.get('total')}; no bundle was made"
        )
    path = next(a.path for a in ordered[0].artifacts if bundle.index_of_path(a.path) == index)
    digest, size = hashlib.sha256(), 0
    for result in ordered:
        staged = next(a for a in result.artifacts if a.path == path)
        one, got = hashlib.sha256(), 0
        with staging.part("elasticsearch", result.part or 0).open(path) as stream:
            while data := stream.read(COPY_CHUNK):
                digest.update(data)
                one.update(data)
                got += len(data)
        if (got, one.hexdigest()) != (staged.size, staged.sha256):
            raise JobFailedError(
                f"index {index}: the staged slices of part {result.part} are not what the part wrote "
                f"({got} bytes, expected {staged.size}); no bundle was made"
            )
        size += got
    openers = [_opener(staging.part("elasticsearch", r.part or 0), path) for r in ordered]
    return Artifact(path, size, digest.hexdigest()), lambda: cast(IO[bytes], Concatenated(openers)), written


def _opener(folder: S3Staging, path: str) -> Callable[[], IO[bytes]]:
    return lambda: folder.open(path)
