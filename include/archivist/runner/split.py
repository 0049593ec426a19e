"""One job's work spread over several tasks: which part takes what, and the parts joined again.

The DAGs split Elasticsearch by index and storage by ranges of the key space (docs/FORMAT.md#9-split-jobs);
each part runs as a mapped task on whichever worker takes it and stages its artifacts in its own
folder of the run's staging prefix (`S3Staging.part`). `join` makes the parts one job again for the
bundle: Elasticsearch's bundle reads as if one task had made it, storage's holds one archive per
part (format version 3).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import IO, Any

import orjson

from archivist.errors import ConfigurationError, JobFailedError
from archivist.format import bundle, limits
from archivist.format.bundle import Artifact, JobResult
from archivist.format.members import read_json
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.transport.staging import S3Staging

SPLIT_JOBS = ("elasticsearch", "storage")
MAX_PARTS = 16
# With the param `split` at 0 (automatic): one part per this many indices, or objects. Below them a
# source stays one task, as a small stack's always was.
INDICES_PER_PART = 20
OBJECTS_PER_PART = 50_000
# What an object costs a storage part beside its bytes (the requests to list, get and tag it), in
# bytes: the key ranges balance bytes plus this per object.
OBJECT_COST_BYTES = 64 * 1024

Part = dict[
    str, Any
]  # one mapped task's share, through XCom: {"part": n, "indices": [...]} or {"part", "after", "last"}


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


def key_ranges(keys: list[str], weights: list[int], n: int) -> list[tuple[str | None, str | None]]:
    """`n` ranges (after, last) of the sorted `keys` of about equal weight; the first starts at the
    beginning and the last runs to the end of the key space, so a key written since the listing
    falls in one range as it would in an unsplit backup."""
    if n <= 1 or not keys:
        return [(None, None)]
    cumulative, total = [], 0
    for weight in weights:
        total += weight
        cumulative.append(total)
    bounds: list[str] = []
    for i in range(1, n):
        at = min(bisect.bisect_left(cumulative, total * i / n), len(keys) - 1)
        if not bounds or keys[at] > bounds[-1]:
            bounds.append(keys[at])
    if bounds and bounds[-1] == keys[-1]:
        bounds.pop()  # the last range would be empty
    edges: list[str | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def plan_elasticsearch(settings: Any, options: DumpOptions, asked: int) -> list[Part]:
    """The indices matching the run's pattern in parts of about equal store size; [] for one part."""
    from archivist.sources.elasticsearch import cluster as es_cluster

    es = es_cluster.client(settings)
    indices = list(es_cluster.index_states(es, options.index_pattern))
    n = part_count(asked, len(indices), INDICES_PER_PART)
    if n <= 1:
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
        for i in indices
    }
    return [{"part": p, "indices": names} for p, names in enumerate(balanced(weights, n))]


def plan_storage(settings: Any, asked: int) -> list[Part]:
    """The bucket's key space in ranges of about equal work; [] for one part."""
    from archivist.sources.storage import job as storage_job
    from archivist.transport import s3io

    keys, weights = [], []
    for listed in storage_job.iter_objects(s3io.client(settings), settings.bucket):
        keys.append(listed["Key"])
        weights.append(listed["Size"] + OBJECT_COST_BYTES)
    n = part_count(asked, len(keys), OBJECTS_PER_PART)
    if n <= 1:
        return []
    return [{"part": p, "after": a, "last": b} for p, (a, b) in enumerate(key_ranges(keys, weights, n))]


def part_options(options: DumpOptions, job: str, part: Part) -> DumpOptions:
    """The run's options narrowed to one part: its indices, or its key range."""
    from dataclasses import replace

    if job == "elasticsearch":
        # Elasticsearch names hold no comma: the list selects exactly these indices.
        return replace(options, index_pattern=",".join(part["indices"]), part=part["part"])
    return replace(options, key_range=(part["after"], part["last"]), part=part["part"])


# --- joining ---------------------------------------------------------------------------------


