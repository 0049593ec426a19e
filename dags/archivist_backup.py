"""archivist_backup: a full logical backup of the stack, bundled into the backup bucket.

check → [postgres, elasticsearch, storage] → bundle_and_upload → rotate, with
cleanup_staging as teardown. Jobs hand their artifacts over through a
staging prefix of the backup bucket, never through local files, so each task
may run on a different worker. With the param `split`, or on its own for a
large stack, elasticsearch and storage are each spread over mapped tasks
(split_<job> → <job>_part[n]), by index (a large one by slice) and by key range, and
bundle_and_upload joins the parts. The logic lives in include/archivist.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from archivist import config, task_policy
from archivist.alerts import callbacks as alerts
from archivist.format.bundle import BackupKey, JobResult
from archivist.task_policy import fail_fast

# The runner, the clients and the SMTP provider are imported inside the tasks and callbacks:
# parsing this file stays cheap.

JOB_RETRIES = task_policy.job_retries()
SPLIT_JOBS = ("elasticsearch", "storage")  # as runner/split.py; not imported: parsing stays cheap


def _store():
    from archivist.transport.backup_bucket import BackupStore

    return BackupStore(config.load_backups())


def _retention(params: dict):
    """Rotation's rules from the run's params; a calendar param left empty falls back to its variable."""
    return config.load_retention(params["keep"], **{p: params.get(f"keep_{p}") for p in config.CALENDAR_KEPT})


# What a finished backup produces: downstream DAGs can be scheduled on it, and each event carries
# the bundle's key, object, size and counts as its extra (the README shows such a DAG).
# Named only: a URI scheme would make Airflow load every provider's URI handlers (boto3 among them)
# at each parse of this file.
BACKUPS = Asset(name="archivist_backups", group="archivist")

# A hung run would hold back every later one (each DAG runs one at a time): Airflow stops it.
TIMEOUTS = config.load_timeouts()


def _options(plan: dict):
    from archivist.sources.base import DumpOptions

    return DumpOptions(
        plan["index_pattern"],
        plan["closed_indices"],
        tuple(plan["mappings_only"]),
        plan["postgres_privileges"],
        tuple(plan["postgres_databases"]),
        plan["postgres_roles"],
    )


def _dump(job: str, plan: dict, options) -> dict:
    from archivist.runner import backup

    key, store = BackupKey.parse(plan["key"]), _store()
    settings = backup.load_job_settings(job)
    return backup.run_job(job, key, store.staging(key), settings, options, store.lock()).as_dict()


@fail_fast
def _run_job(job: str, plan: dict, parts: list | None = None) -> dict:
    """One job's task: streams its source into the run's staging prefix of the backup bucket."""
    if job not in plan["jobs"]:
        raise AirflowSkipException(f"job {job} was not selected")
    if parts:
        raise AirflowSkipException(f"job {job} runs in {len(parts)} parts ({job}_part)")
    return _dump(job, plan, _options(plan))


@fail_fast
def _run_part(job: str, plan: dict, part: dict) -> dict:
    """One part of a split job (a mapped task): its indices, or its range of keys, into its own
    folder of the staging prefix."""
    from archivist.runner import split

    return _dump(job, plan, split.part_options(_options(plan), job, part))


@fail_fast
def _split(job: str, plan: dict, params: dict) -> list[dict]:
    """Which part of the job each mapped task takes; [] keeps the job one task."""
    if job not in plan["jobs"] or params["split"] == 1:
        return []
    from archivist.runner import backup, split

    settings = backup.load_job_settings(job)
    if job == "elasticsearch":
        parts = split.plan_elasticsearch(settings, _options(plan), params["split"])
    else:
        parts = split.plan_storage(settings, params["split"])
    print(f"{job}: {len(parts) or 1} part(s)")
    return parts


@dag(
    dag_id="archivist_backup",
    description="Logical backup of PostgreSQL, Elasticsearch and object storage into one bundle",
    schedule=config.load_cron_schedule(),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=TIMEOUTS.run,
    # A mail when the run is still not done well before its time limit (ARCHIVIST_DEADLINE_HOURS).
    deadline=alerts.deadline_alert(TIMEOUTS.run),
    **alerts.run_callbacks(),
    tags=["archivist", "backup"],
    default_args={
        "owner": "archivist",
        "retries": 1,
        "retry_delay": task_policy.retry_delay(),
        "execution_timeout": TIMEOUTS.task,
        "on_failure_callback": alerts.on_task_failure,
    },
    params={
        "jobs": Param(
            list(config.JOBS),
            type="array",
            items={"type": "string", "enum": list(config.JOBS)},
            description="Which jobs to back up: postgres, elasticsearch, storage (default all three).",
        ),
        "keep": Param(
            config.DEFAULT_BACKUPS_KEPT,
            type="integer",
            minimum=config.MIN_BACKUPS_KEPT,
            description="How many bundles rotation keeps (the spec's BACKUPS_KEPT; at least 7).",
        ),
        **{
            f"keep_{period}": Param(
                None,
                type=["null", "integer"],
                minimum=0,
                description=f"Rotation also keeps the newest bundle of each of this many {unit} (restic's "
                f"--keep-{period}); empty: the {variable} variable, else 0 (off).",
            )
            for period, unit, variable in (
                ("daily", "days", "BACKUPS_KEPT_DAILY"),
                ("weekly", "ISO weeks", "BACKUPS_KEPT_WEEKLY"),
                ("monthly", "months", "BACKUPS_KEPT_MONTHLY"),
                ("yearly", "years", "BACKUPS_KEPT_YEARLY"),
            )
        },
        "index_pattern": Param(
            "*",
            type="string",
            description="Elasticsearch indices to back up; hidden and dot-indices are always left out.",
        ),
        "closed_indices": Param(
            config.CLOSED_INDICES[0],
            type="string",
            enum=list(config.CLOSED_INDICES),
            description="A closed index matching index_pattern: refuse (the backup fails naming it) or "
            "open (opened for reading, closed again, restored closed).",
        ),
        "mappings_only": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Indices (names or patterns) backed up as settings and mappings without documents: "
            "for an index whose _source is disabled or filtered, which otherwise fails the backup.",
        ),
        "postgres_privileges": Param(
            False,
            type="boolean",
            description="Keep owners and privileges (ownership, GRANTs, default privileges) in the PostgreSQL "
            "dump, for restores into a cluster where the same roles exist.",
        ),
        "postgres_databases": Param(
            [],
            type="array",
            items={"type": "string"},
            description="More databases of the PostgreSQL server to back up beside the connection's own, each "
            "its own dump, restorable alone.",
        ),
        "postgres_roles": Param(
            False,
            type="boolean",
            description="Also back up the cluster's role definitions and memberships, without passwords "
            "(pg_dumpall --roles-only); a restore applies them only when asked.",
        ),
        "split": Param(
            0,
            type="integer",
            minimum=0,
            maximum=16,
            description="Spread elasticsearch and storage each over up to this many tasks (by index, by key "
            "range), which any worker may run: 0 chooses by the data (a part per 20 indices or 50,000 "
            "objects, so a small stack stays one task per source), 1 never splits.",
        ),
        "rotation_dry_run": Param(
            False,
            type="boolean",
            description="Log which rules keep each bundle and which old bundles rotation would delete; delete none.",
        ),
    },
    doc_md=__doc__,
)
def archivist_backup():
    @task(retries=0)
    @fail_fast
    def check(params: dict) -> dict:
        """Every connection and bucket reachable, pg_dump new enough; fails in seconds otherwise."""
        from archivist.runner import checks

        jobs = config.parse_jobs(params["jobs"])
        results = checks.run_checks(jobs, backups=True, keep=_retention(params))
        for result in results:
            print(result.line())
        checks.require(results)
        from archivist.transport.operation_lock import DAG_LEASE

        store = _store()
        store.lock().acquire("backup", lease=DAG_LEASE)  # held by this run until cleanup_staging
        store.sweep_stale_staging()
        key = BackupKey.new()
        print(f"backup key: {key}")
        return {
            "key": key.name,
            "jobs": list(jobs),
            "index_pattern": params["index_pattern"],
            "closed_indices": config.parse_closed_indices(params["closed_indices"]),
            "mappings_only": list(config.parse_index_patterns(params["mappings_only"])),
            "postgres_privileges": bool(params["postgres_privileges"]),
            "postgres_databases": list(config.parse_postgres_databases(params["postgres_databases"])),
            "postgres_roles": bool(params["postgres_roles"]),
        }

    @task(trigger_rule="none_failed", outlets=[BACKUPS])
    @fail_fast
    def bundle_and_upload(plan: dict, *job_results: dict | list | None) -> dict:
        """Streams the staged artifacts into the bundle, uploaded under its final name only when whole;
        a split job's parts (each mapped task's result in a list) are joined on the way."""
        from archivist.runner import backup

        ctx = get_current_context()
        flat = [r for got in job_results if got for r in ([got] if isinstance(got, dict) else got)]
        results = [JobResult.from_dict(r) for r in flat if r]
        store, key = _store(), BackupKey.parse(plan["key"])
        uploaded = backup.upload(
            store, key, results, config.load_namespace(), ctx["dag"].dag_id, ctx["run_id"], store.lock()
        )
        ctx["outlet_events"][BACKUPS].extra = {k: uploaded[k] for k in ("key", "object", "encrypted", "size", "counts")}
        return uploaded

    @task
    @fail_fast
    def rotate(uploaded: dict, params: dict) -> list[str]:
        deleted = _store().rotate(_retention(params), protect={uploaded["key"]}, dry_run=params["rotation_dry_run"])
        return [b.key.name for b in deleted]

    @task(retries=0)
    def cleanup_staging() -> int:
        """Removes what a failed or retried run left in staging (a successful run left nothing),
        closes the points in time of sliced indices (bundle_and_upload closed them, unless it did
        not run), then frees the lock this run holds."""
        ti = get_current_context()["ti"]
        store, plan = _store(), ti.xcom_pull(task_ids="check")
        try:
            if not plan:
                print("check did not finish, so nothing was staged")
                return 0
            from archivist.runner import slicing

            slicing.close_points_in_time(slicing.planned_points_in_time(ti.xcom_pull(task_ids="split_elasticsearch")))
            key = BackupKey.parse(plan["key"])
            store.abort_unfinished_bundle(key)
            return store.staging(key).cleanup()
        finally:
            store.lock().release()

    plan = check()
    parts = {job: task(task_id=f"split_{job}")(_split)(job, plan) for job in SPLIT_JOBS}
    jobs = [task(task_id=job, **JOB_RETRIES)(_run_job)(job, plan, parts.get(job)) for job in config.JOBS]
    mapped = [
        task(task_id=f"{job}_part", **JOB_RETRIES)(_run_part).partial(job=job, plan=plan).expand(part=parts[job])
        for job in SPLIT_JOBS
    ]
    uploaded = bundle_and_upload(plan, *jobs, *mapped)
    teardown = cleanup_staging().as_teardown()
    plan >> teardown
    rotate(uploaded) >> teardown


archivist_backup()
