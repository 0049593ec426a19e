"""One job's work spread over several tasks: which part takes what, and the parts joined again.

The DAGs split Elasticsearch by index (a large index by slices of one point in time,
runner/slicing.py) and storage by ranges of the key space (docs/FORMAT.md#9-split-jobs);
each part runs as a mapped task on whichever worker takes it and stages its artifacts in its own
folder of the run's staging prefix (`S3Staging.part`). `join` makes the parts one job again for the
bundle: Elasticsearch's bundle reads as if one task had made it, storage's holds one archive per
part (format version 3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson

from archivist.errors import ConfigurationError, JobFailedError
from archivist.format import bundle, limits
from archivist.format.bundle import DATA_STREAMS_COUNT, Artifact, JobResult
from archivist.format.members import read_json
from archivist.runner import slicing
from archivist.sources.base import DumpOptions, PitSlices, RestoreOptions
from archivist.transport.staging import S3Staging

log = logging.getLogger(__name__)

SPLIT_JOBS = ("elasticsearch", "storage")
MAX_PARTS = 16
# With the param `split` at 0 (automatic): one part per this many indices, or objects. Below them a
# source stays one task, as a small stack's always was.
INDICES_PER_PART = 20
OBJECTS_PER_PART = 50_000
# What an object costs a storage part beside its bytes (the requests to list, get and tag it), in
# bytes: the key ranges balance bytes plus this per object.
OBJECT_COST_BYTES = 64 * 1024

# One mapped task's share, through XCom: {"part": n, "indices": [...]}, {"part": n, "slices": {...}}
# (runner/slicing.py) or {"part": n, "after": key, "last": key}.
Part = dict[str, Any]


def part_count(asked: int, items: int, per_part: int) -> int:
    """How many parts: `asked`, or with 0 one per `per_part` items; never more parts than items or MAX_PARTS."""
    if asked < 0:
        raise ConfigurationError(f"split {asked}: give 0 (chosen by the data), 1 (no split) or up to {MAX_PARTS} parts")
    wanted = asked or math.ceil(items / per_part)
    return max(1, min(wanted, items, MAX_PARTS))


def balanced(weights: dict[str, int], n: int) -> list[list[str]]:
    """The names in `n` groups of about equal weight, heaviest first into the lightest group; each
    group sorted, the groups in the order of their first name."""
    groups: list[tuple[int, list[str]]] = [(0, []) for _ in range(n)]
    for name in sorted(weights, key=lambda k: (-weights[k], k)):
        lightest = min(range(n), key=lambda i: (groups[i][0], i))
        total, names = groups[lightest]
        groups[lightest] = (total + weights[name], names + [name])
    return sorted((sorted(names) for _, names in groups if names), key=lambda names: names[0])


def key_ranges(listing: Iterable[tuple[str, int]], total: int, n: int) -> list[tuple[str | None, str | None]]:
    """`n` ranges (after, last) of about equal weight of a listing in key order of (key, weight)
    whose weights add up to about `total`, kept one bound at a time: memory grows with `n`, not
    with the listing. The first range starts at the beginning and the last runs to the end of the
    key space, so a key written since the listing (or between two listings) falls in one range as
    it would in an unsplit backup."""
    if n <= 1:
        return [(None, None)]
    bounds: list[str] = []
    cumulative, target, last = 0, 1, None
    for key, weight in listing:
        cumulative += weight
        last = key
        while target < n and cumulative >= total * target / n:
            if not bounds or key > bounds[-1]:
                bounds.append(key)
            target += 1
    if bounds and bounds[-1] == last:
        bounds.pop()  # the last range would be empty
    edges: list[str | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def plan_elasticsearch(settings: Any, options: DumpOptions, asked: int) -> list[Part]:
    """The indices matching the run's pattern in parts of about equal store size, an index large
    against a part's share in slices of one point in time, a part each; [] for one part."""
    from archivist.sources.elasticsearch import cluster as es_cluster
    from archivist.sources.elasticsearch import datastreams
    from archivist.sources.elasticsearch import export as es_export
    from archivist.sources.elasticsearch.selection import matches

    es = es_cluster.client(settings)
    states = es_cluster.index_states(es, options.index_pattern)
    streams = sorted(datastreams.find(es, options.index_pattern).streams)  # a part takes each whole, by its name
    # A server with a sliced point in time can cut one index into parts: `split` parts even of fewer indices.
    has_pit = es_cluster.server_of(es).has_pit
    n = part_count(asked, MAX_PARTS if asked and has_pit else len(states) + len(streams), INDICES_PER_PART)
    if n <= 1 or not (states or streams):
        return []
    stats = es.indices.stats(
        index=options.index_pattern,
        metric="store",
        expand_wildcards="open",
        filter_path="indices.*.primaries.store.size_in_bytes",
    )
    sized = stats.get("indices") or {}
    weights = {
        i: int(((sized.get(i) or {}).get("primaries") or {}).get("store", {}).get("size_in_bytes", 0)) + 1
        for i in states
    }
    weights.update(dict.fromkeys(streams, 1))  # their backing indices' sizes are keyed by other names
    sliceable = [
        i for i, state in states.items() if has_pit and state == "open" and not matches(i, options.mappings_only)
    ]
    sliced = slicing.slice_counts(weights, n, sliceable, slicing.slice_min_bytes())
    whole = {i: w for i, w in weights.items() if i not in sliced}
    shares: list[dict[str, Any]] = [{"indices": names} for names in balanced(whole, n - sum(sliced.values()))]
    if len(shares) + sum(sliced.values()) <= 1:
        return []
    alive = slicing.keep_alive()
    try:
        for index, k in sorted(sliced.items()):
            shares += [{"slices": s} for s in slicing.open_shares(es, index, k, es_export.EXPORT_SLICES, alive)]
            log.info("index %s: %d parts, each reading slices of one point in time kept alive %s", index, k, alive)
    except BaseException:
        slicing.close_points_in_time(slicing.planned_points_in_time(shares))
        raise
    return [{"part": p, **share} for p, share in enumerate(shares)]


