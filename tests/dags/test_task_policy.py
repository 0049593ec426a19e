"""The DAGs' task policy: an error no retry can mend fails the task at once, any other keeps its
retries, each wait longer than the last; every run and every task has a time limit, configurable,
with generous defaults; every failed task is reported."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from archivist import config, task_policy
from archivist.errors import (
    BackupNotFoundError,
    ConfigurationError,
    JobFailedError,
    LockHeldError,
    LockLostError,
    TargetNotEmptyError,
    UnreachableError,
    VerificationError,
)
from archivist.task_policy import LOCK_RECHECK, fail_fast
from tests.support import ROOT

NOT_RETRIED = [ConfigurationError, VerificationError, TargetNotEmptyError, BackupNotFoundError, LockLostError]
RETRIED = [UnreachableError, JobFailedError, OSError, TimeoutError]


def _raises(error: type[Exception]):
    @fail_fast
    def task_body(plan: dict, params: dict | None = None) -> dict:
        """A task's body."""
        raise error("the server said no")

    return task_body


@pytest.mark.parametrize("error", NOT_RETRIED)
def test_an_error_no_retry_can_mend_fails_the_task_at_once(error):
    with pytest.raises(AirflowFailException, match=f"{error.__name__}: the server said no") as failed:
        _raises(error)({})
    assert isinstance(failed.value.__cause__, error)


@pytest.mark.parametrize("error", RETRIED)
def test_an_outage_or_a_failed_job_keeps_the_task_retries(error):
    with pytest.raises(error, match="the server said no"):
        _raises(error)({})


def test_a_task_that_finds_the_lock_held_gives_its_slot_back_and_runs_again_later():
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        _raises(LockHeldError)({})
    assert before + LOCK_RECHECK <= rescheduled.value.reschedule_date <= dt.datetime.now(dt.UTC) + LOCK_RECHECK
    assert isinstance(rescheduled.value.__cause__, LockHeldError)


def test_the_task_keeps_its_signature_and_result():
    @fail_fast
    def body(plan: dict, params: dict) -> dict:
        """Its docstring."""
        return {"plan": plan, "params": params}

    assert list(inspect.signature(body).parameters) == ["plan", "params"]  # TaskFlow injects by name
    assert body.__doc__ == "Its docstring."
    assert body({"a": 1}, params={"b": 2}) == {"plan": {"a": 1}, "params": {"b": 2}}


def test_every_task_that_can_meet_a_user_error_fails_fast(backup_dag, restore_dag):
    for dag in (backup_dag, restore_dag):
        for task in dag.tasks:
            if task.task_id in ("cleanup_staging", "report", "release_lock"):  # raise no archivist error of their own
                continue
            assert hasattr(task.python_callable, "__wrapped__"), f"{dag.dag_id}.{task.task_id}"


def test_runs_and_tasks_have_time_limits(backup_dag, restore_dag):
    for dag in (backup_dag, restore_dag):
        assert dag.dagrun_timeout == dt.timedelta(hours=config.DEFAULT_RUN_TIMEOUT_HOURS), dag.dag_id
        for task in dag.tasks:
            assert task.execution_timeout == dt.timedelta(hours=config.DEFAULT_TASK_TIMEOUT_HOURS), task.task_id
    assert config.DEFAULT_TASK_TIMEOUT_HOURS < config.DEFAULT_RUN_TIMEOUT_HOURS


def test_the_time_limits_come_from_the_environment():
    assert config.load_timeouts({"ARCHIVIST_RUN_TIMEOUT_HOURS": "2", "ARCHIVIST_TASK_TIMEOUT_HOURS": "0.5"}) == (
        config.Timeouts(run=dt.timedelta(hours=2), task=dt.timedelta(minutes=30))
    )
    probe = (
        "import sys; sys.path[:0] = ['include']; "
        "from airflow.dag_processing.dagbag import DagBag; "
        "dag = DagBag(dag_folder='dags/archivist_backup.py', safe_mode=False).dags['archivist_backup']; "
        "print(dag.dagrun_timeout, dag.get_task('postgres').execution_timeout)"
    )
    env = {"ARCHIVIST_RUN_TIMEOUT_HOURS": "3", "ARCHIVIST_TASK_TIMEOUT_HOURS": "1.5"}
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert shown.stdout.split()[-2:] == ["3:00:00", "1:30:00"], shown.stderr[-2000:]


@pytest.mark.parametrize("value", ["soon", "0", "-1", "200"])
def test_a_time_limit_that_is_no_number_of_hours_is_refused(value):
    with pytest.raises(ConfigurationError, match="ARCHIVIST_TASK_TIMEOUT_HOURS must be"):
        config.load_timeouts({"ARCHIVIST_TASK_TIMEOUT_HOURS": value})


def test_a_job_retries_twice_each_wait_doubling_from_30_seconds(backup_dag):
    for job in config.JOBS:
        task = backup_dag.get_task(job)
        assert (task.retries, task.retry_delay, task.retry_exponential_backoff) == (2, dt.timedelta(seconds=30), 2.0)
        assert task.max_retry_delay == task_policy.MAX_RETRY_DELAY
    assert backup_dag.get_task("rotate").retry_delay == dt.timedelta(seconds=30)


def test_the_first_wait_comes_from_the_environment():
    assert task_policy.retry_delay({"ARCHIVIST_RETRY_DELAY_SECONDS": "1"}) == dt.timedelta(seconds=1)
    assert task_policy.job_retries({"ARCHIVIST_RETRY_DELAY_SECONDS": "2.5"})["retry_delay"] == dt.timedelta(seconds=2.5)


@pytest.mark.parametrize("value", ["soon", "0", "-1", "601"])
def test_a_wait_that_is_no_number_of_seconds_is_refused(value):
    with pytest.raises(ConfigurationError, match="ARCHIVIST_RETRY_DELAY_SECONDS must be"):
        task_policy.retry_delay({"ARCHIVIST_RETRY_DELAY_SECONDS": value})


def test_every_failed_task_and_every_run_is_reported(backup_dag, restore_dag):
    from archivist.alerts import callbacks

    for dag in (backup_dag, restore_dag):
        assert dag.on_failure_callback == callbacks.on_run_failure, dag.dag_id
        assert dag.on_success_callback == callbacks.on_run_success, dag.dag_id
        for task in dag.tasks:
            given = task.on_failure_callback  # a mapped task keeps the callable as given, not in a list
            assert (given if isinstance(given, list) else [given]) == [callbacks.on_task_failure], (
                f"{dag.dag_id}.{task.task_id}"
            )
    [deadline] = backup_dag.deadline if isinstance(backup_dag.deadline, list) else [backup_dag.deadline]
    assert deadline.interval == dt.timedelta(hours=config.DEFAULT_RUN_TIMEOUT_HOURS * 3 / 4)
    assert restore_dag.deadline is None  # a restore is started by hand, and watched
