"""The commands that make bundles, check the configuration, and look after the backup bucket:
backup, simple-backup, check, simple-check, info, rotate, unlock, list (with each bundle's last drill)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import click

from archivist import config
from archivist.cli import info
from archivist.cli.group import backup_store, cli, dump_options, jobs_option, output_options, retention_options, showing
from archivist.cli.output import Output, format_counts, human_size, scrub
from archivist.drill import record as records
from archivist.errors import ArchivistError, VerificationError
from archivist.format import bundle
from archivist.retention import RetentionPolicy
from archivist.runner import backup, checks
from archivist.sources.base import DumpOptions

# --- backups -------------------------------------------------------------------------------------


def _made_document(made: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A backup's JSON: the bundle, its size, each job's time and counts, the whole time."""
    jobs = {
        bundle.job_of_path(job_dir) or job_dir: {
            "seconds": made["stats"][job_dir]["time_seconds"],
            "counts": made["counts"].get(job_dir, {}),
        }
        for job_dir in sorted(made["stats"])
    }
    where = {"path": made["path"]} if "path" in made else {"object": made["object"]}
    return {
        "key": made["key"],
        **where,
        "encrypted": made["encrypted"],
        "size": made["size"],
        "jobs": jobs,
        "seconds": round(seconds, 3),
    }


def _print_made(out: Output, made: dict[str, Any]) -> None:
    out.say(f"key      {made['key']}")
    if "path" in made:
        out.say(f"file     {made['path']}")
    out.say(f"size     {human_size(made['size'])} ({made['size']:,} bytes)")
    if made["encrypted"]:
        out.say("         encrypted with age: restoring or verifying it needs the identity")
    for job_dir in sorted(made["stats"]):
        seconds = made["stats"][job_dir]["time_seconds"]
        out.say(f"  {job_dir:<20} {seconds:7.2f} s   {format_counts(made['counts'].get(job_dir))}")


@cli.command(name="backup")
@jobs_option
@retention_options
@dump_options
@output_options
def backup_cmd(jobs: str | None, policy: RetentionPolicy, options: DumpOptions, out: Output) -> None:
    """Performs a full system backup."""
    started = time.monotonic()
    with showing(out):
        made = backup.run_backup(config.parse_jobs(jobs), policy, options)
    rotated = made.get("rotated") or []
    out.document({**_made_document(made, time.monotonic() - started), "rotated": rotated})
    _print_made(out, made)
    out.say(f"rotation deleted {len(rotated)} old bundle(s){': ' + ', '.join(rotated) if rotated else ''}")


@cli.command(name="simple-backup")
@jobs_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=True, writable=True),
    metavar="PATH",
    help="File (or folder) for the bundle; default ./<key>.tgz.",
)
@dump_options
@output_options
def simple_backup(jobs: str | None, output: str | None, options: DumpOptions, out: Output) -> None:
    """Performs a system backup but leaves the bundle in a file, not in the backup bucket."""
    started = time.monotonic()
    with showing(out):
        made = backup.run_simple_backup(output, config.parse_jobs(jobs), options)
    out.document(_made_document(made, time.monotonic() - started))
    _print_made(out, made)


# --- checks --------------------------------------------------------------------------------------


def _report_checks(out: Output, results: list[checks.CheckResult]) -> None:
    failed = [r for r in results if not r.ok]
    document = {
        "ok": not failed,
        "checks": [{"item": r.item, "ok": r.ok, "message": r.detail, "exit_code": r.exit_code} for r in results],
    }
    for result in results:
        out.say(scrub(result.line()))
    if failed:
        error = ArchivistError(f"{len(failed)} of {len(results)} checks failed: {', '.join(r.item for r in failed)}")
        error.exit_code = max(r.exit_code for r in failed)
        raise out.failed(document, error)
    out.document(document)


@cli.command()
@jobs_option
@output_options
def check(jobs: str | None, out: Output) -> None:
    """Checks whether configuration is enough to run backup or restore."""
    _report_checks(out, checks.run_checks(config.parse_jobs(jobs), backups=True))


@cli.command(name="simple-check")
@jobs_option
@output_options
def simple_check(jobs: str | None, out: Output) -> None:
    """Checks whether configuration is enough to run simple backup or restore (no backup bucket)."""
    _report_checks(out, checks.run_checks(config.parse_jobs(jobs), backups=False))


