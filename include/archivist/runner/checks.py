"""The pre-flight check: every setting present and valid, every server and bucket reachable.

Used by the DAGs' first task and by `archivist check` / `simple-check`. Each
item gives one line, so a user sees everything wrong at once, not just the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from archivist import config
from archivist.errors import ArchivistError, ConfigurationError
from archivist.retention import RetentionPolicy
from archivist.sources import registry
from archivist.sources.base import Source
from archivist.transport.backup_bucket import BackupStore


@dataclass
class CheckResult:
    """One checked item: what it is, whether it passed, and what was found or is wrong."""

    item: str
    ok: bool
    detail: str
    exit_code: int = 0

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.item}: {self.detail}"


def _run(item: str, probe: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(item, True, probe())
    except ArchivistError as exc:
        return CheckResult(item, False, str(exc), exc.exit_code)
    except Exception as exc:  # an unexpected failure is still one line, not a traceback
        return CheckResult(item, False, f"{type(exc).__name__}: {exc}", 1)


def _probe(source: Source, conn_id: str | None) -> str:
    return source.check(source.load_settings(conn_id))


def _backups(conn_id: str) -> str:
    settings = config.load_backups(conn_id)
    BackupStore(settings).check()
    return f"bucket '{settings.bucket}' at {settings.endpoint_url or 'AWS S3'}"


def _backups_kept(keep: RetentionPolicy | int | str | None) -> str:
    policy = keep if isinstance(keep, RetentionPolicy) else config.load_retention(keep)
    calendar = ", ".join(f"{name} {count}" for name, count in policy.rules() if name != "last")
    return f"{policy.last} backups kept" + (f", and by the calendar: {calendar}" if calendar else "")


def run_checks(
    jobs: tuple[str, ...] = config.JOBS,
    backups: bool = True,
    keep: RetentionPolicy | int | str | None = None,
    conn_ids: config.ConnIds | None = None,
) -> list[CheckResult]:
    """Checks what a backup or restore of `jobs` needs; `backups=False` for the simple commands."""
    ids = conn_ids or config.conn_ids()
    results = []
    if backups:
        results.append(_run("BACKUPS_KEPT", lambda: _backups_kept(keep)))
    for job in jobs:
        source = registry.source(job)
        # without conn_ids, the spec's variables win over the default connection, as in a backup
        named = getattr(conn_ids, job) if conn_ids else None
        results.append(_run(source.check_item, partial(_probe, source, named)))
    if backups:
        results.append(_run("backup bucket", lambda: _backups(ids.backups)))
    return results


def require(results: list[CheckResult]) -> None:
    """Raises one error listing every failed item."""
    failed = [r for r in results if not r.ok]
    if failed:
        error = ConfigurationError("check failed:\n" + "\n".join(r.line() for r in failed))
        error.exit_code = max(r.exit_code for r in failed)
        raise error
