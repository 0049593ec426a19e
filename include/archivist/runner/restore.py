"""A restore from start to finish: locate, verify, restore each job, report.

Nothing touches a target before the whole bundle has been verified. Each
job then reads only its own members, by byte range through the bundle's seek
index (or, for a bundle without one, by streaming it again), so jobs can run
on different machines and memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import Any

from archivist import config
from archivist.errors import TargetNotEmptyError, VerificationError
from archivist.format import bundle, bundle_index
from archivist.format.bundle import META, VerifyReport
from archivist.format.bundle_index import BundleSource
from archivist.format.members import BundleOpener
from archivist.modes import check_mode
from archivist.progress import Progress, ProgressReader
from archivist.runner.failures import failures_named
from archivist.runner.jobs import failed, run_parallel
from archivist.sources import registry
from archivist.sources.base import RestoreOptions
from archivist.transport.operation_lock import OperationLock

log = logging.getLogger(__name__)


def verify(open_bundle: BundleOpener, allow_unchecked: bool = False) -> VerifyReport:
    """Streams the bundle once and checks it; logs any warning (for a bundle without checksums).

    When the bundle has a seek index, it is inflated once, part by part where the index cuts it
    (`bundle_index.IndexedReading`), and each range must begin the very tar entry that the
    front-to-back reading of those bytes checked. Later reads of `open_bundle` are pinned to the
    object this one read."""
    ranges = open_bundle.ranges() if isinstance(open_bundle, BundleSource) else None
    stream = open_bundle()
    size = open_bundle.size if isinstance(open_bundle, BundleSource) else None
    progress = Progress("verify the bundle", total=size)
    counted = ProgressReader(stream, progress)
    indexed = bundle_index.IndexedReading(counted, ranges) if ranges else None
    try:
        report = bundle.verify(indexed or counted, allow_unchecked, inflated=indexed is not None)
        if indexed is not None:
            _ranges_hold_the_files(report, indexed.ranged, ranges or {})
        # A plain stream never seeks, and an encrypted bundle is read whole: only a seekable
        # bundle must have its index where readers look for it.
        elif report.index and isinstance(open_bundle, BundleSource) and not open_bundle.encrypted:
            raise VerificationError("the bundle's seek index is not at its end, where readers look for it: refused")
    finally:
        if indexed is not None:
            indexed.close()
        getattr(stream, "close", lambda: None)()
    progress.done()
    if isinstance(open_bundle, BundleSource):
        open_bundle.checksums = report.meta.get("artifacts")
    for job in report.jobs:
        registry.source(job).check_bundle(open_bundle, report)
    for warning in report.warnings:
        log.warning(warning)
    log.info(
        "bundle verified: %d artifacts, jobs %s, format_version %s",
        len(report.members),
        ", ".join(report.jobs),
        report.meta.get("format_version", "none (original tool)"),
    )
    return report


def _ranges_hold_the_files(
    report: VerifyReport,
    ranged: dict[str, tuple[int, int, tuple[str, int, int] | None]],
    ranges: dict[str, tuple[int, int, int]],
) -> None:
    """The seek index must be the one after the tar's end, its ranges must be the bundle's files,
    and each must begin, at that file's place in the tar, the same entry (name, size, where its
    bytes start) read on its own: a restore job reading a range then reads that file's bytes."""
    if bundle_index.parse_block(report.index) != ranges:
        raise VerificationError("the seek index at the end of the bundle is not the one after its tar: refused")
    sizes = {path: a.size for path, a in report.members.items()}
    if report.meta_member is not None:
        sizes[META] = report.meta_member.size
    differ = sorted(set(ranges) ^ set(report.places))
    for path in sorted(set(ranges) & set(report.places)):
        begins, length, entry = ranged[path]
        headers, data = report.places[path]
        if begins != headers or entry != (path, sizes[path], data - headers) or data + sizes[path] > begins + length:
            differ.append(path)
    if differ:
        raise VerificationError(
            f"the bundle's seek index leads to other bytes than its tar holds ({', '.join(differ[:5])}): refused"
        )


def summary(report: VerifyReport, key: str, pin: str | None = None) -> dict[str, Any]:
    """The small facts of a verified bundle that later tasks need (safe for XCom): `pin` is the
    ETag every later read of the bundle must match."""
    return {
        "key": key,
        "etag": pin,
        "jobs": report.jobs,
        "checksummed": report.checksummed,
        "format_version": report.meta.get("format_version", 0),
        "counts": report.meta.get("counts", {}),
        "warnings": report.warnings,
        # what a spread restore shares out (runner/split.restore_parts): the index files and archives
        "data_members": sorted(p for p in report.members if bundle.index_of_path(p) or is_archive(p)),
    }


def is_archive(path: str) -> bool:
    return path.startswith("jobs.storage/storage-") and path.endswith(".tgz")


def refuse_non_empty(
    report: VerifyReport,
    jobs: tuple[str, ...],
    settings: dict[str, Any],
    options: RestoreOptions = RestoreOptions(),
    open_bundle: BundleOpener | None = None,
) -> list[str]:
    """In `empty` mode, checks every selected target before any is written, so that one
    target holding data stops the whole restore instead of leaving it half done.
    Returns the targets that hold data (empty when the restore may go ahead)."""
    return [
        found
        for job in jobs
        if job in report.jobs
        for found in registry.source(job).occupied(settings[job], report, options, open_bundle)
    ]