def plan_storage(settings: Any, asked: int) -> list[Part]:
    """The bucket's key space in ranges of about equal work; [] for one part. The bucket is listed
    twice, for its size and then for the bounds, so memory stays the same whatever its size."""
    from archivist.sources.storage import job as storage_job
    from archivist.transport import s3io

    s3 = s3io.client(settings)

    def listing() -> Iterator[tuple[str, int]]:
        for listed in storage_job.iter_objects(s3, settings.bucket):
            yield listed["Key"], listed["Size"] + OBJECT_COST_BYTES

    objects, total = 0, 0
    for _, weight in listing():
        objects += 1
        total += weight
    n = part_count(asked, objects, OBJECTS_PER_PART)
    if n <= 1:
        return []
    return [{"part": p, "after": a, "last": b} for p, (a, b) in enumerate(key_ranges(listing(), total, n))]


def part_options(options: DumpOptions, job: str, part: Part) -> DumpOptions:
    """The run's options narrowed to one part: its indices or its slices of one index (chosen from
    the run's own pattern, never listed in a URL), or its key range."""
    from dataclasses import replace

    if job == "elasticsearch":
        if "slices" in part:
            share = part["slices"]
            pit = PitSlices(
                share["index"], share["pit"], tuple(share["ids"]), share["of"], share["keep_alive"], share["total"]
            )
            return replace(options, indices=(share["index"],), pit_slices=pit, part=part["part"])
        return replace(options, indices=tuple(part["indices"]), part=part["part"])
    return replace(options, key_range=(part["after"], part["last"]), part=part["part"])


# --- joining ---------------------------------------------------------------------------------


Opener = Callable[[], IO[bytes]]


def join(results: list[JobResult], staging: S3Staging) -> tuple[list[JobResult], Callable[[str], IO[bytes]]]:
    """The results with each split job's parts made one, and how to open each artifact for the bundle
    (where its task staged it, or the slices of an index one after another)."""
    where: dict[str, Opener] = {}
    joined: list[JobResult] = []
    for job in dict.fromkeys(r.job for r in results):
        mine = [r for r in results if r.job == job]
        parts = sorted((r for r in mine if r.part is not None), key=lambda r: r.part or 0)
        for whole in (r for r in mine if r.part is None):
            joined.append(whole)
            where.update((a.path, _opener(staging, a.path)) for a in whole.artifacts)
        if parts:
            if len(parts) != len(mine):
                raise JobFailedError(f"job {job} came both whole and in parts: no bundle was made")
            joined.append(_join_parts(job, parts, staging, where))
    return joined, lambda path: where[path]()


def _opener(folder: S3Staging, path: str) -> Opener:
    return lambda: folder.open(path)


def _join_parts(job: str, parts: list[JobResult], staging: S3Staging, where: dict[str, Opener]) -> JobResult:
    if job == "elasticsearch":
        artifacts, counts = _join_elasticsearch(parts, staging, where)
    else:
        artifacts = _located(job, parts, staging, where, lambda a: True)
        counts = {k: sum(r.counts.get(k, 0) for r in parts) for k in ("objects", "bytes")}
    # the parts ran side by side: the job took as long as its slowest part
    seconds = max(r.time_seconds for r in parts)
    return JobResult(job, artifacts, counts, seconds, parts[0].server_version)


def _located(
    job: str, parts: list[JobResult], staging: S3Staging, where: dict[str, Opener], taken: Callable[[Artifact], bool]
) -> list[Artifact]:
    """The parts' artifacts that `taken` chooses, each noted in `where` as staged in its part's folder."""
    artifacts = []
    for result in parts:
        folder = staging.part(job, result.part or 0)
        for artifact in filter(taken, result.artifacts):
            if artifact.path in where:
                raise JobFailedError(f"{artifact.path} came from two parts of job {job}: no bundle was made")
            where[artifact.path] = _opener(folder, artifact.path)
            artifacts.append(artifact)
    return artifacts


