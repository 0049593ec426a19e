"""A restore from start to finish: locate, verify, restore each job, report.

Nothing touches a target before the whole bundle has been verified. Each
job then reads only its own members, by byte range through the bundle's seek
index (or, for a bundle without one, by streaming it again), so jobs can run
on different machines and memory stays bounded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

import orjson

from archivist import config
from archivist.format import bundle
from archivist.format import bundle_index
from archivist.sources.postgres import dump_plan
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import restore as es_restore
from archivist.sources.elasticsearch import names as es_names
from archivist.sources.elasticsearch import targets as es_targets
from archivist.format import limits
from archivist.sources.postgres import job as postgres
from archivist.sources.storage import job as storage
from archivist.format.bundle import META, VerifyReport
from archivist.format.bundle_index import BundleSource, CheckedReader
from archivist.errors import (ArchivistError, ConfigurationError, JobFailedError, TargetNotEmptyError,
                              VerificationError, elasticsearch_where, failures_named)

log = logging.getLogger(__name__)

MODES = ("empty", "replace")
# One wording of what each mode does, for the DAG's params, the command's help and the Backups page.
MODE_HELP = ("'empty' refuses any target that already holds data, naming it. 'replace' first drops exactly "
             "what the bundle recreates: the PostgreSQL schemas its dump creates, with everything in them, "
             "and in schema public only the tables, views, sequences, types and functions the dump creates "
             "there (public itself is kept); the Elasticsearch indices, templates and aliases the bundle "
             "holds, by exact name; and it overwrites the objects the bundle holds. Nothing else is touched, "
             "all in one transaction for PostgreSQL.")
UNCHECKED_HELP = ("Restore a bundle without checksums (the original tool's format). Nothing in such a bundle "
                  "can be verified: a damaged or altered one restores as it is. Off by default.")
Opener = Callable[[], IO[bytes]]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigurationError(f"unknown restore mode {mode!r}: choose 'empty' (the default) or 'replace'")
    return mode


def verify(open_bundle: Opener, allow_unchecked: bool = False) -> VerifyReport:
    """Streams the bundle once and checks it; logs any warning (for a bundle without checksums).

    When the bundle has a seek index, its ranges are read from the same bytes as a restore job
    will read them, and must give the very files the front-to-back reading checked. Later reads
    of `open_bundle` are pinned to the object this one read."""
    ranges = open_bundle.ranges() if isinstance(open_bundle, BundleSource) else None
    stream = open_bundle()
    tee = bundle_index.RangeTee(stream, ranges) if ranges else None
    try:
        report = bundle.verify(tee or stream, allow_unchecked)
        if tee is not None:
            _same_files(report, tee.result(), tee.index_block)
        elif report.index and isinstance(open_bundle, BundleSource):  # a plain stream never seeks
            raise VerificationError("the bundle's seek index is not at its end, where readers look for it: refused")
    finally:
        getattr(tee or stream, "close", lambda: None)()
    if isinstance(open_bundle, BundleSource):
        open_bundle.checksums = report.meta.get("artifacts")
    check_elasticsearch_names(open_bundle, report)
    for warning in report.warnings:
        log.warning(warning)
    log.info("bundle verified: %d artifacts, jobs %s, format_version %s", len(report.members),
             ", ".join(report.jobs), report.meta.get("format_version", "none (original tool)"))
    return report


def check_elasticsearch_names(open_bundle: Opener, report: VerifyReport) -> None:
    """Refuses a bundle whose index, alias or template names break Elasticsearch's rules or do
    not agree with its members: such a name could reach indices the bundle does not hold."""
    if "elasticsearch" not in report.jobs:
        return
    templates, definitions, _ = _es_metadata(open_bundle)
    counts = (report.meta.get("counts") or {}).get(bundle.JOB_DIRS["elasticsearch"]) \
        if isinstance(report.meta.get("counts"), dict) else None
    counted = counts.get("indices") if isinstance(counts, dict) else None
    members = [index for path in report.members if (index := bundle.index_of_path(path))]
    _, problems = es_names.check_bundle(members, counted, definitions, templates)
    if problems:
        raise VerificationError(_names_refused(problems))


def _names_refused(problems: list[str]) -> str:
    shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    return f"the bundle's Elasticsearch names cannot be restored safely: {shown}"


def _same_files(report: VerifyReport, ranged: dict[str, tuple[int, str]], index_block: bytes | None) -> None:
    """The seek index must be the one after the tar's end, and reading by its ranges must give
    every file of the bundle exactly as reading it front to back did."""
    if index_block != report.index:
        raise VerificationError("the seek index at the end of the bundle is not the one after its tar: refused")
    linear = {path: (a.size, a.sha256) for path, a in report.members.items()}
    if report.meta_member is not None:
        linear[META] = (report.meta_member.size, report.meta_member.sha256)
    if ranged != linear:
        differ = sorted(p for p in set(ranged) | set(linear) if ranged.get(p) != linear.get(p))
        raise VerificationError(
            f"the bundle's seek index leads to other bytes than its tar holds ({', '.join(differ[:5])}): refused"
        )


def summary(report: VerifyReport, key: str, pin: str | None = None) -> dict[str, Any]:
    """The small facts of a verified bundle that later tasks need (safe for XCom): `pin` is the
    ETag every later read of the bundle must match."""
    return {"key": key, "etag": pin, "jobs": report.jobs, "checksummed": report.checksummed,
            "format_version": report.meta.get("format_version", 0), "counts": report.meta.get("counts", {}),
            "warnings": report.warnings}


def bundle_indices(report: VerifyReport) -> list[str]:
    """The indices whose documents the bundle holds."""
    return sorted({i for p in report.members if (i := bundle.index_of_path(p))})


def refuse_non_empty(report: VerifyReport, jobs: tuple[str, ...], settings: dict[str, Any],
                     patterns: list[str] | None = None, open_bundle: Opener | None = None) -> list[str]:
    """In `empty` mode, checks every selected target before any is written, so that one
    target holding data stops the whole restore instead of leaving it half done.
    Returns the targets that hold data (empty when the restore may go ahead). With
    `open_bundle`, Elasticsearch's templates and aliases of the bundle's names are checked too
    (the Elasticsearch job checks them again before it writes)."""
    found = []
    if "postgres" in jobs and "postgres" in report.jobs:
        tables = postgres.user_tables(settings["postgres"])
        if tables:
            found.append(f"database '{settings['postgres'].dbname}' holds {len(tables)} table(s)")
    if "elasticsearch" in jobs and "elasticsearch" in report.jobs:
        es_cluster.check(settings["elasticsearch"], quick=True)  # a refused login names what to fix
        es = es_cluster.client(settings["elasticsearch"])
        names = es_names.BundleNames(indices=bundle_indices(report))
        if open_bundle is not None:
            templates, definitions, _ = _es_metadata(open_bundle)
            names, _ = es_names.collect(names.indices, definitions, templates)
        wanted = [i for i in names.indices if es_restore.matches_any(i, patterns)]
        found += es_targets.refusals(es, names, wanted, "empty")[0]
    if "storage" in jobs and "storage" in report.jobs:
        target = settings["storage"]
        if not storage.bucket_is_empty(storage.s3io.client(target), target.bucket):
            found.append(f"bucket '{target.bucket}' holds objects")
    return found


def require_empty(found: list[str]) -> None:
    if found:
        raise TargetNotEmptyError(
            "restore refused, nothing was written: " + "; ".join(found)
            + ". Restore with mode 'replace' to drop and recreate what the bundle contains, or empty them first"
        )


def _member(open_bundle: Opener, wanted: Callable[[str], bool], checked: bool = True):
    """Yields (path, file) for each member `wanted` selects: read from its own byte range when
    the bundle has a seek index, else by streaming the bundle once. With `checked`, each file is
    hashed as it is read and must match meta.json's checksums (see CheckedReader)."""
    checksums = _checksums(open_bundle) if checked else None
    for path, fileobj in _unchecked_members(open_bundle, wanted):
        want = (checksums or {}).get(path)
        if path == META:  # not in its own list; pinned to the object verify read
            yield path, fileobj
            continue
        if checksums is not None and want is None:
            raise VerificationError(f"{path} is not listed in the bundle's meta.json")
        yield path, CheckedReader(fileobj, path, want["size"], want["sha256"]) if want else fileobj


