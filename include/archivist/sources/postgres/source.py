"""PostgreSQL as a Source: pg_dump out, psql back in, in one transaction per database.

A backup holds the connection's database, and optionally more databases of the same server (each
its own dump, restorable alone) and the cluster's role definitions without passwords."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from archivist import config
from archivist.config import PostgresSettings
from archivist.errors import VerificationError
from archivist.format import bundle
from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener, checksums, finish, members
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.postgres import dump_plan, job, parallel_restore, replace_drops
from archivist.transport.staging import Staging

log = logging.getLogger(__name__)


def _postgres_paths(open_bundle: BundleOpener) -> list[str]:
    """The postgres job's member paths, from meta.json's checksums, or for a bundle without
    them (the original tool's) from a pass over its members."""
    known = checksums(open_bundle)
    if known is not None:
        return sorted(p for p in known if p.startswith("jobs.postgres/"))
    return [p for p, _ in members(open_bundle, lambda p: p.startswith("jobs.postgres/"), checked=False)]


def extra_databases(paths: list[str], options: RestoreOptions) -> dict[str, str]:
    """The bundle's extra databases the restore takes: name → member path. A name a bundle could
    not have been written with is refused, since it names a database on the target."""
    found = {}
    for path in paths:
        if (name := bundle.database_of_path(path)) is None:
            continue
        if problem := config.database_name_problem(name):
            raise VerificationError(f"the bundle's PostgreSQL dump {path} names a database that {problem}")
        if options.postgres_databases is None or name in options.postgres_databases:
            found[name] = path
    missing = set(options.postgres_databases or ()) - set(found)
    if missing:
        held = ", ".join(sorted(n for p in paths if (n := bundle.database_of_path(p)))) or "none"
        raise VerificationError(
            f"the bundle holds no dump of database(s) {', '.join(sorted(missing))}; it holds extra databases: {held}"
        )
    return found


def _plan(open_bundle: BundleOpener, path: str) -> dump_plan.DumpPlan | None:
    """What the dump at `path` recreates: one extra streaming pass, for replace mode and dry runs."""
    for _, sql in members(open_bundle, lambda p: p == path):
        plan = dump_plan.scan(sql)
        finish(sql)
        return plan
    return None


class PostgresSource:
    """One database (and optionally more of the same server): what the connection's user can read,
    as plain SQL dumps. A restore drops nothing outside what a dump recreates (replace mode) or
    refuses a non-empty database."""

    name = "postgres"
    check_item = "database"
    is_dump = staticmethod(bundle.is_postgres_dump)

    load_settings = staticmethod(config.load_postgres)

    def check(self, settings: PostgresSettings) -> str:
        version = job.check_server_and_tools(settings)
        return (
            f"PostgreSQL {version}, database '{settings.dbname}' at {settings.host}:{settings.port}; "
            "pg_dump and psql fit"
        )

    def dump(self, settings: PostgresSettings, staging: Staging, backup_id: str, options: DumpOptions) -> JobResult:
        started = time.monotonic()
        main = job.dump(settings, staging, backup_id, options.postgres_privileges)
        artifacts, counts = list(main.artifacts), dict(main.counts)
        if options.postgres_roles:
            artifacts.append(job.dump_roles(settings, staging, backup_id))
        databases = {}
        for name in options.postgres_databases:
            other = dataclasses.replace(settings, dbname=name)
            path = bundle.postgres_database_path(name, backup_id)
            made = job.dump(other, staging, backup_id, options.postgres_privileges, path)
            artifacts += made.artifacts
            databases[name] = made.counts
        if databases:
            counts["databases"] = databases
        return JobResult("postgres", artifacts, counts, time.monotonic() - started, main.server_version)

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """The dumps are checked statement by statement when restored (dump_plan, psql_script);
        extra databases' names here."""
        extra_databases(list(report.members), RestoreOptions())

    def occupied(
        self,
        settings: PostgresSettings,
        report: VerifyReport,
        options: RestoreOptions,
        open_bundle: BundleOpener | None,
    ) -> list[str]:
        found = []
        targets = [settings.dbname, *extra_databases(list(report.members), options)]
        for name in targets:
            target = dataclasses.replace(settings, dbname=name)
            if name != settings.dbname and not job.database_exists(settings, name):
                continue
            tables = job.user_tables(target)
            if tables:
                found.append(f"database '{name}' holds {len(tables)} table(s)")
        return found

    def replaced(
        self,
        settings: PostgresSettings,
        report: VerifyReport,
        options: RestoreOptions,
        open_bundle: BundleOpener | None,
    ) -> list[str]:
        """What replace mode would drop in each target database, read from its catalog."""
        if open_bundle is None:
            return []
        paths = _postgres_paths(open_bundle)
        main = next((p for p in paths if self.is_dump(p)), None)
        targets = [(settings, main)] if main else []
        targets += [
            (dataclasses.replace(settings, dbname=name), path)
            for name, path in extra_databases(paths, options).items()
            if job.database_exists(settings, name)
        ]
        lines = []
        for target, path in targets:
            plan = _plan(open_bundle, path) if path else None
            lines += replace_drops.in_database(target, plan) if plan else []
        return lines

    def restore(
        self, open_bundle: BundleOpener, settings: PostgresSettings, mode: str, options: RestoreOptions, dry_run: bool
    ) -> dict[str, Any]:
        paths = _postgres_paths(open_bundle)
        main = next((p for p in paths if self.is_dump(p)), None)
        if main is None:
            raise VerificationError("the bundle has no PostgreSQL dump (jobs.postgres/postgres-<id>.sql)")
        extra = extra_databases(paths, options)
        roles = next((p for p in paths if bundle.is_postgres_roles(p)), None)
        if dry_run:
            plan = _plan(open_bundle, main)
            what = plan.describe() if plan else "nothing"
            log.info(
                "dry run: would restore %s into database %s; replace mode would drop %s", main, settings.dbname, what
            )
            return {
                "dry_run": True,
                "artifact": main,
                "schemas": plan.schemas if plan else [],
                "replace_drops": what,
                "databases": sorted(extra),
                "roles": bool(roles and options.postgres_roles),
            }
        if options.postgres_roles:
            if roles is None:
                log.warning("postgres_roles: the bundle holds no role definitions; none created")
            else:
                for _, sql in members(open_bundle, lambda p: p == roles):
                    job.restore_roles(settings, sql)
        jobs = options.postgres_jobs or parallel_restore.default_jobs(settings)
        result = self._restore_one(open_bundle, settings, main, mode, jobs)
        restored = {}
        for name, path in sorted(extra.items()):
            job.ensure_database(settings, name)
            other = dataclasses.replace(settings, dbname=name)
            restored[name] = self._restore_one(open_bundle, other, path, mode, jobs)
        if restored:
            result["databases"] = restored
        return result

    @staticmethod
    def _restore_one(
        open_bundle: BundleOpener, settings: PostgresSettings, path: str, mode: str, jobs: int
    ) -> dict[str, Any]:
        plan = _plan(open_bundle, path) if mode == "replace" else None
        for _, sql in members(open_bundle, lambda p: p == path):
            log.info("restoring %s into database %s (%s mode, %d connection(s))", path, settings.dbname, mode, jobs)
            return parallel_restore.restore(settings, sql, mode, plan, jobs)
        raise VerificationError(f"the bundle lists {path} but holds no such member")

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], options: RestoreOptions) -> list[str]:
        problems = []
        if got.get("tables") != want.get("tables"):
            problems.append(f"postgres: {got.get('tables')} tables restored, bundle has {want.get('tables')}")
        for name, restored in (got.get("databases") or {}).items():
            expected = ((want.get("databases") or {}).get(name) or {}).get("tables")
            if restored.get("tables") != expected:
                problems.append(
                    f"postgres: database {name} has {restored.get('tables')} tables restored, bundle has {expected}"
                )
        return problems
