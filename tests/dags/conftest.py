"""Fixtures of the DAG tests."""

from __future__ import annotations

import pytest

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore


@pytest.fixture
def earlier_bundle(seeded, backups_settings) -> BackupKey:
    """A good bundle already in the backup bucket (of PostgreSQL alone, the quickest), for a
    test to show that a failed run leaves it as it was; deleted after the test."""
    key = BackupKey.parse(backup.run_backup(jobs=("postgres",))["key"])
    yield key
    store = BackupStore(backups_settings)
    store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(key.object_key))
