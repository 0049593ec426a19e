"""The commands that read bundles: verify, restore, simple-restore."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import click

from archivist import config
from archivist.cli import confirm
from archivist.cli.elsewhere import Elsewhere
from archivist.cli.group import backup_store, cli, output_options, restore_options, showing, split
from archivist.cli.output import Output, format_counts, human_size
from archivist.errors import BackupNotFoundError, JobFailedError, VerificationError
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import restore
from archivist.sources.base import RestoreOptions
from archivist.transport.backup_bucket import BackupStore


def _locate(out: Output, store: BackupStore, text: str) -> tuple[str, Callable[[], Any]]:
    found = store.locate(text)
    out.say(f"bundle   {found.key} ({human_size(found.size)}) in bucket '{store.bucket}'")
    return found.key.name, store.bundle_source(found.key)


def _local(path: str) -> tuple[str, Callable[[], Any]]:
    if not os.path.isfile(path):
        raise BackupNotFoundError(f"no bundle file at {path}")
    try:
        name = BackupKey.parse(os.path.basename(path)).name
    except BackupNotFoundError:
        name = os.path.basename(path)  # a renamed file is fine: its folder inside names the backup
    return name, BundleSource.file(path)


@cli.command()
@click.argument("target", metavar="KEY|PATH")
@click.option(
    "--allow-unchecked",
    is_flag=True,
    help="Accept a bundle without checksums (the original tool's format): only its structure is checked.",
)
@output_options
def verify(target: str, allow_unchecked: bool, out: Output) -> None:
    """Checks a bundle (a backup key, 'latest', or a local file) against its meta.json."""
    if os.path.isfile(target):
        name, opener = _local(target)
    elif os.sep in target or target.endswith(".tgz") and not BackupKey.is_bundle_object(os.path.basename(target)):
        raise BackupNotFoundError(f"no bundle file at {target}")
    else:
        name, opener = _locate(out, backup_store(), target)
    try:
        with showing(out):
            report = restore.verify(opener, allow_unchecked)
    except VerificationError as exc:
        raise out.failed({"key": name, "ok": False, "problems": [str(exc)]}, exc) from exc
    out.document(
        {
            "key": name,
            "ok": True,
            "problems": [],
            "format_version": report.meta.get("format_version", 0),
            "checksummed": report.checksummed,
            "jobs": report.jobs,
            "members": len(report.members),
            "warnings": report.warnings,
        }
    )
    out.say(
        f"verified {name}: {len(report.members)} members, jobs {', '.join(report.jobs) or 'none'}, "
        f"format_version {report.meta.get('format_version', '0 (original tool)')}, "
        f"{'every checksum matches' if report.checksummed else 'no checksums to compare'}"
    )
    for warning in report.warnings:
        out.say(f"warning: {warning}")


# --- restores ------------------------------------------------------------------------------------


def _restore_document(result: dict[str, Any], seconds: float, drops: dict[str, list[str]] | None) -> dict[str, Any]:
    """A restore's JSON: what was verified, each job's outcome, and any difference from the bundle."""
    jobs: dict[str, Any] = {}
    for job, got in result["restored"].items():
        if got is None:
            jobs[job] = {"status": "skipped"}
        elif got.get("dry_run"):
            jobs[job] = {"status": "dry_run", "would_restore": {k: v for k, v in got.items() if k != "dry_run"}}
        else:
            jobs[job] = {"status": "restored", "counts": got}
    return {
        "key": result["key"],
        "mode": result["mode"],
        "dry_run": result["dry_run"],
        "format_version": result["format_version"],
        "checksummed": result["checksummed"],
        "jobs": jobs,
        "replaced": drops,
        "warnings": result["warnings"],
        "problems": result["problems"],
        "seconds": round(seconds, 3),
    }


def _restore(
    out: Output,
    name: str,
    opener: Callable[[], Any],
    jobs: str | None,
    indices: str | None,
    mode: str,
    dry_run: bool,
    allow_unchecked: bool,
    ask: bool,
    postgres_databases: str | None,
    postgres_roles: bool,
    elsewhere: Elsewhere,
    postgres_jobs: int | None,
    store: BackupStore | None = None,
) -> None:
    """With `store`, a restore that writes holds its lock (simple-restore has no backup bucket)."""
    started = time.monotonic()
    drops: dict[str, list[str]] = {}
    with showing(out) as display:
        question = confirm.asker(name, display.paused if display else None) if ask else None

        def confirm_and_keep(found: dict[str, list[str]]) -> None:
            drops.update(found)
            if question is not None:
                question(found)

        result = restore.run_restore(
            opener,
            name,
            config.parse_jobs(jobs),
            mode,
            RestoreOptions(
                split(indices),
                config.parse_index_patterns(postgres_databases) or None,
                postgres_roles,
                postgres_jobs=postgres_jobs,
                **elsewhere.fields,
            ),
            dry_run,
            settings={
                job: restore.load_settings(job, conn_id)
                for job, conn_id in elsewhere.conn_ids.items()
                if job in config.parse_jobs(jobs)
            },
            allow_unchecked=allow_unchecked,
            confirm=confirm_and_keep if ask else None,
            lock=store.lock() if store else None,
        )
    document = _restore_document(result, time.monotonic() - started, drops if ask else None)
    out.say(f"verified {name}: jobs {', '.join(result['jobs']) or 'none'}, format_version {result['format_version']}")
    for warning in result["warnings"]:
        out.say(f"warning: {warning}")
    for job, got in result["restored"].items():
        if got is None:
            out.say(f"  {job:<14} skipped (not in the bundle)")
        elif got.get("dry_run"):
            would = {k: v for k, v in got.items() if k != "dry_run"}
            out.say(f"  {job:<14} would restore {would}")
        else:
            out.say(f"  {job:<14} {format_counts(got)}")
    if result["problems"]:
        for problem in result["problems"]:
            out.say(f"mismatch: {problem}")
        error = JobFailedError("the restore does not match the bundle: " + "; ".join(result["problems"]))
        raise out.failed(document, error)
    out.document(document)
    out.say("dry run: nothing was written" if dry_run else f"restored {name} ({mode} mode); counts match the bundle")


@cli.command(name="restore")
@click.argument("key", metavar="KEY|latest")
@restore_options
def restore_cmd(key: str, yes: bool, out: Output, **options: Any) -> None:
    """Performs a full system restore, given a backup key name."""
    config.parse_jobs(options["jobs"])  # a wrong option fails before the bucket is read
    ask = confirm.needed(options["mode"], options["dry_run"], yes)
    store = backup_store()
    name, opener = _locate(out, store, key)
    _restore(out, name, opener, ask=ask, store=store, **options)


@cli.command(name="simple-restore")
@click.argument("path", metavar="PATH")
@restore_options
def simple_restore(path: str, yes: bool, out: Output, **options: Any) -> None:
    """Performs a full system restore, given a backup archive."""
    config.parse_jobs(options["jobs"])
    ask = confirm.needed(options["mode"], options["dry_run"], yes)
    name, opener = _local(path)
    _restore(out, name, opener, ask=ask, **options)
