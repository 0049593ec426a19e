"""archivist.alerts.message: what a mail says, on one line per fact, its HTML escaped."""

from __future__ import annotations

import datetime as dt

from airflow.sdk.exceptions import AirflowFailException

from archivist.alerts import message
from archivist.errors import ConfigurationError
from archivist.task_policy import fail_fast


def test_a_task_that_failed_fast_is_named_by_its_archivist_error():
    @fail_fast
    def body():
        raise ConfigurationError("check failed:\nFAIL elasticsearch: cannot log in")

    try:
        body()
    except AirflowFailException as exc:
        line = message.error_line(exc)
    assert line == "ConfigurationError: check failed: FAIL elasticsearch: cannot log in"


def test_any_other_error_is_named_by_its_kind_and_message_on_one_line():
    assert message.error_line(OSError("disk full\n  on /tmp")) == "OSError: disk full on /tmp"
    assert message.error_line(TimeoutError()) == "TimeoutError"
    assert message.error_line("killed by the scheduler\n") == "killed by the scheduler"


def test_no_error_says_where_to_look():
    assert "see its log" in message.error_line(None)
    assert "see its log" in message.error_line("  ")


def test_a_long_error_is_cut():
    line = message.error_line(RuntimeError("x" * 5000))
    assert len(line) == message.ERROR_CHARS and line.endswith("…")


def test_a_task_failure_names_dag_run_task_try_and_error():
    alert = message.task_failed("archivist_backup", "manual__1", "postgres", 3, "OSError: boom")
    assert alert.subject == "[archivist] archivist_backup: task postgres failed (run manual__1)"
    assert alert.text().splitlines() == [
        "DAG: archivist_backup",
        "Run: manual__1",
        "Failed task: postgres",
        "Try: 3",
        "Error: OSError: boom",
    ]


def test_the_html_escapes_what_the_error_says():
    alert = message.task_failed("d", "r", "t", 1, "<script>alert('x')</script> & more")
    assert "<script>" not in alert.html()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in alert.html()


def test_a_timed_out_run_names_its_time_limit():
    alert = message.run_failed("archivist_backup", "scheduled__1", "timed_out")
    assert alert.subject == "[archivist] archivist_backup: run scheduled__1 failed"
    assert "Reason: it ran past its time limit (ARCHIVIST_RUN_TIMEOUT_HOURS)" in alert.text()


def test_a_missed_deadline_names_the_run_and_when_it_was_due():
    due = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
    alert = message.deadline_missed("archivist_backup", "scheduled__1", "2026-12-04T01:00:00Z", due)
    assert alert.subject == "[archivist] archivist_backup: run scheduled__1 has not finished by its deadline"
    assert "Deadline: 2026-12-04T10:00:00+00:00 (ARCHIVIST_DEADLINE_HOURS after it was queued)" in alert.text()
    assert "Queued at: 2026-12-04T01:00:00Z" in alert.text()


def test_a_success_names_dag_and_run():
    alert = message.run_succeeded("archivist_restore", "manual__2")
    assert alert.subject == "[archivist] archivist_restore: run manual__2 succeeded"
