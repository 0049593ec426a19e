"""The runs of archivist_backup and archivist_restore in Airflow's metadata database, for the
Backups page: the latest of each DAG, a restore's conf, and the audit record of a trigger.

Nothing here speaks HTTP: the routes (routes.py) hand in the session and the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.log import Log
from sqlalchemy import select
from sqlalchemy.orm import Session

from archivist_backups.catalog import dag_url, run_url

BACKUP_DAG = "archivist_backup"
RESTORE_DAG = "archivist_restore"
CONF_SHOWN = ("key", "jobs", "mode", "dry_run", "indices", "allow_unchecked")  # archivist_restore's params


def restore_conf(
    jobs: Iterable[str], mode: str, dry_run: bool, allow_unchecked: bool, indices: Iterable[str] = ()
) -> dict[str, Any]:
    """archivist_restore's conf, less the bundle's key; `indices` only when some are chosen."""
    conf: dict[str, Any] = {"jobs": list(jobs), "mode": mode, "dry_run": dry_run, "allow_unchecked": allow_unchecked}
    if indices:
        conf["indices"] = list(indices)
    return conf


def audit_trigger(session: Session, user_name: str, run_id: str, conf: dict[str, Any]) -> None:
    """The event log entry that says the run was started from the Backups page, and with what."""
    session.add(
        Log(
            event="trigger_dag_run",
            owner=user_name,
            owner_display_name=user_name,
            dag_id=RESTORE_DAG,
            run_id=run_id,
            extra=json.dumps({"via": "archivist Backups page", "conf": conf, "method": "POST"}),
        )
    )


def latest_runs(session: Session, dag_id: str, limit: int, ui_root: str) -> dict[str, Any]:
    """The DAG (whether Airflow knows it, whether it is paused) and its latest runs, newest first."""
    dag = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
    rows = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(limit)
    )
    return {
        "dag_id": dag_id,
        "known": dag is not None and not dag.is_stale,
        "is_paused": bool(dag.is_paused) if dag is not None else None,
        "url": dag_url(ui_root, dag_id),
        "runs": [summarize_run(r, ui_root) for r in rows],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def summarize_run(run: DagRun, ui_root: str) -> dict[str, Any]:
    """One row of the runs table: the run's state and times, and the archivist part of its conf."""
    conf = run.conf if isinstance(run.conf, dict) else {}
    return {
        "dag_id": run.dag_id,
        "dag_run_id": run.run_id,
        "state": str(run.state) if run.state is not None else None,
        "run_type": str(run.run_type),
        "triggered_by": run.triggered_by.value if run.triggered_by is not None else None,
        "triggering_user_name": run.triggering_user_name,
        "run_after": _iso(run.run_after),
        "queued_at": _iso(run.queued_at),
        "start_date": _iso(run.start_date),
        "end_date": _iso(run.end_date),
        "conf": {k: conf[k] for k in CONF_SHOWN if k in conf},
        "url": run_url(ui_root, run.dag_id, run.run_id),
    }
