"""The source registry: every job by name, each source's client loaded only when its job is asked
for (a task running one job starts without the others' clients)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archivist.errors import ConfigurationError
from archivist.sources import registry
from tests.support import ROOT

pytestmark = pytest.mark.unit
CLIENTS = ("psycopg", "elastic_transport", "elasticsearch")


def _clients_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {CLIENTS!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": "include"},
    )
    return done.stdout.split()


def test_every_job_has_its_source():
    assert registry.NAMES == ("postgres", "elasticsearch", "storage")
    assert [registry.source(job).name for job in registry.NAMES] == list(registry.NAMES)


def test_an_unknown_job_names_the_known_ones():
    with pytest.raises(ConfigurationError, match="unknown job 'mysql': choose from postgres, elasticsearch, storage"):
        registry.source("mysql")


def test_the_runners_load_no_client_until_a_job_asks():
    assert _clients_after("import archivist.runner.backup, archivist.runner.restore") == []
    assert _clients_after("from archivist.sources import registry; registry.source('postgres')") == ["psycopg"]