def replaced(
    report: VerifyReport,
    jobs: tuple[str, ...],
    settings: dict[str, Any],
    options: RestoreOptions = RestoreOptions(),
    open_bundle: BundleOpener | None = None,
) -> dict[str, list[str]]:
    """What a `replace` restore of `jobs` would drop or overwrite in each target, read from the
    targets as each job decides it; a job whose target would refuse the restore raises here,
    before anything is written."""
    return {
        job: registry.source(job).replaced(settings[job], report, options, open_bundle)
        for job in jobs
        if job in report.jobs
    }


def require_empty(found: list[str]) -> None:
    if found:
        raise TargetNotEmptyError(
            "restore refused, nothing was written: "
            + "; ".join(found)
            + ". Restore with mode 'replace' to drop and recreate what the bundle contains, or empty them first"
        )


def restore_job(
    job: str,
    open_bundle: BundleOpener,
    settings: Any,
    mode: str = "empty",
    options: RestoreOptions = RestoreOptions(),
    dry_run: bool = False,
    lock: OperationLock | None = None,
) -> dict[str, Any]:
    """Restores the bundle's members of one job into its target; with `lock`, which this DAG
    run holds, it shows the run alive while the job runs."""
    check_mode(mode)
    registry.source(job).check_options(options)
    with lock.alive() if lock else nullcontext(), failures_named(job, settings):
        return registry.source(job).restore(open_bundle, settings, mode, options, dry_run)


def compare(
    expected_counts: dict[str, Any],
    restored: dict[str, dict[str, Any] | None],
    options: RestoreOptions = RestoreOptions(),
) -> list[str]:
    """Differences between meta.json's counts and what each job restored; empty when all match."""
    problems = []
    for job, got in restored.items():
        want = expected_counts.get(bundle.JOB_DIRS[job])
        if got and not got.get("dry_run") and want:  # a bundle of the original tool carries no counts
            problems += registry.source(job).count_problems(want, got, options)
    return problems


def check_options(options: RestoreOptions, jobs: tuple[str, ...]) -> None:
    """Refuses the target names of `options` that a selected job's server would not take, before
    the bundle is read; each error names the option."""
    for job in jobs:
        registry.source(job).check_options(options)


def load_settings(job: str, conn_id: str | None = None) -> Any:
    """The settings of the target `job` restores into: its default connection, or `conn_id`."""
    return registry.source(job).load_settings(conn_id)


def run_restore(
    open_bundle: BundleOpener,
    key: str,
    jobs: str | list[str] | tuple[str, ...] | None = None,
    mode: str = "empty",
    options: RestoreOptions = RestoreOptions(),
    dry_run: bool = False,
    settings: dict[str, Any] | None = None,
    allow_unchecked: bool = False,
    confirm: Callable[[dict[str, list[str]]], None] | None = None,
    lock: OperationLock | None = None,
) -> dict[str, Any]:
    """A whole restore in one process: verify, the selected jobs in parallel threads, then compare.
    With `lock` (the backup bucket's), a restore that writes holds it from before verify to the end.

    In `replace` mode (not a dry run), `confirm` is given what each job would drop (see
    `replaced`) after the bundle is verified and before any target is written; it raises to stop.

    The settings of the selected jobs are loaded first, so a bad configuration fails before the
    bundle is read. Jobs the bundle does not hold are skipped. Returns the verified summary with
    `restored` (each job's result, None when skipped) and `problems` (differences from meta.json's
    counts; empty when the restore matches the bundle).
    """
    check_mode(mode)
    selected = config.parse_jobs(jobs)
    check_options(options, selected)
    settings = dict(settings or {})
    for job in selected:
        if job not in settings:
            settings[job] = load_settings(job)
    with lock.held("restore") if lock and not dry_run else nullcontext():
        return _restore_held(open_bundle, key, selected, mode, options, dry_run, settings, allow_unchecked, confirm)


def _restore_held(
    open_bundle: BundleOpener,
    key: str,
    selected: tuple[str, ...],
    mode: str,
    options: RestoreOptions,
    dry_run: bool,
    settings: dict[str, Any],
    allow_unchecked: bool,
    confirm: Callable[[dict[str, list[str]]], None] | None,
) -> dict[str, Any]:
    report = verify(open_bundle, allow_unchecked)
    present = [job for job in selected if job in report.jobs]
    if mode == "empty":
        found = refuse_non_empty(report, tuple(present), settings, options, open_bundle)
        if dry_run:
            for target in found:
                log.warning("dry run: an empty-mode restore would be refused: %s", target)
        else:
            require_empty(found)
    elif confirm is not None and not dry_run:
        confirm(replaced(report, tuple(present), settings, options, open_bundle))
    for job in selected:
        if job not in present:
            log.warning("the bundle holds no %s backup; skipped", job)
    work = {job: partial(restore_job, job, open_bundle, settings[job], mode, options, dry_run) for job in present}
    done, failures = run_parallel(work, "restore")
    if failures:
        raise failed(f"restore of {key} failed", failures)
    restored: dict[str, dict[str, Any] | None] = {job: done.get(job) for job in selected}
    result = summary(report, key, getattr(open_bundle, "pin", None))
    result.update(
        restored=restored,
        dry_run=dry_run,
        mode=mode,
        problems=compare(report.meta.get("counts", {}), restored, options),
    )
    return result
