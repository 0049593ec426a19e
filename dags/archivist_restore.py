"""archivist_restore: restores a bundle, chosen by its key, into the stack.

verify → [restore_postgres, restore_elasticsearch, restore_storage] → report.
`verify` resolves the key, then checks every artifact of the bundle: nothing is written before.
Each restore job streams its own members from the backup bucket. With the param
`split`, or on its own for a bundle made in parts, elasticsearch and storage are
each spread over mapped tasks (split_<job> → restore_<job>_part[n]), by index
and by archive.
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


def _opener(found: dict):
    """The bundle `found` names; once verify has run, its result carries the ETag verify saw and
    every read is pinned to it, so that a replaced object fails."""
    store, key = _store(), BackupKey.parse(found["key"])
    return store.bundle_source(key, etag=found.get("etag"), encrypted=found.get("encrypted", False))


# A hung run would hold back every later one (each DAG runs one at a time): Airflow stops it.
TIMEOUTS = config.load_timeouts()


SPLIT_JOBS = ("elasticsearch", "storage")  # as runner/split.py; not imported: parsing stays cheap


def _selected(job: str, verified: dict, params: dict) -> None:
    if job not in config.parse_jobs(params["jobs"]):
        raise AirflowSkipException(f"job {job} was not selected")
    if job not in verified["jobs"]:
        raise AirflowSkipException(f"the bundle holds no {job} backup")


def _restore(job: str, verified: dict, params: dict, mode: str, options) -> dict:
    from archivist.runner import restore

    return restore.restore_job(
        job,
        _opener(verified),
        _settings(job, params),
        mode,
        options,
        params["dry_run"],
        None if params["dry_run"] else _store().lock(),
    )


@fail_fast
def _restore_job(job: str, verified: dict, params: dict) -> dict:
    """One job's restore task: streams its own members of the bundle into its target. It plans
    as split_<job> does rather than waiting for it, so every job starts right after verify."""
    _selected(job, verified, params)
    if job in SPLIT_JOBS and (parts := _parts(job, verified, params)):
        raise AirflowSkipException(f"job {job} is restored in {len(parts)} parts (restore_{job}_part)")
    return _restore(job, verified, params, params["mode"], _options(params))


def _parts(job: str, verified: dict, params: dict) -> list[dict]:
    from archivist.runner import split

    return split.restore_parts(job, verified.get("data_members", []), params["split"])


@fail_fast
def _split(job: str, verified: dict, params: dict) -> list[dict]:
    """Which part of the job each mapped restore task takes; [] keeps the job one task."""
    _selected(job, verified, params)
    parts = _parts(job, verified, params)
    print(f"{job}: {len(parts) or 1} part(s)")
    return parts


@fail_fast
def _restore_part(job: str, verified: dict, params: dict, part: dict) -> dict:
    """One part of a spread restore (a mapped task): its indices, or its archive. In `empty` mode
    verify found every target empty; the parts then write beside each other's work as `replace`
    would, each into what only it restores."""
    from archivist.runner import split

    options = split.restore_part_options(_options(params), job, part)
    if options is None:
        raise AirflowSkipException(f"none of part {part['part']}'s indices was chosen")
    mode = "replace" if params["mode"] == "empty" else params["mode"]
    return _restore(job, verified, params, mode, options)


def _options(params: dict):
    """The run's RestoreOptions from its params."""
    from archivist.sources.base import RestoreOptions

    return RestoreOptions(
        indices=params["indices"] or None,
        postgres_databases=tuple(params["postgres_databases"]) or None,
        postgres_roles=bool(params["postgres_roles"]),
        postgres_database=params.get("postgres_database") or None,
        postgres_database_map=config.parse_rename_map(params.get("postgres_database_map"), "postgres_database_map"),
        index_prefix=params.get("index_prefix") or "",
        index_rename=config.parse_rename_map(params.get("index_rename"), "index_rename"),
        skip_aliases=bool(params.get("skip_aliases")),
        skip_templates=bool(params.get("skip_templates")),
        storage_bucket=params.get("storage_bucket") or None,
        storage_prefix=params.get("storage_prefix") or "",
        postgres_jobs=params.get("postgres_jobs"),
    )


def _settings(job: str, params: dict):
    """The target settings of `job`: the connection its `<job>_conn_id` param names, or the default."""
    from archivist.runner import restore

    return restore.load_settings(job, params.get(f"{job}_conn_id") or None)


def _text(description: str) -> Param:
    """An optional text: the form sends null for an empty field, which the null type accepts."""
    return Param(None, type=["null", "string"], description=description)


def _pairs(description: str) -> Param:
    return Param([], type="array", items={"type": "string"}, description=description)


def _flag(description: str) -> Param:
    return Param(False, type="boolean", description=description)


def _conn(job: str, default: str) -> Param:
    return _text(f"Airflow connection to restore {job} through; empty for {default} (or the spec's variables).")


