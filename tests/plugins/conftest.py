"""Fixtures of the Backups plugin's tests: the demo stack seeded once, and a fresh bundle of it
per test (the Airflow API server and the browser are in tests/conftest.py)."""

from __future__ import annotations

import pytest

import tests.plugins.backups_server  # noqa: F401  (puts plugins/ on sys.path for the plugin's modules)
from archivist.errors import JobFailedError
from archivist.runner import backup


@pytest.fixture(scope="session")
def seeded_once(pg_settings, es_settings, storage_settings) -> dict:
    """The demo stack seeded once for the session, by the same code as the shared `seeded`.

    The servers are shared with other test runs, whose seeding races with ours; seeding
    once instead of before every test keeps that window small."""
    from demo import seed

    return seed.seed(pg_settings, es_settings, storage_settings)


@pytest.fixture
def demo_bundle(seeded_once, pg_settings, es_settings, storage_settings) -> dict:
    """A new bundle of the demo stack, made by `archivist backup`'s code: the newest in the bucket.

    Another test run may wipe or reseed the shared demo data while this backup reads it;
    then the stack is seeded again and the backup made once more."""
    try:
        return backup.run_backup()
    except JobFailedError:
        from demo import seed

        seed.seed(pg_settings, es_settings, storage_settings)
        return backup.run_backup()
