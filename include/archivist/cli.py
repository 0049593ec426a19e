"""The `archivist` command: the original tool's commands, over the library the DAGs use.

Configuration comes from the original tool's environment variables (DATABASE_*,
ELASTICSEARCH_*, S3_*, BACKUP_*, BACKUPS_KEPT, NAMESPACE, CRON_SCHEDULE) and,
for each part where none is set, from the Airflow connection of the same part.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import click
from elasticsearch import ElasticsearchWarning

from archivist import __version__, config, modes
from archivist.errors import ArchivistError, BackupNotFoundError, ConfigurationError, JobFailedError, VerificationError
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, checks, restore
from archivist.transport.backup_bucket import BackupStore

NOISY_LOGGERS = ("elastic_transport", "elasticsearch", "botocore", "boto3", "s3transfer", "urllib3", "airflow")
MASK = "****"

EPILOG = """\b
Configuration: the original tool's environment variables. A part with none
of its variables set (DATABASE_*, ELASTICSEARCH_*, S3_*, BACKUP_*) is read
from the Airflow connection archivist_postgres, archivist_elasticsearch,
archivist_storage or archivist_backups. `archivist info` shows what is used.

\b
Exit codes:
  0  ok
  2  bad configuration (a setting is missing or invalid)
  3  a server or bucket is unreachable
  4  verification failure (the bundle is damaged or of an unknown format)
  5  backup not found
  6  restore target not empty (use --mode replace)
  7  a backup or restore job failed, or a restore does not match its bundle
  8  another backup or restore holds the lock (see `archivist unlock`)
"""


class CommandFailed(ArchivistError):
    """A command that found problems and already printed them; carries its exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# --- output helpers --------------------------------------------------------------------------


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def format_counts(counts: dict[str, Any] | None) -> str:
    """`tables=5 rows=1234 indices=4` from a job's counts; nested mappings are shown by size."""
    if not counts:
        return ""
    parts = []
    for name, value in counts.items():
        if isinstance(value, (dict, list, tuple)):
            parts.append(f"{name}={len(value)}")
        else:
            parts.append(f"{name}={value:,}" if isinstance(value, int) else f"{name}={value}")
    return " ".join(parts)


def _secret_values() -> set[str]:
    """Every secret this process could know, so an error message can never carry one."""
    found = set()
    for name, value in os.environ.items():
        if not value or len(value) < 4:
            continue
        if name.endswith(("PASSWORD", "SECRET_ACCESS_KEY", "SESSION_TOKEN")):
            found.add(value)
        elif name.startswith("AIRFLOW_CONN_"):
            try:
                conn = json.loads(value)
                if isinstance(conn, dict) and conn.get("password"):
                    found.add(str(conn["password"]))
                extra = conn.get("extra") if isinstance(conn, dict) else None
                if isinstance(extra, dict) and extra.get("aws_session_token"):
                    found.add(str(extra["aws_session_token"]))
            except ValueError:
                parsed = urlsplit(value)
                if parsed.password:
                    found.add(parsed.password)
    return {s for s in found if len(s) >= 4}


def scrub(text: str) -> str:
    for secret in sorted(_secret_values(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _error_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, ArchivistError) else f"{type(exc).__name__}: {exc}"
    return scrub(text).strip() or type(exc).__name__


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
    root.setLevel(logging.WARNING)
    logging.getLogger("archivist").setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("airflow.sdk._shared.secrets_masker").setLevel(logging.ERROR)  # "secret too short" noise
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)  # retries; the error says it all
    # Elasticsearch's deprecation headers (legacy templates are restored as they were backed up)
    warnings.filterwarnings("ignore", category=ElasticsearchWarning)


