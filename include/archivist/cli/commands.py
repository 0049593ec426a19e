"""The `archivist` command: the original tool's commands, over the library the DAGs use.

Configuration comes from the original tool's environment variables (DATABASE_*,
ELASTICSEARCH_*, S3_*, BACKUP_*, BACKUPS_KEPT, NAMESPACE, CRON_SCHEDULE) and,
for each part where none is set, from the Airflow connection of the same part.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import click
from elasticsearch import ElasticsearchWarning

from archivist import __version__, config, modes
from archivist.cli import confirm, info, live
from archivist.cli.output import Output, Reported, error_document, error_line, format_counts, human_size, scrub
from archivist.errors import ArchivistError, BackupNotFoundError, ConfigurationError, JobFailedError, VerificationError
from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, checks, restore
from archivist.transport.backup_bucket import BackupStore

NOISY_LOGGERS = ("elastic_transport", "elasticsearch", "botocore", "boto3", "s3transfer", "urllib3", "airflow")

EPILOG = """\b
Configuration: the original tool's environment variables. A part with none
of its variables set (DATABASE_*, ELASTICSEARCH_*, S3_*, BACKUP_*) is read
from the Airflow connection archivist_postgres, archivist_elasticsearch,
archivist_storage or archivist_backups. `archivist info` shows what is used.

\b
Every command takes --json (one JSON document on stdout, errors too) and
--quiet (nothing but errors); docs/CLI.md lists the fields.

\b
Exit codes:
  0  ok
  1  the replace question was answered no (nothing written), or an unexpected error
  2  bad configuration (a setting is missing or invalid; or restore --mode replace
     without a terminal to ask on and without --yes)
  3  a server or bucket is unreachable
  4  verification failure (the bundle is damaged or of an unknown format)
  5  backup not found
  6  restore target not empty (use --mode replace)
  7  a backup or restore job failed, or a restore does not match its bundle
"""


# --- logging -----------------------------------------------------------------------------------

_state: dict[str, Any] = {"verbose": False, "output": None, "handler": None}


def _uses_airflow_connections() -> bool:
    """Whether some part has none of its variables set, so config reads an Airflow connection."""
    return not all(
        any(k.startswith(prefix) and v for k, v in os.environ.items())
        for prefix in ("DATABASE_", "ELASTICSEARCH_", "S3_", "BACKUP_")
    )


def setup_logging(verbose: bool) -> None:
    """archivist's INFO lines (progress included) on a terminal or with -v; otherwise warnings only."""
    if _uses_airflow_connections():
        try:  # Airflow sets up its own logging when imported: import it first, then set ours over it
            import airflow.sdk  # noqa: F401
        except ImportError:  # pragma: no cover - config explains what to set instead
            pass
    level = logging.INFO if verbose or sys.stderr.isatty() else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    _state["handler"] = handler
    root.setLevel(logging.WARNING)
    logging.getLogger("archivist").setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("airflow.sdk._shared.secrets_masker").setLevel(logging.ERROR)  # "secret too short" noise
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)  # retries; the error says it all
    # Elasticsearch's deprecation headers (legacy templates are restored as they were backed up)
    warnings.filterwarnings("ignore", category=ElasticsearchWarning)


def _quieten(out: Output) -> None:
    """--quiet logs errors only; --json logs warnings and errors (or all with -v), never progress."""
    if out.quiet:
        logging.getLogger().setLevel(logging.ERROR)
        for name in ("archivist", *NOISY_LOGGERS):
            logging.getLogger(name).setLevel(logging.ERROR)
    elif out.as_json and not _state["verbose"]:
        logging.getLogger("archivist").setLevel(logging.WARNING)