@cli.command(name="info")
@output_options
def info_cmd(out: Output) -> None:
    """Prints all configuration options and exits."""
    rows = info.rows()
    out.document({"options": [{"name": name, "value": value, "origin": origin} for name, value, origin in rows]})
    width = max(len(name) for name, _, _ in rows)
    value_width = min(40, max(len(value) for _, value, _ in rows))
    for name, value, origin in rows:
        line = f"{name:<{width}}  {value:<{value_width}}  {'(' + origin + ')' if origin else ''}".rstrip()
        out.say(scrub(line))


# --- the backup bucket ----------------------------------------------------------------------------


@cli.command()
@retention_options
@click.option(
    "--dry-run", is_flag=True, help="Say which rules keep each bundle and which would be deleted; delete none."
)
@output_options
def rotate(policy: RetentionPolicy, dry_run: bool, out: Output) -> None:
    """Deletes the bundles no retention rule keeps, as a backup's rotation does."""
    store = backup_store()
    plan = store.retention_plan(policy)
    deleted = store.rotate(policy, dry_run=dry_run, plan=plan)
    kept = [{**v.bundle.as_dict(), "reasons": list(v.reasons)} for v in plan if v.kept]
    out.document(
        {
            "keep": policy.last,
            "policy": dataclasses.asdict(policy),
            "dry_run": dry_run,
            "kept": kept,
            "deleted": [b.as_dict() for b in deleted],
        }
    )
    verb = "would delete" if dry_run else "deleted"
    calendar = ", ".join(f"{name} {count}" for name, count in policy.rules() if name != "last")
    by_calendar = f" and by the calendar ({calendar})" if calendar else ""
    out.say(f"kept the newest {policy.last} bundle(s){by_calendar} in bucket '{store.bucket}'; {verb} {len(deleted)}")
    for verdict in plan:
        name, size = verdict.bundle.key.name, human_size(verdict.bundle.size)
        if verdict.kept and dry_run:
            out.say(f"  {'keep':<12} {name}  {size:>10}  {', '.join(verdict.reasons)}")
        elif not verdict.kept:
            out.say(f"  {verb:<12} {name}  {size:>10}")


@cli.command()
@output_options
def unlock(out: Output) -> None:
    """Clears the lock of a backup or restore whose holder is gone (one that was killed)."""
    store = backup_store()
    holder = store.lock().clear()
    held_by = holder.describe(dt.datetime.now(dt.UTC)) if holder is not None else None
    out.document({"bucket": store.bucket, "cleared": holder is not None, "held_by": held_by})
    if holder is None:
        out.say(f"{store.where} is not locked")
    else:
        out.say(f"cleared the lock of {store.where}, held by {held_by}")


@cli.command(name="list")
@click.option(
    "--meta",
    "with_meta",
    is_flag=True,
    help="Also read each bundle's meta.json (two small ranged reads) for the format version.",
)
@output_options
def list_cmd(with_meta: bool, out: Output) -> None:
    """Shows a list of available backups, with each one's last drill."""
    store = backup_store()
    rows = []
    bundles = store.list_bundles()  # first: a bucket or credentials problem is explained here
    drilled = records.read_all(store)
    for stored in bundles:
        row = stored.as_dict()
        row["drill"] = records.listed(drilled.get(stored.key.name))
        if with_meta:
            try:
                meta = store.read_meta(stored)
                row["format_version"], row["created_at"] = meta.get("format_version", 0), meta.get("created_at")
            except VerificationError as exc:
                row["format_version"], row["error"] = None, str(exc)
        rows.append(row)
    out.document(rows)
    if not rows:
        out.say(f"no bundle in bucket '{store.bucket}' yet")
        return
    for row in rows:
        made = dt.datetime.fromisoformat(row["last_modified"]).astimezone(dt.UTC)
        line = f"{row['key']}  {made:%Y-%m-%d %H:%M} UTC  {human_size(row['size']):>10}"
        line += "  encrypted (age)" if row["encrypted"] else ""
        if with_meta:
            if "error" in row:
                version = f"damaged: {row['error']}"
            elif row["format_version"] is None:
                version = "format unknown"
            else:
                version = f"format {row['format_version']}" + (" (original tool)" if row["format_version"] == 0 else "")
            line += f"  {version}"
        if row["drill"] is not None:
            line += f"  drill: {row['drill']['summary']}"
        out.say(line)