def _is_definitions(artifact: Artifact) -> bool:
    return artifact.path.startswith("jobs.elasticsearch/indices-")


def _is_templates(artifact: Artifact) -> bool:
    return artifact.path.startswith("jobs.elasticsearch/templates-")


def _join_elasticsearch(
    parts: list[JobResult], staging: S3Staging, where: dict[str, Opener]
) -> tuple[list[Artifact], dict[str, Any]]:
    """The documents as the parts staged them (the slices of one index as its one ndjson), one
    templates-<id>.json (the cluster's, the same in every part: the first part's), and one
    indices-<id>.json with every part's definitions."""
    whole = [r for r in parts if not r.slices]
    documents = _located("elasticsearch", whole, staging, where, lambda a: not (_is_definitions(a) or _is_templates(a)))
    indices: dict[str, int] = {}
    for result in whole:
        indices.update(result.counts.get("indices", {}))
    sliced: dict[str, list[JobResult]] = {}
    for result in parts:
        if result.slices:
            sliced.setdefault(result.slices["index"], []).append(result)
    for index, slices in sorted(sliced.items()):
        artifact, opener, indices[index] = slicing.join_index(index, slices, staging)
        if artifact.path in where:
            raise JobFailedError(f"{artifact.path} came both whole and in slices: no bundle was made")
        where[artifact.path] = opener
        documents.append(artifact)
    templates = _located("elasticsearch", parts[:1], staging, where, _is_templates)
    definitions: dict[str, Any] = {}
    path = ""
    for result in parts:
        folder = staging.part("elasticsearch", result.part or 0)
        for artifact in filter(_is_definitions, result.artifacts):
            path = artifact.path
            with folder.open(path) as f:
                definitions.update(read_json(f, limits.ES_JSON_BYTES, path))
    body = orjson.dumps(dict(sorted(definitions.items())), option=orjson.OPT_INDENT_2)
    if len(body) > limits.ES_JSON_BYTES:
        raise ConfigurationError(
            f"{path} would be {len(body)} bytes, more than the {limits.human(limits.ES_JSON_BYTES)} a "
            "restore reads (docs/FORMAT.md): back up fewer indices per bundle with the param index_pattern"
        )
    with staging.writer(path, "application/json") as out:
        out.write(body)
    where[path] = _opener(staging, path)
    counts: dict[str, Any] = {"indices": dict(sorted(indices.items())), "documents": sum(indices.values())}
    streams = sorted({name for result in parts for name in result.counts.get(DATA_STREAMS_COUNT, [])})
    if streams:
        counts[DATA_STREAMS_COUNT] = streams
    return [*templates, Artifact(path, out.size, out.sha256), *documents], counts


def exact(name: str) -> str:
    """An index name as a pattern that matches it alone (fnmatch's special characters escaped)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def restore_part_options(options: RestoreOptions, job: str, part: Part) -> RestoreOptions | None:
    """The run's restore options narrowed to one part: its indices (within the run's own choice), or
    its archive; None when the run chose none of the part's indices."""
    from dataclasses import replace

    if job == "elasticsearch":
        from archivist.sources.elasticsearch.restore import matches_any

        chosen = [exact(i) for i in part["indices"] if matches_any(i, options.indices)]
        return replace(options, indices=chosen) if chosen else None
    return replace(options, archives=tuple(part["archives"]))


def restore_parts(job: str, members: list[str], asked: int) -> list[Part]:
    """A verified bundle's job in parts for a spread restore: storage by archive, Elasticsearch by
    index; [] for one part (the whole job in one task)."""
    if job == "storage":  # as the backup split it: one part per archive
        archives = sorted(p for p in members if p.startswith("jobs.storage/storage-") and p.endswith(".tgz"))
        return (
            [] if asked == 1 or len(archives) <= 1 else [{"part": p, "archives": [a]} for p, a in enumerate(archives)]
        )
    indices = sorted({i for p in members if (i := bundle.index_of_path(p))})
    n = part_count(asked, len(indices), INDICES_PER_PART)
    if n <= 1:
        return []
    groups = balanced(dict.fromkeys(indices, 1), n)
    return [{"part": p, "indices": names} for p, names in enumerate(groups)]


def joined_restore(job: str, parts: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """What the parts of a spread restore restored, as one task of the job would report it."""
    done = [p for p in parts or [] if p]
    if not done:
        return None
    if any(p.get("dry_run") for p in done):
        return {"dry_run": True, "parts": done}
    if job == "elasticsearch":
        indices: dict[str, int] = {}
        for got in done:
            indices.update(got.get("indices", {}))
        return {"indices": dict(sorted(indices.items())), "documents": sum(indices.values())}
    return {k: sum(p.get(k, 0) for p in done) for k in ("objects", "bytes")}
