"""Fixtures of the security tests: the backup bucket, with the bundles a test plants in it
deleted after the test."""

from __future__ import annotations

import pytest

from archivist import config
from archivist.transport.backup_bucket import BackupStore


@pytest.fixture
def store(backups_settings):
    """The backup bucket; append each object key planted to `store.planted`."""
    bucket = BackupStore(config.load_backups())
    bucket.planted = []
    yield bucket
    for object_key in bucket.planted:
        bucket.s3.delete_object(Bucket=bucket.bucket, Key=object_key)