def _unchecked_members(open_bundle: Opener, wanted: Callable[[str], bool]):
    indexed = bundle_index.iter_indexed(open_bundle, wanted)
    if indexed is not None:
        yield from indexed
        return
    stream = open_bundle()
    try:
        for path, _info, fileobj in bundle.iter_members(stream):
            if wanted(path):
                yield path, fileobj
    finally:
        getattr(stream, "close", lambda: None)()


def _checksums(open_bundle: Opener) -> dict[str, Any] | None:
    """meta.json's `artifacts` (None for a bundle without checksums), read from the bundle once."""
    known = getattr(open_bundle, "checksums", None)
    if known is not None:
        return known
    for _, fileobj in _unchecked_members(open_bundle, lambda p: p == META):
        data = fileobj.read(bundle.MAX_META_BYTES + 1)
        if len(data) > bundle.MAX_META_BYTES:
            raise VerificationError(f"meta.json is over {bundle.MAX_META_BYTES} bytes: not a bundle's meta.json")
        try:
            known = orjson.loads(data).get("artifacts")
        except (orjson.JSONDecodeError, AttributeError):
            raise VerificationError("meta.json is not a JSON object") from None
        break
    if isinstance(open_bundle, BundleSource):
        open_bundle.checksums = known
    return known


def _finish(fileobj: IO[bytes]) -> None:
    """Reads what the job left of a member, so its checksum is checked in full."""
    if isinstance(fileobj, CheckedReader):
        fileobj.finish()


