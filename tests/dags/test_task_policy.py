"""The DAGs' task policy: an error no retry can mend fails the task at once, any other keeps its
retries; every run and every task has a time limit, configurable, with generous defaults."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from archivist import config
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
