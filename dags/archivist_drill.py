"""archivist_drill: proves that a bundle restores, without touching the live stack.

prepare → restore → check → record, with remove_scratch as teardown. The bundle (`latest` by
default) is restored into scratch targets on the same servers: a fresh database, indices under a
scratch prefix, objects under a scratch key prefix. `check` compares them with meta.json and with
the bundle's own data (each table's rows, each index's ids, each object's sha256); `record` writes
the verdict to drills/<key>.json in the backup bucket and fails the run when anything differed;
`remove_scratch` drops every scratch target whatever happened. The logic lives in include/archivist/drill.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from archivist import config
from archivist.alerts import callbacks as alerts
from archivist.errors import ArchivistError
from archivist.task_policy import fail_fast

# The drill module, the clients and the SMTP provider are imported inside the tasks: parsing this
# file stays cheap.

# The asset the backup DAG produces with each new bundle (dags/archivist_backup.py).
BACKUPS = Asset(name="archivist_backups", group="archivist")
TIMEOUTS = config.load_timeouts()


def _schedule() -> Any:
    """ARCHIVIST_DRILL_SCHEDULE (weekly by default, or off), and with ARCHIVIST_DRILL_AFTER_BACKUP
    also after every backup that made a bundle."""
    cron = config.load_drill_schedule()
    if not config.load_drill_after_backup():
        return cron
    if cron is None:
        return [BACKUPS]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[BACKUPS])


def _store():
    from archivist.transport.backup_bucket import BackupStore

    return BackupStore(config.load_backups())


def _noted(func):
    """Keeps an archivist error's message in XCom (key `error`) before the task fails with it, so
    `record` can say why the drill failed."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ArchivistError as exc:
            get_current_context()["ti"].xcom_push(key="error", value=f"{type(exc).__name__}: {exc}")
            raise

    return run


def _scratch(plan: dict):
    from archivist.drill.scratch import ScratchTargets

    return ScratchTargets.from_dict(plan["scratch"])


@dag(
    dag_id="archivist_drill",
    description="Restore a bundle into scratch targets, compare it with the bundle, record the verdict",
    schedule=_schedule(),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=TIMEOUTS.run,
    **alerts.run_callbacks(),
    tags=["archivist", "drill"],
    default_args={
        "owner": "archivist",
        "retries": 0,
        "execution_timeout": TIMEOUTS.task,
        "on_failure_callback": alerts.on_task_failure,
    },
    params={
        "key": Param(
            "latest",
            type="string",
            minLength=1,
            description="The bundle to drill: its backup key (with or without .tgz), or 'latest'.",
        ),
        "storage_bucket": Param(
            "",
            type="string",
            description="The bucket the scratch objects go to, under a scratch prefix; empty for the storage "
            "connection's own bucket.",
        ),
    },
    doc_md=__doc__,
)
def archivist_drill():
    @task
    @fail_fast
    def prepare(params: dict) -> dict:
        """Takes the stack's lock (scratch targets must not be backed up) and names the scratch targets."""
        from archivist.drill.scratch import ScratchTargets
        from archivist.transport.operation_lock import DAG_LEASE

        store = _store()
        store.lock().acquire("restore", lease=DAG_LEASE)  # held by this run until remove_scratch
        stored = store.locate(params["key"])
        scratch = ScratchTargets.new(params["storage_bucket"].strip() or None)
        print(f"drilling {stored.key} ({stored.size} bytes) into {scratch.describe()}")
        return {"key": stored.key.name, "scratch": scratch.as_dict(), "started": time.time()}

    @task
    @fail_fast
    @_noted
    def restore(plan: dict) -> dict:
        """Verifies the bundle and restores it into the scratch targets (empty mode)."""
        from archivist.drill import run

        store = _store()
        with store.lock().alive():
            return run.restore(store, plan["key"], _scratch(plan), run.live_settings())

    @task
    @fail_fast
    @_noted
    def check(plan: dict, restored: dict) -> dict:
        """Compares the scratch targets with meta.json and with the bundle's data."""
        from archivist.drill import run

        store = _store()
        with store.lock().alive():
            problems, checked = run.check(store, restored, _scratch(plan), run.live_settings())
        return {"problems": problems, "checked": checked, "notes": run.notes(restored)}

    @task(trigger_rule="all_done")
    def record() -> dict:
        """Writes drills/<key>.json, the verdict; fails the run unless everything matched."""
        from archivist.drill import record as records
        from archivist.drill import run

        ctx = get_current_context()
        ti = ctx["ti"]
        plan = ti.xcom_pull(task_ids="prepare")
        if not plan:
            raise AirflowFailException("nothing was drilled: prepare did not finish (see its log)")
        found = ti.xcom_pull(task_ids="check")
        error = ti.xcom_pull(task_ids="restore", key="error") or ti.xcom_pull(task_ids="check", key="error")
        if found is None and error is None:
            error = "the drill did not finish: a task failed before the comparison (see the run's log)"
        verdict = run.verdict(
            plan["key"],
            None if found is None else found["problems"],
            {} if found is None else found["checked"],
            time.time() - plan["started"],
            f"{ctx['dag'].dag_id}/{ctx['run_id']}",
            None if found is not None else error,
            None if found is None else found.get("notes"),
        )
        store = _store()
        records.write(store, verdict)
        records.prune(store, {b.key.name for b in store.list_bundles()})
        print(verdict.summary())
        if not verdict.matched:
            raise AirflowFailException(f"drill of {plan['key']}: {verdict.result}: " + "; ".join(verdict.differences))
        return verdict.as_dict()

    @task(retries=0)
    def remove_scratch() -> dict:
        """Drops every scratch target, whatever happened before; then frees the lock."""
        from archivist.drill import cleanup, run

        store, plan = _store(), get_current_context()["ti"].xcom_pull(task_ids="prepare")
        try:
            if not plan:
                print("prepare did not finish, so no scratch target was made")
                return {}
            return cleanup.remove(_scratch(plan), run.live_settings())
        finally:
            store.lock().release()

    plan = prepare()
    restored = restore(plan)
    checked = check(plan, restored)
    recorded = record()
    checked >> recorded
    teardown = remove_scratch().as_teardown()
    plan >> teardown
    recorded >> teardown


archivist_drill()