def _restore_postgres(open_bundle: Opener, settings: config.PostgresSettings, mode: str = "empty",
                     dry_run: bool = False) -> dict[str, Any]:
    check_mode(mode)
    is_dump = lambda p: p.startswith("jobs.postgres/") and p.endswith(".sql")  # noqa: E731
    plan = None
    if mode == "replace" or dry_run:  # one extra streaming pass to learn what the dump recreates
        for _, sql in _member(open_bundle, is_dump):
            plan = dump_plan.scan(sql)
            _finish(sql)
            break
    for path, sql in _member(open_bundle, is_dump):
        if dry_run:
            what = plan.describe() if plan else "nothing"
            log.info("dry run: would restore %s into database %s; replace mode would drop %s", path,
                     settings.dbname, what)
            return {"dry_run": True, "artifact": path, "schemas": plan.schemas if plan else [],
                    "replace_drops": what}
        log.info("restoring %s into database %s (%s mode)", path, settings.dbname, mode)
        return postgres.restore(settings, sql, mode, plan=plan)
    raise VerificationError("the bundle has no PostgreSQL dump (jobs.postgres/postgres-<id>.sql)")


def _restore_storage(open_bundle: Opener, settings: config.S3Settings, mode: str = "empty",
                    dry_run: bool = False) -> dict[str, Any]:
    check_mode(mode)
    for path, tgz in _member(open_bundle, lambda p: p.startswith("jobs.storage/storage-") and p.endswith(".tgz")):
        if dry_run:
            log.info("dry run: would restore %s into bucket %s", path, settings.bucket)
            return {"dry_run": True, "artifact": path}
        log.info("restoring %s into bucket %s (%s mode)", path, settings.bucket, mode)
        restored = storage.restore(settings, tgz, mode)
        _finish(tgz)
        return restored
    raise VerificationError("the bundle has no storage archive (jobs.storage/storage-<id>.tgz)")


def _json(fileobj: IO[bytes], cap: int, path: str) -> Any:
    """A JSON member of at most `cap` bytes, parsed."""
    try:
        return orjson.loads(limits.read_at_most(fileobj, cap, path))
    except orjson.JSONDecodeError as exc:
        raise VerificationError(f"{path} is not valid JSON: {exc}") from None


def _es_metadata(open_bundle: Opener) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Templates, index definitions and the indices with documents, read once per pinned bundle
    (verify, the empty-mode check and the job all need them)."""
    known = getattr(open_bundle, "es_metadata", None)
    if known is None:
        known = _read_es_metadata(open_bundle)
        if isinstance(open_bundle, BundleSource):
            open_bundle.es_metadata = known
    return known


def _read_es_metadata(open_bundle: Opener) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Templates, index definitions and the indices with documents, in one early-stopping pass."""
    templates: dict[str, Any] = {}
    definitions: dict[str, Any] | None = None
    indices: list[str] = []
    for path, fileobj in _member(open_bundle, lambda p: p.startswith("jobs.elasticsearch/") or p == META):
        name = os.path.basename(path)
        if path == META:
            counted = _json(fileobj, limits.META_BYTES, path).get("counts", {}).get("jobs.elasticsearch", {})
            if "indices" in counted:
                indices = sorted(counted["indices"])
        elif name.startswith("templates-") and name.endswith(".json"):
            templates = _json(fileobj, limits.ES_JSON_BYTES, path)
        elif name.startswith("indices-") and name.endswith(".json"):
            definitions = _json(fileobj, limits.ES_JSON_BYTES, path)
        elif (index := bundle.index_of_path(path)) and index not in indices:
            indices.append(index)
        if templates and definitions is not None and indices:
            break  # our bundles put these before the documents: no need to read on
    return templates, definitions or {}, indices