def _split(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


# --- the command group -------------------------------------------------------------------------


@click.group(
    name="archivist", epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log progress and details to stderr even when it is not a terminal."
)
@click.version_option(__version__, prog_name="archivist")
def cli(verbose: bool) -> None:
    """Entrypoint for all archivist commands."""
    _state["verbose"] = verbose
    setup_logging(verbose)


def output_options(func: Callable) -> Callable:
    """--json and --quiet for a command, which then receives `out`, the Output they choose."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (docs/CLI.md).")
    @click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
    @functools.wraps(func)
    def command(*args: Any, as_json: bool, quiet: bool, **kwargs: Any) -> Any:
        out = _state["output"] = Output(as_json=as_json, quiet=quiet)
        _quieten(out)
        return func(*args, out=out, **kwargs)

    return command


jobs_option = click.option(
    "--jobs", metavar="JOB,...", help="Only these jobs: postgres, elasticsearch, storage (default all)."
)


def restore_options(func: Callable) -> Callable:
    func = click.option(
        "-y", "--yes", is_flag=True, help="Replace mode: drop what the bundle recreates without asking first."
    )(func)
    func = click.option("--dry-run", is_flag=True, help="Verify and report what would be restored; write nothing.")(
        func
    )
    func = click.option("--allow-unchecked", is_flag=True, help=modes.UNCHECKED_HELP)(func)
    func = click.option(
        "--mode", type=click.Choice(modes.MODES), default="empty", show_default=True, help=modes.MODE_HELP
    )(func)
    func = click.option(
        "--indices",
        metavar="PATTERN,...",
        help="Elasticsearch index patterns to restore (e.g. products,logs-*); default all.",
    )(func)
    return output_options(jobs_option(func))


def _showing(out: Output) -> Any:
    return live.showing(out, _state["handler"])


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
    return {"key": made["key"], **where, "size": made["size"], "jobs": jobs, "seconds": round(seconds, 3)}


def _print_made(out: Output, made: dict[str, Any]) -> None:
    out.say(f"key      {made['key']}")
    if "path" in made:
        out.say(f"file     {made['path']}")
    out.say(f"size     {human_size(made['size'])} ({made['size']:,} bytes)")
    for job_dir in sorted(made["stats"]):
        seconds = made["stats"][job_dir]["time_seconds"]
        out.say(f"  {job_dir:<20} {seconds:7.2f} s   {format_counts(made['counts'].get(job_dir))}")


@cli.command(name="backup")
@jobs_option
@click.option("--keep", type=int, metavar="N", help="Bundles to keep in rotation (default BACKUPS_KEPT, at least 7).")
@output_options
def backup_cmd(jobs: str | None, keep: int | None, out: Output) -> None:
    """Performs a full system backup."""
    started = time.monotonic()
    with _showing(out):
        made = backup.run_backup(config.parse_jobs(jobs), keep)
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
@output_options
def simple_backup(jobs: str | None, output: str | None, out: Output) -> None:
    """Performs a system backup but leaves the bundle in a file, not in the backup bucket."""
    started = time.monotonic()
    with _showing(out):
        made = backup.run_simple_backup(output, config.parse_jobs(jobs))
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


def _store() -> BackupStore:
    return BackupStore(config.load_backups())


@cli.command()
@click.option("--keep", type=int, metavar="N", help="Bundles to keep (default BACKUPS_KEPT, else 30; at least 7).")
@click.option("--dry-run", is_flag=True, help="Say which bundles rotation would delete, and delete none.")
@output_options
def rotate(keep: int | None, dry_run: bool, out: Output) -> None:
    """Deletes the oldest bundles beyond the number kept, as a backup's rotation does."""
    if keep is not None and keep < config.MIN_BACKUPS_KEPT:
        raise ConfigurationError(
            f"--keep {keep} is below the minimum of {config.MIN_BACKUPS_KEPT}: archivist never keeps fewer "
            "backups; nothing was deleted"
        )
    keep = config.load_backups_kept() if keep is None else keep
    store = _store()
    deleted = store.rotate(keep, dry_run=dry_run)
    out.document({"keep": keep, "dry_run": dry_run, "deleted": [b.as_dict() for b in deleted]})
    verb = "would delete" if dry_run else "deleted"
    out.say(f"kept the newest {keep} bundle(s) in bucket '{store.bucket}'; {verb} {len(deleted)}")
    for stored in deleted:
        out.say(f"  {verb} {stored.key.name}  {human_size(stored.size):>10}")


@cli.command(name="list")
@click.option(
    "--meta",
    "with_meta",
    is_flag=True,
    help="Also read each bundle's meta.json (two small ranged reads) for the format version.",
)
@output_options
def list_cmd(with_meta: bool, out: Output) -> None:
    """Shows a list of available backups."""
    store = _store()
    rows = []
    for stored in store.list_bundles():
        row = stored.as_dict()
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
        if with_meta:
            if "error" in row:
                version = f"damaged: {row['error']}"
            elif row["format_version"] is None:
                version = "format unknown"
            else:
                version = f"format {row['format_version']}" + (" (original tool)" if row["format_version"] == 0 else "")
            line += f"  {version}"
        out.say(line)


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
        name, opener = _locate(out, _store(), target)
    try:
        with _showing(out):
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
) -> None:
    started = time.monotonic()
    drops: dict[str, list[str]] = {}
    with _showing(out) as display:
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
            _split(indices),
            dry_run,
            allow_unchecked=allow_unchecked,
            confirm=confirm_and_keep if ask else None,
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
    name, opener = _locate(out, _store(), key)
    _restore(out, name, opener, ask=ask, **options)


@cli.command(name="simple-restore")
@click.argument("path", metavar="PATH")
@restore_options
def simple_restore(path: str, yes: bool, out: Output, **options: Any) -> None:
    """Performs a full system restore, given a backup archive."""
    config.parse_jobs(options["jobs"])
    ask = confirm.needed(options["mode"], options["dry_run"], yes)
    name, opener = _local(path)
    _restore(out, name, opener, ask=ask, **options)


# --- entry point -----------------------------------------------------------------------------------


def _json_wanted(argv: list[str] | None) -> bool:
    """--json, also when the command line failed before the command could read its options."""
    out = _state["output"]
    return out.as_json if out is not None else "--json" in (sys.argv[1:] if argv is None else argv)


def _plain(error: BaseException) -> BaseException:
    """The error as its one line says it."""
    if isinstance(error, click.ClickException):
        return ArchivistError(error.format_message())
    if isinstance(error, (click.exceptions.Abort, KeyboardInterrupt)):
        return ArchivistError("aborted" if isinstance(error, click.exceptions.Abort) else "interrupted")
    return error


def main(argv: list[str] | None = None) -> None:
    """Runs the command and exits with its code; errors are one line on stderr, never a traceback,
    and with --json also a JSON document on stdout."""
    _state["output"] = None
    reported = False
    try:
        code = cli.main(args=argv, prog_name="archivist", standalone_mode=False)
        error: BaseException | None = None
    except click.exceptions.Abort as exc:
        click.echo("error: aborted", err=True)
        code, error = 130, exc
    except click.ClickException as exc:
        exc.show()
        code, error = exc.exit_code, exc
    except ArchivistError as exc:
        click.echo(f"error: {error_line(exc)}", err=True)
        code, error, reported = exc.exit_code, exc, isinstance(exc, Reported)
    except KeyboardInterrupt as exc:
        click.echo("error: interrupted", err=True)
        code, error = 130, exc
    except Exception as exc:  # an unexpected failure is still one line; -v adds the traceback
        if _state["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {error_line(exc)}", err=True)
        code, error = 1, exc
    if error is not None and not reported and _json_wanted(argv):
        error_document(_plain(error), code)
    sys.exit(code if isinstance(code, int) else 0)
