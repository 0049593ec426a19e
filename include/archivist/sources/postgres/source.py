"""PostgreSQL as a Source: pg_dump out, psql back in, in one transaction."""

from __future__ import annotations

import logging
from typing import Any

from archivist import config
from archivist.config import PostgresSettings
from archivist.errors import VerificationError
from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener, finish, members
from archivist.sources.base import Patterns
from archivist.sources.postgres import dump_plan, job, replace_drops
from archivist.transport.staging import Staging

log = logging.getLogger(__name__)


class PostgresSource:
    """One database: what the connection's user can read of it, as one plain SQL dump. A restore
    drops nothing outside what the dump recreates (replace mode) or refuses a non-empty database."""

    name = "postgres"
    check_item = "database"
    is_dump = staticmethod(lambda path: path.startswith("jobs.postgres/") and path.endswith(".sql"))

    load_settings = staticmethod(config.load_postgres)

    def check(self, settings: PostgresSettings) -> str:
        version = job.check_server_and_tools(settings)
        return (
            f"PostgreSQL {version}, database '{settings.dbname}' at {settings.host}:{settings.port}; "
            "pg_dump and psql fit"
        )

    def dump(self, settings: PostgresSettings, staging: Staging, backup_id: str, index_pattern: str = "*") -> JobResult:
        return job.dump(settings, staging, backup_id)

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """The dump is checked statement by statement when it is restored (dump_plan, psql_script)."""

    def occupied(
        self, settings: PostgresSettings, report: VerifyReport, patterns: Patterns, open_bundle: BundleOpener | None
    ) -> list[str]:
        tables = job.user_tables(settings)
        return [f"database '{settings.dbname}' holds {len(tables)} table(s)"] if tables else []

    def replaced(
        self, settings: PostgresSettings, report: VerifyReport, patterns: Patterns, open_bundle: BundleOpener | None
    ) -> list[str]:
        plan = self._plan(open_bundle) if open_bundle is not None else None
        return replace_drops.in_database(settings, plan) if plan else []

    def _plan(self, open_bundle: BundleOpener) -> dump_plan.DumpPlan | None:
        """What the dump recreates: one streaming pass over it."""
        for _, sql in members(open_bundle, self.is_dump):
            plan = dump_plan.scan(sql)
            finish(sql)
            return plan
        return None

    def restore(
        self, open_bundle: BundleOpener, settings: PostgresSettings, mode: str, patterns: Patterns, dry_run: bool
    ) -> dict[str, Any]:
        plan = None
        if mode == "replace" or dry_run:  # one extra streaming pass to learn what the dump recreates
            plan = self._plan(open_bundle)
        for path, sql in members(open_bundle, self.is_dump):
            if dry_run:
                what = plan.describe() if plan else "nothing"
                log.info(
                    "dry run: would restore %s into database %s; replace mode would drop %s",
                    path,
                    settings.dbname,
                    what,
                )
                return {
                    "dry_run": True,
                    "artifact": path,
                    "schemas": plan.schemas if plan else [],
                    "replace_drops": what,
                }
            log.info("restoring %s into database %s (%s mode)", path, settings.dbname, mode)
            return job.restore(settings, sql, mode, plan=plan)
        raise VerificationError("the bundle has no PostgreSQL dump (jobs.postgres/postgres-<id>.sql)")

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], patterns: Patterns) -> list[str]:
        if got.get("tables") != want.get("tables"):
            return [f"postgres: {got.get('tables')} tables restored, bundle has {want.get('tables')}"]
        return []