def _finish_index(es: Any, index: str, definition: dict[str, Any] | None, sent: int) -> int:
    """Puts back the loaded index's own settings and aliases, and counts what it holds."""
    es_restore.finish_index(es, index, definition)
    found = es_cluster.count(es, index)
    if found != sent:
        raise JobFailedError(f"index {index}: sent {sent} documents but Elasticsearch holds {found}")
    return found


def _restore_elasticsearch(open_bundle: Opener, settings: config.ElasticsearchSettings, mode: str = "empty",
                          patterns: list[str] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Templates, then each index with its settings and mappings, its documents, its aliases."""
    check_mode(mode)
    templates, definitions, indices = _es_metadata(open_bundle)
    names, problems = es_names.collect(indices, definitions, templates)
    if problems:  # verify refused these already; checked again where they are used
        raise VerificationError(_names_refused(problems))
    chosen = [i for i in indices if es_restore.matches_any(i, patterns)]
    if patterns and not chosen:
        raise ConfigurationError(f"no index in the bundle matches {', '.join(patterns)}; it holds {', '.join(indices)}")
    if dry_run:
        log.info("dry run: would restore templates and indices %s", ", ".join(chosen))
        return {"dry_run": True, "indices": chosen}
    es_cluster.check(settings)
    es, raw = es_cluster.client(settings), es_cluster.raw_client(settings)
    refused, cluster = es_targets.refusals(es, names, chosen, mode)
    if refused:
        hint = ". Restore with mode 'replace' to drop and recreate what the bundle holds, or remove them first" \
            if mode == "empty" else ""
        raise TargetNotEmptyError(f"restore refused, nothing was written to {elasticsearch_where(settings)}: "
                                  + "; ".join(refused) + hint)
    es_targets.delete_indices(es, [i for i in chosen if i in cluster.indices])
    es_restore.put_templates(es, templates)
    loaded: dict[str, int] = {}
    # Each index is finished (settings put back, flushed, counted) while the next one loads: the
    # server would otherwise sit idle through every flush.
    with ThreadPoolExecutor(1, thread_name_prefix="finish") as finisher:
        finishing: dict[str, Future] = {}
        for path, lines in _member(open_bundle, lambda p: bundle.index_of_path(p) in chosen):
            index = bundle.index_of_path(path)
            es_restore.create_index(es, index, definitions.get(index))
            sent = es_restore.load_documents(raw, index, lines)
            finishing[index] = finisher.submit(_finish_index, es, index, definitions.get(index), sent)
        for index, finished in finishing.items():
            loaded[index] = finished.result()
    for index in chosen:  # an index with no documents has no ndjson worth streaming, but exists
        if index not in loaded and index in definitions:
            es_restore.create_index(es, index, definitions[index])
            es_restore.finish_index(es, index, definitions[index])
            loaded[index] = 0
    return {"indices": loaded, "documents": sum(loaded.values())}


def restore_postgres(open_bundle: Opener, settings: config.PostgresSettings, mode: str = "empty",
                     dry_run: bool = False) -> dict[str, Any]:
    """Restores the bundle's SQL dump with psql, in one transaction."""
    with failures_named("postgres", settings):
        return _restore_postgres(open_bundle, settings, mode, dry_run)


def restore_storage(open_bundle: Opener, settings: config.S3Settings, mode: str = "empty",
                    dry_run: bool = False) -> dict[str, Any]:
    """Puts every object of the bundle's storage archive back into the bucket."""
    with failures_named("storage", settings):
        return _restore_storage(open_bundle, settings, mode, dry_run)


def restore_elasticsearch(open_bundle: Opener, settings: config.ElasticsearchSettings, mode: str = "empty",
                          patterns: list[str] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Templates, then each index with its settings and mappings, its documents, its aliases."""
    with failures_named("elasticsearch", settings):
        return _restore_elasticsearch(open_bundle, settings, mode, patterns, dry_run)


def compare(expected_counts: dict[str, Any], restored: dict[str, dict[str, Any]],
            patterns: list[str] | None = None) -> list[str]:
    """Differences between meta.json's counts and what each job restored; empty when all match."""
    problems = []
    for job, got in restored.items():
        if not got or got.get("dry_run"):
            continue
        want = expected_counts.get(bundle.JOB_DIRS[job])
        if not want:
            continue  # a bundle of the original tool carries no counts
        if job == "postgres" and got.get("tables") != want.get("tables"):
            problems.append(f"postgres: {got.get('tables')} tables restored, bundle has {want.get('tables')}")
        if job == "storage" and (got.get("objects"), got.get("bytes")) != (want.get("objects"), want.get("bytes")):
            problems.append(f"storage: {got.get('objects')} objects / {got.get('bytes')} bytes restored, "
                            f"bundle has {want.get('objects')} / {want.get('bytes')}")
        if job == "elasticsearch":
            for index, docs in want.get("indices", {}).items():
                if es_restore.matches_any(index, patterns) and got.get("indices", {}).get(index) != docs:
                    problems.append(f"elasticsearch: index {index} has {got.get('indices', {}).get(index)} "
                                    f"documents restored, bundle has {docs}")
    return problems


_LOADERS = {"postgres": config.load_postgres, "elasticsearch": config.load_elasticsearch,
            "storage": config.load_storage}


def load_settings(job: str) -> Any:
    """The settings of the target `job` restores into."""
    return _LOADERS[job]()


def _restore_job(job: str, open_bundle: Opener, settings: Any, mode: str, patterns: list[str] | None,
                 dry_run: bool) -> dict[str, Any]:
    if job == "postgres":
        return restore_postgres(open_bundle, settings, mode, dry_run)
    if job == "elasticsearch":
        return restore_elasticsearch(open_bundle, settings, mode, patterns, dry_run)
    return restore_storage(open_bundle, settings, mode, dry_run)


def run_restore(open_bundle: Opener, key: str, jobs: str | list[str] | tuple[str, ...] | None = None,
                mode: str = "empty", patterns: list[str] | None = None, dry_run: bool = False,
                settings: dict[str, Any] | None = None, allow_unchecked: bool = False) -> dict[str, Any]:
    """A whole restore in one process: verify, the selected jobs in parallel threads, then compare.

    The settings of the selected jobs are loaded first, so a bad configuration fails before the
    bundle is read. Jobs the bundle does not hold are skipped. Returns the verified summary with
    `restored` (each job's result, None when skipped) and `problems` (differences from meta.json's
    counts; empty when the restore matches the bundle).
    """
    check_mode(mode)
    selected = config.parse_jobs(jobs)
    settings = dict(settings or {})
    for job in selected:
        if job not in settings:
            settings[job] = _LOADERS[job]()
    report = verify(open_bundle, allow_unchecked)
    present = [job for job in selected if job in report.jobs]
    if mode == "empty":
        found = refuse_non_empty(report, tuple(present), settings, patterns, open_bundle)
        if dry_run:
            for target in found:
                log.warning("dry run: an empty-mode restore would be refused: %s", target)
        else:
            require_empty(found)
    for job in selected:
        if job not in present:
            log.warning("the bundle holds no %s backup; skipped", job)
    restored: dict[str, dict[str, Any] | None] = {job: None for job in selected}
    failures: list[tuple[str, Exception]] = []
    if present:
        with ThreadPoolExecutor(max_workers=len(present), thread_name_prefix="restore") as pool:
            futures = {job: pool.submit(_restore_job, job, open_bundle, settings[job], mode, patterns, dry_run)
                       for job in present}
            for job, future in futures.items():
                try:
                    restored[job] = future.result()
                except Exception as exc:  # keep every job's message, not just the first
                    failures.append((job, exc))
    if failures:
        message = "; ".join(f"{job}: {exc if isinstance(exc, ArchivistError) else f'{type(exc).__name__}: {exc}'}"
                            for job, exc in failures)
        codes = {getattr(exc, "exit_code", JobFailedError.exit_code) for _, exc in failures}
        error = JobFailedError(f"restore of {key} failed: {message}")
        error.exit_code = codes.pop() if len(codes) == 1 else JobFailedError.exit_code
        raise error
    result = summary(report, key, getattr(open_bundle, "pin", None))
    result.update(restored=restored, dry_run=dry_run, mode=mode,
                  problems=compare(report.meta.get("counts", {}), restored, patterns))
    return result