def _split(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


# --- the command group -------------------------------------------------------------------------

_state = {"verbose": False}


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


jobs_option = click.option(
    "--jobs", metavar="JOB,...", help="Only these jobs: postgres, elasticsearch, storage (default all)."
)


def restore_options(func: Callable) -> Callable:
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
    return jobs_option(func)


# --- backups -------------------------------------------------------------------------------------


def _print_made(made: dict[str, Any]) -> None:
    click.echo(f"key      {made['key']}")
    if "path" in made:
        click.echo(f"file     {made['path']}")
    click.echo(f"size     {human_size(made['size'])} ({made['size']:,} bytes)")
    for job_dir in sorted(made["stats"]):
        seconds = made["stats"][job_dir]["time_seconds"]
        click.echo(f"  {job_dir:<20} {seconds:7.2f} s   {format_counts(made['counts'].get(job_dir))}")


@cli.command(name="backup")
@jobs_option
@click.option("--keep", type=int, metavar="N", help="Bundles to keep in rotation (default BACKUPS_KEPT, at least 7).")
def backup_cmd(jobs: str | None, keep: int | None) -> None:
    """Performs a full system backup."""
    made = backup.run_backup(config.parse_jobs(jobs), keep)
    _print_made(made)
    rotated = made.get("rotated") or []
    click.echo(f"rotation deleted {len(rotated)} old bundle(s){': ' + ', '.join(rotated) if rotated else ''}")


@cli.command(name="simple-backup")
@jobs_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=True, writable=True),
    metavar="PATH",
    help="File (or folder) for the bundle; default ./<key>.tgz.",
)
def simple_backup(jobs: str | None, output: str | None) -> None:
    """Performs a system backup but leaves the bundle in a file, not in the backup bucket."""
    _print_made(backup.run_simple_backup(output, config.parse_jobs(jobs)))


# --- checks --------------------------------------------------------------------------------------


def _report_checks(results: list[checks.CheckResult]) -> None:
    for result in results:
        click.echo(scrub(result.line()))
    failed = [r for r in results if not r.ok]
    if failed:
        raise CommandFailed(
            f"{len(failed)} of {len(results)} checks failed: {', '.join(r.item for r in failed)}",
            max(r.exit_code for r in failed),
        )


@cli.command()
@jobs_option
def check(jobs: str | None) -> None:
    """Checks whether configuration is enough to run backup or restore."""
    _report_checks(checks.run_checks(config.parse_jobs(jobs), backups=True))


@cli.command(name="simple-check")
@jobs_option
def simple_check(jobs: str | None) -> None:
    """Checks whether configuration is enough to run simple backup or restore (no backup bucket)."""
    _report_checks(checks.run_checks(config.parse_jobs(jobs), backups=False))


# --- info ----------------------------------------------------------------------------------------


def _from_env(
    names: dict[str, Any], secrets: tuple[str, ...], defaults: dict[str, Any]
) -> Iterator[tuple[str, str, str]]:
    """Rows for a part configured by variables: each variable's value, set or defaulted."""
    for name, value in names.items():
        shown = (MASK if value else "(empty)") if name in secrets else ("" if value is None else str(value))
        if os.environ.get(name, "").strip():
            origin = "environment"
        elif name in defaults:
            origin = "default"
        else:
            origin = "not set"
        yield name, shown, origin


def _rows_postgres() -> Iterator[tuple[str, str, str]]:
    s = config.load_postgres()
    values = {
        "DATABASE_HOST": s.host,
        "DATABASE_PORT": s.port,
        "DATABASE_NAME": s.dbname,
        "DATABASE_USER": s.user,
        "DATABASE_PASSWORD": s.password,
    }
    yield from _rows(values, s.source, ("DATABASE_PASSWORD",), {"DATABASE_PORT"})


def _rows_elasticsearch() -> Iterator[tuple[str, str, str]]:
    s = config.load_elasticsearch()
    url = urlsplit(s.url)
    values = {
        "ELASTICSEARCH_PROTOCOL": url.scheme,
        "ELASTICSEARCH_HOST": url.hostname,
        "ELASTICSEARCH_PORT": url.port,
        "ELASTICSEARCH_USER": s.user,
        "ELASTICSEARCH_PASSWORD": s.password,
    }
    yield from _rows(values, s.source, ("ELASTICSEARCH_PASSWORD",), {"ELASTICSEARCH_PROTOCOL", "ELASTICSEARCH_PORT"})


