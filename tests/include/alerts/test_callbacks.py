"""archivist.alerts.callbacks: the deadline alert the backup DAG carries, and when it is left out."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from archivist.alerts import callbacks
from archivist.errors import ConfigurationError

TWELVE_HOURS = dt.timedelta(hours=12)


def test_the_deadline_is_three_quarters_of_the_run_time_limit_by_default():
    assert callbacks.deadline_after(TWELVE_HOURS, {}) == dt.timedelta(hours=9)
    assert callbacks.deadline_after(dt.timedelta(hours=2), {}) == dt.timedelta(hours=1.5)


def test_the_deadline_can_be_set_or_turned_off():
    assert callbacks.deadline_after(TWELVE_HOURS, {"ARCHIVIST_DEADLINE_HOURS": "4"}) == dt.timedelta(hours=4)
    assert callbacks.deadline_after(TWELVE_HOURS, {"ARCHIVIST_DEADLINE_HOURS": "0"}) is None
    assert callbacks.deadline_alert(TWELVE_HOURS, {"ARCHIVIST_DEADLINE_HOURS": "0"}) is None


@pytest.mark.parametrize("text", ["soon", "-1", "169"])
def test_a_wrong_deadline_names_the_variable(text):
    with pytest.raises(ConfigurationError, match="ARCHIVIST_DEADLINE_HOURS"):
        callbacks.deadline_after(TWELVE_HOURS, {"ARCHIVIST_DEADLINE_HOURS": text})


def test_the_deadline_counts_from_when_the_run_was_queued_and_is_mailed_by_the_triggerer():
    alert = callbacks.deadline_alert(TWELVE_HOURS, {"ARCHIVIST_DEADLINE_HOURS": "5"})
    assert isinstance(alert, DeadlineAlert)
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == dt.timedelta(hours=5)
    assert isinstance(alert.callback, AsyncCallback)  # runs in the triggerer
    assert alert.callback.path == "archivist.alerts.callbacks.on_deadline_missed"


def test_the_run_callbacks_are_left_out_only_in_airflow_dags_test(monkeypatch):
    assert callbacks.run_callbacks() == {
        "on_failure_callback": callbacks.on_run_failure,
        "on_success_callback": callbacks.on_run_success,
    }
    monkeypatch.setattr("sys.argv", ["/venv/bin/airflow", "dags", "test", "archivist_restore"])
    assert callbacks.run_callbacks() == {}
    assert callbacks.deadline_alert(TWELVE_HOURS, {}) is None


def test_airflow_dags_test_is_told_from_other_commands():
    assert callbacks.loaded_by_dags_test(["/venv/bin/airflow", "dags", "test", "archivist_backup"])
    assert not callbacks.loaded_by_dags_test(["/venv/bin/airflow", "dags", "reserialize"])
    assert not callbacks.loaded_by_dags_test(["/venv/bin/airflow", "dag-processor"])
    assert not callbacks.loaded_by_dags_test(["pytest"])
