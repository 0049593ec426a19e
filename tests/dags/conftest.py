"""Fixtures of the DAG tests."""

from __future__ import annotations

import pytest

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from tests.support import ROOT

# The defaults are under test, not a developer's override.
OVERRIDES = ("ARCHIVIST_SCHEDULE", "CRON_SCHEDULE", "ARCHIVIST_RUN_TIMEOUT_HOURS", "ARCHIVIST_TASK_TIMEOUT_HOURS")


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