def _s3_rows(load: Callable[[], config.S3Settings], prefix: str) -> Callable[[], Iterator[tuple[str, str, str]]]:
    def rows() -> Iterator[tuple[str, str, str]]:
        s = load()
        values = {
            f"{prefix}ACCESS_KEY_ID": s.access_key_id,
            f"{prefix}SECRET_ACCESS_KEY": s.secret_access_key,
            f"{prefix}BUCKET_NAME": s.bucket,
            f"{prefix}ENDPOINT_URL": s.endpoint_url or "(AWS S3)",
        }
        defaulted = set()
        if prefix == "BACKUP_":
            values["BACKUP_PREFIX"], defaulted = s.prefix or "(bucket root)", {"BACKUP_PREFIX"}
        yield from _rows(values, s.source, (f"{prefix}SECRET_ACCESS_KEY",), defaulted)

    return rows


def _rows(
    values: dict[str, Any], source: str, secrets: tuple[str, ...], defaulted: set[str]
) -> Iterator[tuple[str, str, str]]:
    if source.endswith("variables"):
        yield from _from_env(values, secrets, dict.fromkeys(defaulted))
        return
    for name, value in values.items():
        shown = (MASK if value else "(empty)") if name in secrets else ("" if value is None else str(value))
        yield name, shown, source


def _rows_general() -> Iterator[tuple[str, str, str]]:
    raw = config.load_env_backups_kept()
    try:
        yield "BACKUPS_KEPT", str(config.parse_backups_kept(raw)), "environment" if raw is not None else "default"
    except ArchivistError as exc:
        yield "BACKUPS_KEPT", f"error: {_error_line(exc)}", "environment"
    yield "NAMESPACE", config.load_namespace() or "(empty)", "environment" if "NAMESPACE" in os.environ else "default"
    origin = (
        "ARCHIVIST_SCHEDULE"
        if os.environ.get("ARCHIVIST_SCHEDULE")
        else "environment"
        if os.environ.get("CRON_SCHEDULE")
        else "default"
    )
    yield "CRON_SCHEDULE", config.load_cron_schedule(), origin


@cli.command()
def info() -> None:
    """Prints all configuration options and exits."""
    parts: list[tuple[str, Callable[[], Iterator[tuple[str, str, str]]]]] = [
        ("DATABASE_*", _rows_postgres),
        ("ELASTICSEARCH_*", _rows_elasticsearch),
        ("S3_*", _s3_rows(config.load_storage, "S3_")),
        ("BACKUP_*", _s3_rows(config.load_backups, "BACKUP_")),
        ("general", _rows_general),
    ]
    rows: list[tuple[str, str, str]] = []
    for label, load in parts:
        try:
            rows.extend(load())
        except Exception as exc:  # one broken part is reported on its line; the rest still print
            rows.append((label, f"error: {_error_line(exc)}", ""))
    width = max(len(name) for name, _, _ in rows)
    value_width = min(40, max(len(value) for _, value, _ in rows))
    for name, value, origin in rows:
        line = f"{name:<{width}}  {value:<{value_width}}  {'(' + origin + ')' if origin else ''}".rstrip()
        click.echo(scrub(line))


# --- the backup bucket ----------------------------------------------------------------------------


def _store() -> BackupStore:
    return BackupStore(config.load_backups())


