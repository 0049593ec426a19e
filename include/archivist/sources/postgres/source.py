"""PostgreSQL as a Source: pg_dump out, psql back in, in one transaction per database.

A backup holds the connection's database, and optionally more databases of the same server (each
its own dump, restorable alone) and the cluster's role definitions without passwords."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, NamedTuple

from archivist import config
from archivist.config import PostgresSettings
from archivist.errors import VerificationError
from archivist.format import bundle
from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener, checksums, finish, members
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.postgres import dump_plan, job, parallel_restore, replace_drops, targets
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


class Target(NamedTuple):
    """One dump of the bundle and the database it is restored into."""

    settings: PostgresSettings  # the connection's, with the target database
    path: str  # the dump's member path
    origin: str | None  # the extra database it was backed up from; None for the connection's own


def restore_targets(settings: PostgresSettings, paths: list[str], options: RestoreOptions) -> list[Target]:
    """Each dump the restore takes with its target database: the connection's own dump first."""
    main = next((p for p in paths if bundle.is_postgres_dump(p)), None)
    into = targets.main_target(options, settings.dbname)
    found = [Target(dataclasses.replace(settings, dbname=into), main, None)] if main else []
    extra = extra_databases(paths, options)
    held = list(extra_databases(paths, RestoreOptions()))
    for name, target in targets.extra_targets(extra, held, options, into).items():
        found.append(Target(dataclasses.replace(settings, dbname=target), extra[name], name))
    return found


def _plan(open_bundle: BundleOpener, path: str) -> dump_plan.DumpPlan | None:
    """What the dump at `path` recreates: one extra streaming pass, for dry runs and a replace in
    one transaction."""
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

    def check_options(self, options: RestoreOptions) -> None:
        targets.check_options(options)

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
        for target in restore_targets(settings, list(report.members), options):
            name = target.settings.dbname
            if name != settings.dbname and not job.database_exists(settings, name):
                continue
            tables = job.user_tables(target.settings)
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
        lines = []
        for target in restore_targets(settings, _postgres_paths(open_bundle), options):
            if target.settings.dbname != settings.dbname and not job.database_exists(settings, target.settings.dbname):
                continue
            plan = _plan(open_bundle, target.path)
            lines += replace_drops.in_database(target.settings, plan) if plan else []
        return lines

    def restore(
        self, open_bundle: BundleOpener, settings: PostgresSettings, mode: str, options: RestoreOptions, dry_run: bool
    ) -> dict[str, Any]:
        paths = _postgres_paths(open_bundle)
        if not any(self.is_dump(p) for p in paths):
            raise VerificationError("the bundle has no PostgreSQL dump (jobs.postgres/postgres-<id>.sql)")
        self.check_options(options)
        main, *extra = restore_targets(settings, paths, options)
        roles = next((p for p in paths if bundle.is_postgres_roles(p)), None)
        if dry_run:
            plan = _plan(open_bundle, main.path)
            what = plan.describe() if plan else "nothing"
            log.info(
                "dry run: would restore %s into database %s; replace mode would drop %s",
                main.path,
                main.settings.dbname,
                what,
            )
            return {
                "dry_run": True,
                "artifact": main.path,
                "database": main.settings.dbname,
                "schemas": plan.schemas if plan else [],
                "replace_drops": what,
                "databases": sorted(t.settings.dbname for t in extra),
                "roles": bool(roles and options.postgres_roles),
            }
        if options.postgres_roles:
            if roles is None:
                log.warning("postgres_roles: the bundle holds no role definitions; none created")
            else:
                for _, sql in members(open_bundle, lambda p: p == roles):
                    job.restore_roles(settings, sql)
        jobs = options.postgres_jobs or parallel_restore.default_jobs(settings)
        if main.settings.dbname != settings.dbname:
            job.ensure_database(settings, main.settings.dbname)
        result = self._restore_one(open_bundle, main.settings, main.path, mode, jobs)
        if main.settings.dbname != settings.dbname:
            result["database"] = main.settings.dbname
        restored = {}
        for target in sorted(extra, key=lambda t: t.settings.dbname):
            name = target.settings.dbname
            job.ensure_database(settings, name)
            restored[name] = self._restore_one(open_bundle, target.settings, target.path, mode, jobs)
            if target.origin != name:
                restored[name]["from"] = target.origin
        if restored:
            result["databases"] = restored
        return result

    @staticmethod
    def _restore_one(
        open_bundle: BundleOpener, settings: PostgresSettings, path: str, mode: str, jobs: int
    ) -> dict[str, Any]:
        # One transaction needs replace mode's drops before the dump; a parallel restore reads them
        # with it, and asks `plan_of` only if it must fall back to one transaction.
        plan = _plan(open_bundle, path) if mode == "replace" and jobs <= 1 else None
        for _, sql in members(open_bundle, lambda p: p == path):
            log.info("restoring %s into database %s (%s mode, %d connection(s))", path, settings.dbname, mode, jobs)
            return parallel_restore.restore(settings, sql, mode, plan, jobs, plan_of=lambda: _plan(open_bundle, path))
        raise VerificationError(f"the bundle lists {path} but holds no such member")

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], options: RestoreOptions) -> list[str]:
        problems = []
        if got.get("tables") != want.get("tables"):
            problems.append(f"postgres: {got.get('tables')} tables restored, bundle has {want.get('tables')}")
        for target, restored in (got.get("databases") or {}).items():
            name = restored.get("from", target)  # meta.json counts each database under its own name
            expected = ((want.get("databases") or {}).get(name) or {}).get("tables")
            if restored.get("tables") != expected:
                problems.append(
                    f"postgres: database {name}{'' if name == target else f' (into {target})'} has "
                    f"{restored.get('tables')} tables restored, bundle has {expected}"
                )
        return problems
