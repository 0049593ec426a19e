"""The `archivist` command group: its global options, logging, the options commands share, and the
entry point that turns every error into one line (and, with --json, one JSON document).

Configuration comes from the original tool's environment variables (DATABASE_*,
ELASTICSEARCH_*, S3_*, BACKUP_*, BACKUPS_KEPT, NAMESPACE, CRON_SCHEDULE) and,
for each part where none is set, from the Airflow connection of the same part.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import click
from elasticsearch import ElasticsearchWarning

from archivist import __version__, config, modes
from archivist.cli import live
from archivist.cli.elsewhere import CONN_OPTIONS, elsewhere_options
from archivist.cli.output import Output, Reported, error_document, error_line
from archivist.errors import ArchivistError, ConfigurationError
from archivist.sources.base import DumpOptions
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
  8  another backup or restore holds the lock (see `archivist unlock`)
"""


# --- logging -----------------------------------------------------------------------------------

CONN_OPTIONS_START = tuple(CONN_OPTIONS.values())
_state: dict[str, Any] = {"verbose": False, "output": None, "handler": None, "argv": []}


def _uses_airflow_connections() -> bool:
    """Whether some part has none of its variables set, or the command line names a connection,
    so config reads an Airflow connection."""
    if any(arg.startswith(CONN_OPTIONS_START) for arg in _state["argv"]):
        return True
    return not all(
        any(k.startswith(prefix) and v for k, v in os.environ.items())
        for prefix in ("DATABASE_", "ELASTICSEARCH_", "S3_", "BACKUP_")
    )


def setup_logging(verbose: bool) -> None:
    """archivist's INFO lines (progress included) on a terminal or with -v; otherwise warnings only."""
    if _uses_airflow_connections():
        # Airflow's own log lines go to stdout, where they would break --json: its warnings only
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
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


def split(text: str | None) -> list[str] | None:
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


def dump_options(func: Callable) -> Callable:
    """The backup's options (index pattern, closed and sourceless indices, PostgreSQL privileges,
    databases and roles), handed to the command as one `options`."""

    @click.option(
        "--index-pattern",
        default="*",
        show_default=True,
        metavar="PATTERN",
        help="Elasticsearch indices to back up (e.g. 'products,logs-*' or '*,-scratch').",
    )
    @click.option(
        "--closed-indices",
        type=click.Choice(config.CLOSED_INDICES),
        default=config.CLOSED_INDICES[0],
        show_default=True,
        help="A closed index: refuse (fail naming it), or open it for reading and close it again.",
    )
    @click.option(
        "--mappings-only",
        metavar="INDEX,...",
        help="Indices backed up as settings and mappings without documents (_source disabled or filtered).",
    )
    @click.option(
        "--postgres-privileges",
        is_flag=True,
        help="Keep owners and privileges in the PostgreSQL dump (restore into a cluster with the same roles).",
    )
    @click.option(
        "--postgres-databases",
        metavar="NAME,...",
        help="More databases of the PostgreSQL server to back up, each its own dump.",
    )
    @click.option(
        "--postgres-roles", is_flag=True, help="Also back up the cluster's role definitions, without passwords."
    )
    @functools.wraps(func)
    def wrapper(
        *args,
        index_pattern: str,
        closed_indices: str,
        mappings_only: str | None,
        postgres_privileges: bool,
        postgres_databases: str | None,
        postgres_roles: bool,
        **kwargs,
    ):
        options = DumpOptions(
            index_pattern,
            closed_indices,
            config.parse_index_patterns(mappings_only),
            postgres_privileges,
            config.parse_postgres_databases(postgres_databases),
            postgres_roles,
        )
        return func(*args, options=options, **kwargs)

    return wrapper


def retention_options(func: Callable) -> Callable:
    """Rotation's rules: --keep and the calendar's --keep-daily … --keep-yearly, handed to the
    command as one `policy` (each unset option from its BACKUPS_KEPT* variable)."""

    @click.option("--keep", type=int, metavar="N", help="Newest bundles to keep (BACKUPS_KEPT, else 30; at least 7).")
    @click.option("--keep-daily", type=int, metavar="N", help="Also the newest bundle of N days (BACKUPS_KEPT_DAILY).")
    @click.option("--keep-weekly", type=int, metavar="N", help="… of N ISO weeks (BACKUPS_KEPT_WEEKLY).")
    @click.option("--keep-monthly", type=int, metavar="N", help="… of N months (BACKUPS_KEPT_MONTHLY).")
    @click.option("--keep-yearly", type=int, metavar="N", help="… of N years (BACKUPS_KEPT_YEARLY).")
    @functools.wraps(func)
    def wrapper(*args, keep: int | None, keep_daily, keep_weekly, keep_monthly, keep_yearly, **kwargs):
        if keep is not None and keep < config.MIN_BACKUPS_KEPT:
            raise ConfigurationError(
                f"--keep {keep} is below the minimum of {config.MIN_BACKUPS_KEPT}: archivist never keeps fewer "
                "backups; nothing was deleted"
            )
        calendar = {"daily": keep_daily, "weekly": keep_weekly, "monthly": keep_monthly, "yearly": keep_yearly}
        for period, count in calendar.items():
            config.parse_calendar_kept(count, f"--keep-{period}")  # named as typed, not as the variable
        return func(*args, policy=config.load_retention(keep, **calendar), **kwargs)

    return wrapper


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
    func = click.option(
        "--postgres-databases",
        metavar="NAME,...",
        help="Which of the bundle's extra PostgreSQL databases to restore; default all.",
    )(func)
    func = click.option(
        "--postgres-roles",
        is_flag=True,
        help="Create the roles the bundle defines that the target cluster lacks (existing ones are never changed).",
    )(func)
    func = click.option(
        "--postgres-jobs",
        type=click.IntRange(1, 64),
        help="Connections the PostgreSQL restore loads over, built in a scratch database and swapped in; "
        "1 restores in one psql transaction. Default: from the server's and this machine's cores.",
    )(func)
    return output_options(jobs_option(elsewhere_options(func)))


def showing(out: Output) -> Any:
    return live.showing(out, _state["handler"])


def backup_store() -> BackupStore:
    """The backup bucket of this stack."""
    return BackupStore(config.load_backups())


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
    _state["argv"] = sys.argv[1:] if argv is None else argv
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
