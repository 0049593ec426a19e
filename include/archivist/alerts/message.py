"""What an alert says: a subject and a few labelled lines, as plain text and as HTML.

Plain Python: the callbacks turn Airflow's context into these arguments."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

# A mail names the error; the task's log holds the rest.
ERROR_CHARS = 1000


@dataclass(frozen=True)
class Alert:
    """One mail: its subject and its (label, value) lines, in order."""

    subject: str
    lines: tuple[tuple[str, str], ...]

    def text(self) -> str:
        return "\n".join(f"{label}: {value}" for label, value in self.lines)

    def html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>" for label, value in self.lines
        )
        return f"<p>{html.escape(self.subject)}</p><table>{rows}</table>"


def error_line(error: BaseException | str | None) -> str:
    """The error's kind and its message on one line, at most ERROR_CHARS long.

    A task that fails fast raises AirflowFailException from the archivist error: that error is named."""
    if error is None or (isinstance(error, str) and not error.strip()):
        return "no error was reported (the task's process ended without one; see its log)"
    if isinstance(error, BaseException):
        if type(error).__name__ == "AirflowFailException" and error.__cause__ is not None:
            error = error.__cause__
        said = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        text = f"{type(error).__name__}: {said}" if said else type(error).__name__
    else:
        text = " ".join(line.strip() for line in error.splitlines() if line.strip())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def task_failed(dag_id: str, run_id: str, task_id: str, try_number: int | None, error: str) -> Alert:
    tries = f"{try_number}" if try_number else "unknown"
    return Alert(
        f"[archivist] {dag_id}: task {task_id} failed (run {run_id})",
        (("DAG", dag_id), ("Run", run_id), ("Failed task", task_id), ("Try", tries), ("Error", error)),
    )


def run_failed(dag_id: str, run_id: str, reason: str) -> Alert:
    """A run that ended failed with no task to blame, such as one stopped by its time limit."""
    why = "it ran past its time limit (ARCHIVIST_RUN_TIMEOUT_HOURS)" if reason == "timed_out" else reason
    return Alert(f"[archivist] {dag_id}: run {run_id} failed", (("DAG", dag_id), ("Run", run_id), ("Reason", why)))


def run_succeeded(dag_id: str, run_id: str) -> Alert:
    return Alert(f"[archivist] {dag_id}: run {run_id} succeeded", (("DAG", dag_id), ("Run", run_id)))


def deadline_missed(dag_id: str, run_id: str, queued_at: str, deadline: dt.datetime | str) -> Alert:
    due = deadline.isoformat() if isinstance(deadline, dt.datetime) else str(deadline)
    return Alert(
        f"[archivist] {dag_id}: run {run_id} has not finished by its deadline",
        (
            ("DAG", dag_id),
            ("Run", run_id),
            ("Queued at", queued_at),
            ("Deadline", f"{due} (ARCHIVIST_DEADLINE_HOURS after it was queued)"),
            ("State", "still queued or running; it is not stopped, see the run in the Airflow UI"),
        ),
    )
