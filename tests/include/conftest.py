"""Fixtures of the `archivist` command's tests (test_cli.py and cli/)."""

from __future__ import annotations

import pytest

from tests.spec_support import spec_env as spec_variables


@pytest.fixture(scope="session")
def spec_env(pg_settings, es_settings, storage_settings, backups_settings) -> dict[str, str]:
    """The original tool's variables, a namespace among them, and no AIRFLOW_CONN_*."""
    return {
        **spec_variables(pg_settings, es_settings, storage_settings, backups_settings),
        "NAMESPACE": "global-namespace",
    }
