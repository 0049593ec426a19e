"""The DAGs' alerts, sent for real: a failed archivist_backup run (`airflow dags test`) mails its
DAG, run, failed task and error line to a real SMTP server on loopback; a run still queued past
its deadline is mailed by Airflow's own scheduler and triggerer. Nothing secret is in a mail."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from tests.support import ROOT, dags_test, wait_until

DAG_ID = "archivist_backup"


def newest_run_id(dag_id: str = DAG_ID) -> str:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        newest = select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        return session.scalars(newest).one()


def known_secrets(*settings) -> list[str]:
    """Every password and secret key of the stack's connections."""
    found = [getattr(s, name, "") for s in settings for name in ("password", "secret_access_key")]
    return [s for s in found if s]


def test_a_failed_backup_mails_its_dag_run_task_and_error(
    mailbox, pg_settings, es_settings, storage_settings, backups_settings
):
    wrong = f"not-the-password-{uuid.uuid4().hex[:8]}"
    url = urlsplit(es_settings.url)
    broken = {
        "conn_type": "elasticsearch",
        "host": url.hostname,
        "port": url.port,
        "login": es_settings.user,
        "password": wrong,
        "extra": {"scheme": url.scheme},
    }
    run = dags_test(
        DAG_ID,
        env={
            "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": json.dumps(broken),
            "AIRFLOW_CONN_ARCHIVIST_SMTP": mailbox.connection(),
        },
    )
    assert run.returncode != 0, "the run with a wrong Elasticsearch password did not fail"
    run_id = newest_run_id()

    [(subject, body)] = mailbox.texts()  # one mail: `check` failed, nothing after it ran
    assert subject == f"[archivist] {DAG_ID}: task check failed (run {run_id})"
    assert mailbox.mails[0]["To"] == "ops@archivist.test, oncall@archivist.test"
    assert mailbox.mails[0]["From"] == "airflow@archivist.test"
    for line in (f"DAG{DAG_ID}", f"Run{run_id}", "Failed taskcheck", "Try1"):
        assert line in body.replace("</td><td>", ""), line
    # the error line: what the task logged, behind the error's kind
    logged = next(line.strip() for line in run.stdout.splitlines() if line.strip().startswith("FAIL elasticsearch:"))
    assert f"cannot log in to Elasticsearch at {es_settings.url} (connection 'archivist_elasticsearch')" in logged
    assert f"ErrorConfigurationError: check failed: {logged}" in body.replace("</td><td>", ""), body
    mail_text = mailbox.mails[0].as_string()
    for secret in [wrong, *known_secrets(pg_settings, es_settings, storage_settings, backups_settings)]:
        assert secret not in mail_text and secret not in body


def airflow(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        ["airflow", *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def delete_run(run_id: str, dag_id: str = DAG_ID) -> None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def deadlines_of(run_id: str, dag_id: str = DAG_ID) -> list[dict]:
    """The run's deadlines: when each is due, whether the scheduler found it missed, its callback's state."""
    from airflow.models import DagRun
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(Deadline)
            .join(DagRun, Deadline.dagrun_id == DagRun.id)
            .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).all()
        return [
            {"due": d.deadline_time, "missed": d.missed, "callback": str(d.callback.state) if d.callback else None}
            for d in found
        ]


@pytest.mark.integration  # Airflow's scheduler and triggerer, on the stack's metadata database
def test_a_run_still_queued_past_its_deadline_is_mailed_by_the_triggerer(mailbox, scheduler_and_triggerer):
    # The DAG as the DAG processor stores it, its deadline two seconds after a run is queued.
    # (Airflow skips a write within min_serialized_dag_update_interval of the last one, which the
    # previous test's `dags test` run may have made seconds ago.)
    airflow(
        "dags",
        "reserialize",
        env={"ARCHIVIST_DEADLINE_HOURS": str(2 / 3600), "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0"},
    )
    airflow("dags", "pause", DAG_ID)  # its run stays queued: held past the deadline
    run_id = f"deadline_test__{uuid.uuid4().hex[:10]}"

    def mails_about(run: str) -> list[tuple[str, str]]:
        return [(subject, body) for subject, body in mailbox.texts() if run in subject]

    airflow("dags", "trigger", DAG_ID, "--run-id", run_id)
    try:
        assert len(deadlines_of(run_id)) == 1, "the queued run got no deadline"
        try:
            wait_until(lambda: mails_about(run_id), "the missed deadline's mail", timeout=180, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the run's deadline: {deadlines_of(run_id)}") from None
    finally:
        delete_run(run_id)
        for process in scheduler_and_triggerer:
            assert process.poll() is None, f"{process.args} exited; see tests/artifacts/airflow-*-test.log"
    [(subject, body)] = mails_about(run_id)  # a deadline missed by an earlier test's run may be mailed too
    assert subject == f"[archivist] {DAG_ID}: run {run_id} has not finished by its deadline"
    lines = body.replace("</td><td>", "")
    assert f"DAG{DAG_ID}" in lines and f"Run{run_id}" in lines and "Queued at20" in lines, body
    assert "(ARCHIVIST_DEADLINE_HOURS after it was queued)" in body
