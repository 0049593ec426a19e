"""A backup from start to finish: run the jobs into staging, bundle, upload, rotate.

The DAG calls these steps as separate tasks; the `archivist` command calls
`run_backup`, which runs the same steps in one process with the jobs in threads.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import IO, Any, cast

from archivist import config
from archivist.encryption_settings import EncryptionSettings
from archivist.errors import JobFailedError
from archivist.format import bundle
from archivist.format.bundle import BackupKey, JobResult
from archivist.format.encryption import EncryptingWriter
from archivist.retention import RetentionPolicy
from archivist.runner import checks, slicing, split
from archivist.runner.failures import failures_named
from archivist.runner.jobs import failed, run_parallel
from archivist.sources import registry
from archivist.sources.base import DumpOptions
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.operation_lock import OperationLock
from archivist.transport.staging import LocalStaging, S3Staging, Staging

log = logging.getLogger(__name__)


def run_job(
    job: str,
    key: BackupKey,
    staging: Staging,
    settings: Any,
    options: DumpOptions = DumpOptions(),
    lock: OperationLock | None = None,
) -> JobResult:
    """Runs one job (postgres, elasticsearch or storage) into `staging`; with `lock`, which this
    DAG run holds, it shows the run alive while the job runs. One part of a split job
    (options.part) stages into its own folder of `staging`, which must then be an S3Staging."""
    named = job if options.part is None else f"{job} part {options.part}"
    log.info("job %s of backup %s starting", named, key)
    target = staging if options.part is None else cast(S3Staging, staging).part(job, options.part)
    # the sweep leaves a live backup's staging alone
    with lock.alive() if lock else nullcontext(), failures_named(job, settings), staging.alive():
        result = registry.source(job).dump(settings, target, key.backup_id, options)
    result.part = options.part
    if options.pit_slices is not None:  # for the join, which checks the slices against each other
        result.slices = options.pit_slices.as_dict()
    log.info("job %s done in %.1fs: %s", named, result.time_seconds, result.counts)
    return result


def assemble(
    out,
    key: BackupKey,
    results: list[JobResult],
    open_artifact: Callable[[str], IO[bytes]],
    namespace: str = "",
    dag_id: str | None = None,
    run_id: str | None = None,
    recipients: list[Any] | None = None,
) -> dict[str, Any]:
    """Streams the bundle for `results` into `out`, each artifact read with `open_artifact`,
    encrypted to `recipients` when there are any; returns its meta.json."""
    meta = bundle.build_meta(key, results, dt.datetime.now(dt.UTC), namespace, dag_id, run_id, bool(recipients))
    artifacts = [a for r in results for a in r.artifacts]
    with EncryptingWriter(out, recipients) if recipients else nullcontext(out) as sealed:
        bundle.write_bundle(sealed, key, meta, artifacts, open_artifact)
    return meta


def load_recipients(settings: EncryptionSettings | None = None) -> list[Any] | None:
    """The age recipients backups encrypt to (parsed, so a bad key fails before any work), or None;
    from `settings`, else from the variables or the connection (config.load_encryption)."""
    settings = settings or config.load_encryption()
    return settings.recipient_keys() if settings.enabled else None


def upload(
    store: BackupStore,
    key: BackupKey,
    results: list[JobResult],
    namespace: str = "",
    dag_id: str | None = None,
    run_id: str | None = None,
    lock: OperationLock | None = None,
    encryption: EncryptionSettings | None = None,
) -> dict[str, Any]:
    """Builds the bundle from the staging prefix straight into the backup bucket, then clears
    staging. The parts of a split job are joined first (runner/split.py); the bundle is encrypted
    when the encryption settings (`encryption`, else the configured ones) name recipients."""
    recipients = load_recipients(encryption)
    started, staging = time.monotonic(), store.staging(key)
    object_key = store.object_key(key.object_key_for(bool(recipients)))
    with lock.alive() if lock else nullcontext(), staging.alive():
        joined, open_artifact = split.join(results, staging)
        with store.bundle_writer(key, bool(recipients)) as out:
            meta = assemble(out, key, joined, open_artifact, namespace, dag_id, run_id, recipients)
    slicing.close_points_in_time(slicing.result_points_in_time(results))
    staging.cleanup()  # after the lease stopped, so no refresh outlives it
    log.info("uploaded %s (%d bytes%s)", object_key, out.size, ", encrypted with age" if recipients else "")
    return {
        "key": key.name,
        "object": object_key,
        "encrypted": bool(recipients),
        "size": out.size,
        "stats": meta["stats"],
        "counts": meta["counts"],
        "time_seconds": round(time.monotonic() - started, 3),
    }


def load_job_settings(job: str) -> Any:
    return registry.source(job).load_settings()


def _run_parallel(jobs: tuple[str, ...], key: BackupKey, staging: Staging, options: DumpOptions) -> list[JobResult]:
    settings = {job: load_job_settings(job) for job in jobs}  # bad configuration fails before any work
    work = {job: partial(run_job, job, key, staging, settings[job], options) for job in jobs}
    results, failures = run_parallel(work, "job")
    if failures:
        error = failed("backup failed, no bundle was made", failures)
        error.exit_code = JobFailedError.exit_code
        raise error
    return [results[job] for job in jobs]


def _cleanup_after_failure(store: BackupStore, key: BackupKey) -> None:
    """Best effort: when the bucket itself is down this fails too, and the next
    run's sweep removes what is left; the original error is what the user needs."""
    try:
        store.abort_unfinished_bundle(key)
        store.staging(key).cleanup()
    except Exception as exc:
        log.warning("could not clean staging of %s now (%s); the next backup sweeps it", key, exc)