def join(results: list[JobResult], staging: S3Staging) -> tuple[list[JobResult], Callable[[str], IO[bytes]]]:
    """The results with each split job's parts made one, and how to open each artifact for the bundle
    (where its task staged it)."""
    where: dict[str, S3Staging] = {}
    joined: list[JobResult] = []
    for job in dict.fromkeys(r.job for r in results):
        mine = [r for r in results if r.job == job]
        parts = sorted((r for r in mine if r.part is not None), key=lambda r: r.part or 0)
        for whole in (r for r in mine if r.part is None):
            joined.append(whole)
            where.update((a.path, staging) for a in whole.artifacts)
        if parts:
            if len(parts) != len(mine):
                raise JobFailedError(f"job {job} came both whole and in parts: no bundle was made")
            joined.append(_join_parts(job, parts, staging, where))
    return joined, lambda path: where[path].open(path)


def _join_parts(job: str, parts: list[JobResult], staging: S3Staging, where: dict[str, S3Staging]) -> JobResult:
    if job == "elasticsearch":
        artifacts, counts = _join_elasticsearch(parts, staging, where)
    else:
        artifacts = _located(job, parts, staging, where, lambda a: True)
        counts = {k: sum(r.counts.get(k, 0) for r in parts) for k in ("objects", "bytes")}
    # the parts ran side by side: the job took as long as its slowest part
    seconds = max(r.time_seconds for r in parts)
    return JobResult(job, artifacts, counts, seconds, parts[0].server_version)


def _located(
    job: str, parts: list[JobResult], staging: S3Staging, where: dict[str, S3Staging], taken: Callable[[Artifact], bool]
) -> list[Artifact]:
    """The parts' artifacts that `taken` chooses, each noted in `where` as staged in its part's folder."""
    artifacts = []
    for result in parts:
        folder = staging.part(job, result.part or 0)
        for artifact in filter(taken, result.artifacts):
            if artifact.path in where:
                raise JobFailedError(f"{artifact.path} came from two parts of job {job}: no bundle was made")
            where[artifact.path] = folder
            artifacts.append(artifact)
    return artifacts


def _is_definitions(artifact: Artifact) -> bool:
    return artifact.path.startswith("jobs.elasticsearch/indices-")


def _is_templates(artifact: Artifact) -> bool:
    return artifact.path.startswith("jobs.elasticsearch/templates-")


def _join_elasticsearch(
    parts: list[JobResult], staging: S3Staging, where: dict[str, S3Staging]
) -> tuple[list[Artifact], dict[str, Any]]:
    """The documents as the parts staged them, one templates-<id>.json (the cluster's, the same in
    every part: the first part's), and one indices-<id>.json with every part's definitions."""
    documents = _located("elasticsearch", parts, staging, where, lambda a: not (_is_definitions(a) or _is_templates(a)))
    templates = _located("elasticsearch", parts[:1], staging, where, _is_templates)
    definitions: dict[str, Any] = {}
    path = ""
    for result in parts:
        folder = staging.part("elasticsearch", result.part or 0)
        for artifact in filter(_is_definitions, result.artifacts):
            path = artifact.path
            with folder.open(path) as f:
                definitions.update(read_json(f, limits.ES_JSON_BYTES, path))
    body = orjson.dumps(definitions, option=orjson.OPT_INDENT_2)
    if len(body) > limits.ES_JSON_BYTES:
        raise ConfigurationError(
            f"{path} would be {len(body)} bytes, more than the {limits.human(limits.ES_JSON_BYTES)} a "
            "restore reads (docs/FORMAT.md): back up fewer indices per bundle with the param index_pattern"
        )
    with staging.writer(path, "application/json") as out:
        out.write(body)
    where[path] = staging
    indices: dict[str, int] = {}
    for result in parts:
        indices.update(result.counts.get("indices", {}))
    counts = {"indices": dict(sorted(indices.items())), "documents": sum(indices.values())}
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
