"""Retry by error type, in real runs of archivist_backup (`airflow dags test`, backing up
PostgreSQL alone, the first retry after 1 s): a configuration error fails its task at its first
try, with no retry; a server connection lost in the middle of the job is retried after a wait,
and the retry succeeds. Each try is read from Airflow's metadata database."""

from __future__ import annotations

import threading

from archivist.sources.postgres import job as postgres
from tests.dags.test_alerts import newest_run_id
from tests.support import dags_test, wait_until

DAG_ID = "archivist_backup"
POSTGRES_ONLY = {"jobs": ["postgres"]}
FIRST_RETRY_SECONDS = 1
# The backup's ANALYZE waiting for a table's lock: the moment the test drops its connection.
WAITING_ANALYZE = "SELECT pid FROM pg_stat_activity WHERE query = 'ANALYZE' AND wait_event_type = 'Lock'"


def task_record(run_id: str, task_id: str) -> dict:
    """The task's tries in the run: (try number, state) of each (the earlier ones from the task
    instance's history, the last from the task instance), the tries it was allowed beyond the
    first, when its first try ended and when its last began."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session
    from sqlalchemy import select

    where = {"dag_id": DAG_ID, "run_id": run_id, "task_id": task_id}
    with create_session() as session:
        earlier = session.scalars(select(TaskInstanceHistory).filter_by(**where).order_by("try_number")).all()
        last = session.scalars(select(TaskInstance).filter_by(**where)).one()
        return {
            "tries": [(ti.try_number, str(ti.state)) for ti in [*earlier, last]],
            "max_tries": last.max_tries,
            "first_end": (earlier[0] if earlier else last).end_date,
            "last_start": last.start_date,
        }


def test_a_configuration_error_fails_at_once_and_a_lost_server_is_retried(seeded, pg_settings):
    env = {"ARCHIVIST_RETRY_DELAY_SECONDS": str(FIRST_RETRY_SECONDS)}

    # A setting the job reads (and `check` does not) is wrong: no retry can mend it.
    bad = dags_test(DAG_ID, conf=POSTGRES_ONLY, env={**env, "ARCHIVIST_PG_LOCK_WAIT_TIMEOUT": "soon"})
    assert bad.returncode != 0
    assert "ARCHIVIST_PG_LOCK_WAIT_TIMEOUT must be a duration such as 30s or 10min" in bad.stdout + bad.stderr
    assert "new_state=up_for_retry" not in bad.stdout + bad.stderr
    failed = task_record(newest_run_id(), "postgres")
    assert failed["tries"] == [(1, "failed")] and failed["max_tries"] == 2  # two retries, none used

    # The job's connection is dropped by the server while it works (as a restart does): retried.
    admin = postgres.connect(pg_settings)
    locker = postgres.connect(pg_settings)
    table = admin.execute(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1 LIMIT 1"
    ).fetchone()[0]
    locker.execute("BEGIN")
    locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # holds the job at its ANALYZE
    finished = []
    run = threading.Thread(
        target=lambda: finished.append(
            dags_test(DAG_ID, conf=POSTGRES_ONLY, env={**env, "ARCHIVIST_PG_LOCK_WAIT_TIMEOUT": "5min"})
        )
    )
    run.start()
    try:
        wait_until(lambda: admin.execute(WAITING_ANALYZE).fetchall(), "the backup's ANALYZE to wait", timeout=300)
        for (pid,) in admin.execute(WAITING_ANALYZE).fetchall():
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        locker.execute("ROLLBACK")  # the server is back for the retry
        run.join(timeout=600)
        admin.close()
        locker.close()
    [outage] = finished
    assert outage.returncode == 0, outage.stdout[-3000:] + outage.stderr[-3000:]
    output = outage.stdout + outage.stderr
    assert "UnreachableError: the postgres job lost database" in output
    assert "new_state=up_for_retry" in output  # Airflow's record of the try that will be retried
    retried = task_record(newest_run_id(), "postgres")
    assert retried["tries"] == [(1, "failed"), (2, "success")]  # the first try's failure was retried
    assert (retried["last_start"] - retried["first_end"]).total_seconds() >= FIRST_RETRY_SECONDS