def run_backup(
    jobs: tuple[str, ...] = config.JOBS,
    keep: RetentionPolicy | int | None = None,
    options: DumpOptions = DumpOptions(),
    dry_run_rotation: bool = False,
) -> dict[str, Any]:
    """The `archivist backup` command: jobs in parallel, one bundle uploaded, then rotation by
    `keep` (a policy, or the newest N with the calendar rules of the BACKUPS_KEPT_* variables)."""
    checks.require(checks.run_checks(jobs, backups=True, keep=keep))  # fail in seconds, before any work
    policy = keep if isinstance(keep, RetentionPolicy) else config.load_retention(keep)
    store = BackupStore(config.load_backups())
    with store.lock().held("backup"):
        return _backup_held(store, jobs, policy, options, dry_run_rotation)


def _backup_held(
    store: BackupStore, jobs: tuple[str, ...], keep: RetentionPolicy, options: DumpOptions, dry_run_rotation: bool
) -> dict[str, Any]:
    store.sweep_stale_staging()
    key = BackupKey.new()
    staging = store.staging(key)
    try:
        results = _run_parallel(jobs, key, staging, options)
        summary = upload(store, key, results, config.load_namespace())
    except BaseException:
        _cleanup_after_failure(store, key)
        raise
    deleted = store.rotate(keep, protect={key.name}, dry_run=dry_run_rotation)
    summary["rotated"] = [b.key.name for b in deleted]
    return summary


def run_simple_backup(
    output: str | None = None, jobs: tuple[str, ...] = config.JOBS, options: DumpOptions = DumpOptions()
) -> dict[str, Any]:
    """The `archivist simple-backup` command: the bundle is left in a local file."""
    checks.require(checks.run_checks(jobs, backups=False))
    recipients = load_recipients()
    key = BackupKey.new()
    name = key.object_key_for(bool(recipients))
    output = output or os.path.join(os.getcwd(), name)
    if os.path.isdir(output):
        output = os.path.join(output, name)
    staging = LocalStaging(parent=os.path.dirname(os.path.abspath(output)))
    partial = None
    try:
        results = _run_parallel(jobs, key, staging, options)
        # Written under a temporary name and renamed: a failure never leaves a half bundle.
        fd, partial = tempfile.mkstemp(prefix=".partial-", suffix=".tgz", dir=os.path.dirname(os.path.abspath(output)))
        try:
            with os.fdopen(fd, "wb") as out:
                meta = assemble(out, key, results, staging.open, config.load_namespace(), recipients=recipients)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise JobFailedError(
                    f"the bundle ran out of local disk space writing {output}: free some "
                    "space there, or write the bundle elsewhere"
                ) from exc
            raise
        os.replace(partial, output)
        partial = None
    finally:
        staging.cleanup()
        if partial and os.path.exists(partial):
            os.unlink(partial)
    return {
        "key": key.name,
        "path": output,
        "encrypted": bool(recipients),
        "size": os.path.getsize(output),
        "stats": meta["stats"],
        "counts": meta["counts"],
    }
