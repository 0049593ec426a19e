"""archivist_restore: restores a bundle, chosen by its key, into the stack.

locate → verify → [restore_postgres, restore_elasticsearch, restore_storage] → report.
Nothing is written before `verify` has checked every artifact of the bundle.
Each restore job streams its own members from the backup bucket.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from archivist import config, modes
from archivist.alerts import callbacks as alerts
from archivist.format.bundle import BackupKey
from archivist.task_policy import fail_fast

# The runner, the clients and the SMTP provider are imported inside the tasks and callbacks:
# parsing this file stays cheap.


def _store():
    from archivist.transport.backup_bucket import BackupStore

    return BackupStore(config.load_backups())


def _opener(located: dict, verified: dict | None = None):
    """The bundle, pinned to the ETag `verify` saw once it has run: a replaced object fails."""
    store, key = _store(), BackupKey.parse(located["key"])
    return store.bundle_source(key, etag=(verified or {}).get("etag"), encrypted=located.get("encrypted", False))


# A hung run would hold back every later one (each DAG runs one at a time): Airflow stops it.
TIMEOUTS = config.load_timeouts()


@fail_fast
def _restore_job(job: str, located: dict, verified: dict, params: dict) -> dict:
    """One job's restore task: streams its own members of the bundle into its target."""
    if job not in config.parse_jobs(params["jobs"]):
        raise AirflowSkipException(f"job {job} was not selected")
    if job not in verified["jobs"]:
        raise AirflowSkipException(f"the bundle holds no {job} backup")
    from archivist.runner import restore

    return restore.restore_job(
        job,
        _opener(located, verified),
        restore.load_settings(job),
        params["mode"],
        _options(params),
        params["dry_run"],
        None if params["dry_run"] else _store().lock(),
    )


def _options(params: dict):
    """The run's RestoreOptions from its params."""
    from archivist.sources.base import RestoreOptions

    return RestoreOptions(
        indices=params["indices"] or None,
        postgres_databases=tuple(params["postgres_databases"]) or None,
        postgres_roles=bool(params["postgres_roles"]),
    )


@dag(
    dag_id="archivist_restore",
    description="Restore a bundle from the backup bucket, verified first",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=TIMEOUTS.run,
    **alerts.run_callbacks(),
    tags=["archivist", "restore"],
    default_args={
        "owner": "archivist",
        "retries": 0,
        "execution_timeout": TIMEOUTS.task,
        "on_failure_callback": alerts.on_task_failure,
    },
    params={
        "key": Param(
            type="string",
            minLength=1,
            description="Backup key, e.g. bundle-2026-11-26-qQUXdfPnayQ (with or without .tgz), or 'latest'.",
        ),
        "jobs": Param(
            list(config.JOBS),
            type="array",
            items={"type": "string", "enum": list(config.JOBS)},
            description="Which jobs to restore: postgres, elasticsearch, storage (default all).",
        ),
        "indices": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Elasticsearch index patterns to restore (e.g. products, logs-*); empty for all.",
        ),
        "postgres_databases": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Which of the bundle's extra PostgreSQL databases to restore, each into the database "
            "of the same name (created if missing); empty for all. The connection's database always is.",
        ),
        "postgres_roles": Param(
            False,
            type="boolean",
            description="Create the roles the bundle defines (if it holds them) that the target cluster lacks; "
            "existing roles are never changed.",
        ),
        "mode": Param("empty", type="string", enum=list(modes.MODES), description=modes.MODE_HELP),
        "allow_unchecked": Param(False, type="boolean", description=modes.UNCHECKED_HELP),
        "dry_run": Param(False, type="boolean", description="Verify and report what would be restored; write nothing."),
    },
    doc_md=__doc__,
)
def archivist_restore():
    @task
    @fail_fast
    def locate(params: dict) -> dict:
        """Resolves the key (or 'latest'); an unknown key lists the closest ones."""
        found = _store().locate(params["key"])
        print(f"restoring {found.key} ({found.size} bytes{', encrypted with age' if found.encrypted else ''})")
        return found.as_dict()

    @task
    @fail_fast
    def verify(located: dict, params: dict) -> dict:
        """Checks every artifact against meta.json, and in `empty` mode that every target is
        empty, before any target is touched."""
        from archivist.runner import restore

        if not params["dry_run"]:  # held by this run until release_lock
            from archivist.transport.operation_lock import DAG_LEASE

            _store().lock().acquire("restore", lease=DAG_LEASE)
        source = _opener(located)
        report = restore.verify(source, params.get("allow_unchecked", False))
        if params["mode"] == "empty" and not params["dry_run"]:
            jobs = config.parse_jobs(params["jobs"])
            settings = {job: restore.load_settings(job) for job in jobs if job in report.jobs}
            restore.require_empty(restore.refuse_non_empty(report, jobs, settings, _options(params), source))
        return restore.summary(report, located["key"], source.pin)

    @task(trigger_rule="none_failed")
    def report(
        verified: dict, params: dict, postgres: dict | None, elasticsearch: dict | None, storage: dict | None
    ) -> dict:
        """Compares what was restored with meta.json's counts; any difference fails the run."""
        from archivist.runner import restore

        restored = {"postgres": postgres, "elasticsearch": elasticsearch, "storage": storage}
        problems = restore.compare(verified["counts"], restored, _options(params))
        for job, got in restored.items():
            print(f"{job}: {got if got is not None else 'skipped'}")
        if problems:
            raise AirflowFailException("restore does not match the bundle: " + "; ".join(problems))
        return {"key": verified["key"], "restored": restored}

    @task(retries=0)
    def release_lock() -> bool:
        """Frees the lock this run took in verify, whether the restore succeeded or not."""
        return _store().lock().release()

    located = locate()
    verified = verify(located)
    reported = report(
        verified, **{job: task(task_id=f"restore_{job}")(_restore_job)(job, located, verified) for job in config.JOBS}
    )
    reported >> release_lock().as_teardown()


archivist_restore()
