"""Fixtures of the DAG tests."""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from tests.support import ROOT

# The defaults are under test, not a developer's override.
OVERRIDES = (
    "ARCHIVIST_SCHEDULE",
    "CRON_SCHEDULE",
    "ARCHIVIST_RUN_TIMEOUT_HOURS",
    "ARCHIVIST_TASK_TIMEOUT_HOURS",
    "ARCHIVIST_DRILL_SCHEDULE",
    "ARCHIVIST_DRILL_AFTER_BACKUP",
)


@pytest.fixture
def earlier_bundle(seeded, backups_settings) -> BackupKey:
    """A good bundle already in the backup bucket (of PostgreSQL alone, the quickest), for a
    test to show that a failed run leaves it as it was; deleted after the test."""
    key = BackupKey.parse(backup.run_backup(jobs=("postgres",))["key"])
    yield key
    store = BackupStore(backups_settings)
    store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(key.object_key))


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3's home of DagBag

    with pytest.MonkeyPatch.context() as mp:
        for name in OVERRIDES:
            mp.delenv(name, raising=False)
        return DagBag(dag_folder=str(ROOT / "dags"), safe_mode=False)


@pytest.fixture(scope="session")
def backup_dag(dagbag):
    return dagbag.dags["archivist_backup"]


@pytest.fixture(scope="session")
def restore_dag(dagbag):
    return dagbag.dags["archivist_restore"]


@pytest.fixture(scope="session")
def drill_dag(dagbag):
    return dagbag.dags["archivist_drill"]


@dataclass
class Mailbox:
    """What a real SMTP server on loopback received, and the Airflow connection that reaches it."""

    port: int
    mails: list = field(default_factory=list)

    def connection(self) -> str:
        """The `archivist_smtp` connection as JSON, for an AIRFLOW_CONN_ARCHIVIST_SMTP variable."""
        extra = {
            "from_email": "airflow@archivist.test",
            "to": ["ops@archivist.test", "oncall@archivist.test"],
            "disable_ssl": True,  # the loopback server speaks plain SMTP
            "disable_tls": True,
            "timeout": 10,
            "retry_limit": 0,
        }
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})

    def texts(self) -> list[tuple[str, str]]:
        """Each mail's subject and its body's text (the HTML's entities decoded)."""
        return [(m["Subject"], html.unescape(m.get_body(("html", "plain")).get_content())) for m in self.mails]


class _Keep:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mail["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.box.mails.append(mail)
        return "250 OK"


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on a free loopback port for the test, keeping every mail."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox(port)
    controller = Controller(_Keep(box), hostname="127.0.0.1", port=port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def scheduler_and_triggerer(mailbox):
    """Airflow's scheduler (which finds a missed deadline) and triggerer (which runs its callback),
    with the `archivist_smtp` connection pointing at the mailbox; logs in tests/artifacts/."""
    env = {**os.environ, "AIRFLOW_CONN_ARCHIVIST_SMTP": mailbox.connection()}
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    started = []
    for component in ("scheduler", "triggerer"):
        with open(artifacts / f"airflow-{component}-test.log", "w") as log:
            started.append(
                subprocess.Popen(
                    ["airflow", component, "--skip-serve-logs"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, ended with all its children
                )
            )
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