def _elsewhere_params() -> dict[str, Param]:
    """The params of a restore into other targets than the ones backed up; all empty by default."""
    return {
        "postgres_database": _text(
            "Restore the connection's own database dump into this database instead (created if missing)."
        ),
        "postgres_database_map": _pairs(
            "Extra databases of the bundle restored into other databases, each as old=new (created if missing)."
        ),
        "index_prefix": _text(
            "Restore every index, alias and template under this prefix (templates' index patterns too), e.g. restored-."
        ),
        "index_rename": _pairs(
            "New names for indices, aliases, templates or index patterns, each as old=new; wins over index_prefix."
        ),
        "skip_aliases": _flag("Restore no aliases, neither the indices' nor the templates'."),
        "skip_templates": _flag("Restore no index, component or legacy templates."),
        "storage_bucket": _text("Restore the objects into this bucket instead (it must exist); empty for the same."),
        "storage_prefix": _text("Put this prefix before each restored object's key, e.g. restored/."),
        "postgres_conn_id": _conn("PostgreSQL", config.POSTGRES_CONN_ID),
        "elasticsearch_conn_id": _conn("Elasticsearch", config.ELASTICSEARCH_CONN_ID),
        "storage_conn_id": _conn("storage", config.STORAGE_CONN_ID),
    }


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
        "postgres_jobs": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=64,
            description="Connections the PostgreSQL restore loads over, built in a scratch database and swapped "
            "in when whole; 1 restores in one psql transaction. Empty: from the server's and the worker's cores.",
        ),
        "mode": Param("empty", type="string", enum=list(modes.MODES), description=modes.MODE_HELP),
        "allow_unchecked": Param(False, type="boolean", description=modes.UNCHECKED_HELP),
        "dry_run": Param(False, type="boolean", description="Verify and report what would be restored; write nothing."),
        **_elsewhere_params(),
        "split": Param(
            0,
            type="integer",
            minimum=0,
            maximum=16,
            description="Spread elasticsearch (by index) and storage (by archive) over up to this many tasks, "
            "which any worker may run: 0 chooses by the bundle (a part per 20 indices; a bundle made in "
            "parts is restored in its parts), 1 never splits.",
        ),
    },
    doc_md=__doc__,
)
def archivist_restore():
    @task
    @fail_fast
    def verify(params: dict) -> dict:
        """Resolves the key (or 'latest'; an unknown key lists the closest ones), then checks every
        artifact against meta.json, and in `empty` mode that every target is empty, before any
        target is touched. One task, not two: each task on the way to the jobs costs a start-up."""
        from archivist.runner import restore

        restore.check_options(_options(params), config.parse_jobs(params["jobs"]))
        found = _store().locate(params["key"])
        print(f"restoring {found.key} ({found.size} bytes{', encrypted with age' if found.encrypted else ''})")
        located = found.as_dict()
        if not params["dry_run"]:  # held by this run until release_lock
            from archivist.transport.operation_lock import DAG_LEASE

            _store().lock().acquire("restore", lease=DAG_LEASE)
        source = _opener(located)
        report = restore.verify(source, params.get("allow_unchecked", False))
        if params["mode"] == "empty" and not params["dry_run"]:
            jobs = config.parse_jobs(params["jobs"])
            settings = {job: _settings(job, params) for job in jobs if job in report.jobs}
            restore.require_empty(restore.refuse_non_empty(report, jobs, settings, _options(params), source))
        return {**located, **restore.summary(report, located["key"], source.pin)}

    @task(trigger_rule="none_failed")
    def report(
        verified: dict,
        params: dict,
        postgres: dict | None,
        elasticsearch: dict | None,
        storage: dict | None,
        elasticsearch_parts: list | None = None,
        storage_parts: list | None = None,
    ) -> dict:
        """Compares what was restored with meta.json's counts; any difference fails the run."""
        from archivist.runner import restore, split

        restored = {
            "postgres": postgres,
            "elasticsearch": elasticsearch or split.joined_restore("elasticsearch", elasticsearch_parts),
            "storage": storage or split.joined_restore("storage", storage_parts),
        }
        problems = restore.compare(verified["counts"], restored, _options(params))
        for job, got in restored.items():
            print(f"{job}: {got if got is not None else 'skipped'}")
        if problems:
            raise AirflowFailException("restore does not match the bundle: " + "; ".join(problems))
        return {"key": verified["key"], "restored": restored}

    @task(retries=0)
    def release_lock() -> bool:
        """Frees the lock this run took in verify, whether the restore succeeded or not, once no
        job writes: beside report, which only compares counts, so the run does not wait for both."""
        return _store().lock().release()

    verified = verify()
    parts = {job: task(task_id=f"split_{job}")(_split)(job, verified) for job in SPLIT_JOBS}
    whole = {job: task(task_id=f"restore_{job}")(_restore_job)(job, verified) for job in config.JOBS}
    mapped = {
        f"{job}_parts": task(task_id=f"restore_{job}_part")(_restore_part)
        .partial(job=job, verified=verified)
        .expand(part=parts[job])
        for job in SPLIT_JOBS
    }
    report(verified, **whole, **mapped)
    [*whole.values(), *mapped.values()] >> release_lock().as_teardown()


archivist_restore()