@cli.command()
@click.option("--keep", type=int, metavar="N", help="Bundles to keep (default BACKUPS_KEPT, else 30; at least 7).")
@click.option("--dry-run", is_flag=True, help="Say which bundles rotation would delete, and delete none.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object for scripts.")
def rotate(keep: int | None, dry_run: bool, as_json: bool) -> None:
    """Deletes the oldest bundles beyond the number kept, as a backup's rotation does."""
    if keep is not None and keep < config.MIN_BACKUPS_KEPT:
        raise ConfigurationError(
            f"--keep {keep} is below the minimum of {config.MIN_BACKUPS_KEPT}: archivist never keeps fewer "
            "backups; nothing was deleted"
        )
    keep = config.load_backups_kept() if keep is None else keep
    store = _store()
    deleted = store.rotate(keep, dry_run=dry_run)
    if as_json:
        rows = [b.as_dict() for b in deleted]
        click.echo(json.dumps({"keep": keep, "dry_run": dry_run, "deleted": rows}, indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"kept the newest {keep} bundle(s) in bucket '{store.bucket}'; {verb} {len(deleted)}")
    for stored in deleted:
        click.echo(f"  {verb} {stored.key.name}  {human_size(stored.size):>10}")


@cli.command(name="list")
@click.option(
    "--meta",
    "with_meta",
    is_flag=True,
    help="Also read each bundle's meta.json (two small ranged reads) for the format version.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
def list_cmd(with_meta: bool, as_json: bool) -> None:
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
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no bundle in bucket '{store.bucket}' yet")
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
        click.echo(line)


def _locate(store: BackupStore, text: str) -> tuple[str, Callable[[], Any]]:
    found = store.locate(text)
    click.echo(f"bundle   {found.key} ({human_size(found.size)}) in bucket '{store.bucket}'")
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
def verify(target: str, allow_unchecked: bool) -> None:
    """Checks a bundle (a backup key, 'latest', or a local file) against its meta.json."""
    if os.path.isfile(target):
        name, opener = _local(target)
    elif os.sep in target or target.endswith(".tgz") and not BackupKey.is_bundle_object(os.path.basename(target)):
        raise BackupNotFoundError(f"no bundle file at {target}")
    else:
        name, opener = _locate(_store(), target)
    report = restore.verify(opener, allow_unchecked)
    click.echo(
        f"verified {name}: {len(report.members)} members, jobs {', '.join(report.jobs) or 'none'}, "
        f"format_version {report.meta.get('format_version', '0 (original tool)')}, "
        f"{'every checksum matches' if report.checksummed else 'no checksums to compare'}"
    )
    for warning in report.warnings:
        click.echo(f"warning: {warning}")


# --- restores ------------------------------------------------------------------------------------


def _restore(
    name: str,
    opener: Callable[[], Any],
    jobs: str | None,
    indices: str | None,
    mode: str,
    dry_run: bool,
    allow_unchecked: bool,
    store: BackupStore | None = None,
) -> None:
    result = restore.run_restore(
        opener,
        name,
        config.parse_jobs(jobs),
        mode,
        _split(indices),
        dry_run,
        allow_unchecked=allow_unchecked,
        lock=store.lock() if store else None,
    )
    click.echo(
        f"verified {name}: jobs {', '.join(result['jobs']) or 'none'}, format_version {result['format_version']}"
    )
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}")
    for job, got in result["restored"].items():
        if got is None:
            click.echo(f"  {job:<14} skipped (not in the bundle)")
        elif got.get("dry_run"):
            would = {k: v for k, v in got.items() if k != "dry_run"}
            click.echo(f"  {job:<14} would restore {would}")
        else:
            click.echo(f"  {job:<14} {format_counts(got)}")
    if result["problems"]:
        for problem in result["problems"]:
            click.echo(f"mismatch: {problem}")
        raise JobFailedError("the restore does not match the bundle: " + "; ".join(result["problems"]))
    click.echo("dry run: nothing was written" if dry_run else f"restored {name} ({mode} mode); counts match the bundle")


@cli.command(name="restore")
@click.argument("key", metavar="KEY|latest")
@restore_options
def restore_cmd(key: str, **options: Any) -> None:
    """Performs a full system restore, given a backup key name."""
    config.parse_jobs(options["jobs"])  # a wrong option fails before the bucket is read
    store = _store()
    name, opener = _locate(store, key)
    _restore(name, opener, **options, store=store)


@cli.command(name="simple-restore")
@click.argument("path", metavar="PATH")
@restore_options
def simple_restore(path: str, **options: Any) -> None:
    """Performs a full system restore, given a backup archive."""
    name, opener = _local(path)
    _restore(name, opener, **options)


@cli.command()
def unlock() -> None:
    """Clears the lock of a backup or restore whose holder is gone (one that was killed)."""
    store = _store()
    holder = store.lock().clear()
    if holder is None:
        click.echo(f"{store.where} is not locked")
    else:
        click.echo(f"cleared the lock of {store.where}, held by {holder.describe(dt.datetime.now(dt.UTC))}")


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Runs the command and exits with its code; errors are one line on stderr, never a traceback."""
    try:
        code = cli.main(args=argv, prog_name="archivist", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ArchivistError as exc:
        click.echo(f"error: {_error_line(exc)}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        code = 130
    except Exception as exc:  # an unexpected failure is still one line; -v adds the traceback
        if _state["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {_error_line(exc)}", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
