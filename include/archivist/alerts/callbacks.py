"""What the DAGs hand to Airflow: the failure and success callbacks and the deadline alert.

A task's failure callback runs in the task's process, where the error is known, so each failed
task mails its own error. The run's failure callback (run by the DAG processor) mails only a run
that failed without a failed task, such as one stopped by its time limit. The deadline's callback
runs in the triggerer. A callback that cannot mail logs why and never changes a task's state."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from archivist.alerts import mail, message
from archivist.errors import ConfigurationError

DEADLINE_VARIABLE = "ARCHIVIST_DEADLINE_HOURS"
MAX_DEADLINE_HOURS = 24 * 7

log = logging.getLogger(__name__)


def _redacted(text: str) -> str:
    """The text with every secret Airflow's masker knows of (the connections this process read) masked."""
    from airflow.sdk.log import redact

    return str(redact(text))


def _dag_id(context: Mapping[str, Any]) -> str:
    dag = context.get("dag")
    return getattr(dag, "dag_id", None) or getattr(context.get("ti"), "dag_id", "") or "unknown DAG"


def _send(alert: message.Alert, context: Mapping[str, Any], success: bool = False) -> None:
    try:
        mail.send(alert, context, success=success)
    except Exception as exc:  # a lost alert must not hide the run's own outcome: log it and go on
        log.error("alert not sent (connection '%s'): %s: %s", mail.conn_id(), type(exc).__name__, exc)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Mails the failed task's DAG, run, task, try and error line."""
    ti = context.get("ti")
    error = _redacted(message.error_line(context.get("exception")))
    alert = message.task_failed(
        _dag_id(context),
        str(context.get("run_id") or getattr(ti, "run_id", "")),
        str(getattr(ti, "task_id", "unknown task")),
        getattr(ti, "try_number", None),
        error,
    )
    _send(alert, context)


def on_run_failure(context: Mapping[str, Any]) -> None:
    """Mails a run that failed with no failed task; a failed task has mailed already."""
    reason = str(context.get("reason") or "")
    if reason == "task_failure":
        return
    _send(message.run_failed(_dag_id(context), str(context.get("run_id", "")), reason or "unknown"), context)


def on_run_success(context: Mapping[str, Any]) -> None:
    """Mails a successful run, only if the connection's extra asks for it (`on_success`)."""
    _send(message.run_succeeded(_dag_id(context), str(context.get("run_id", ""))), context, success=True)


async def on_deadline_missed(context: Mapping[str, Any]) -> None:
    """Mails a run not finished by its deadline (run by the triggerer with the scheduler's context)."""
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    alert = message.deadline_missed(
        str(run.get("dag_id", "unknown DAG")),
        str(run.get("dag_run_id") or run.get("run_id") or ""),
        str(run.get("queued_at", "")),
        deadline.get("deadline_time", ""),
    )
    await mail.send_async(alert, context)


def deadline_after(run_timeout: dt.timedelta, env: Mapping[str, str] | None = None) -> dt.timedelta | None:
    """ARCHIVIST_DEADLINE_HOURS after a run is queued (default three quarters of its time limit,
    so the alert comes while there is still time to act); 0 turns the alert off."""
    env = os.environ if env is None else env
    text = env.get(DEADLINE_VARIABLE, "").strip()
    if not text:
        return run_timeout * 3 / 4
    try:
        hours = float(text)
    except ValueError:
        raise ConfigurationError(f"{DEADLINE_VARIABLE} must be a number of hours, got {text!r}") from None
    if hours == 0:
        return None
    if not 0 < hours <= MAX_DEADLINE_HOURS:
        raise ConfigurationError(
            f"{DEADLINE_VARIABLE} must be 0 (no deadline alert) or more than 0 and at most "
            f"{MAX_DEADLINE_HOURS} hours, got {text!r}"
        )
    return dt.timedelta(hours=hours)


def loaded_by_dags_test(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is `airflow dags test`. Its Dag.test() (Airflow 3.3.2) ends a successful
    run in an error when the DAG has a deadline (it looks the alert up in the database by an id
    only a stored DAG has) or, for a param without a default, a run callback (it builds the
    callback's context without the run's conf). Its runs are never queued and never time out,
    so neither applies to them; a failed task still mails."""
    argv = sys.argv if argv is None else argv
    return len(argv) >= 3 and "airflow" in os.path.basename(argv[0]) and list(argv[1:3]) == ["dags", "test"]


def run_callbacks() -> dict[str, Any]:
    """The DAG's run callbacks, as @dag arguments; none in `airflow dags test`."""
    if loaded_by_dags_test():
        return {}
    return {"on_failure_callback": on_run_failure, "on_success_callback": on_run_success}


def deadline_alert(run_timeout: dt.timedelta, env: Mapping[str, str] | None = None):
    """The DAG's DeadlineAlert: `deadline_after` past the moment the run was queued, mailed by the
    triggerer; None when turned off, or in `airflow dags test`."""
    after = deadline_after(run_timeout, env)
    if after is None or loaded_by_dags_test():
        return None
    # airflow.sdk exports these lazily, past what mypy can see.
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=after, callback=AsyncCallback(on_deadline_missed)
    )
