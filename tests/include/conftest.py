"""Fixtures of the `archivist` command's tests (test_cli.py and cli/), and of the TLS tests: the
local CA that `make services` makes (scripts/tls.sh), a second CA that signed nothing the servers
serve, and the HTTPS-only Elasticsearch node, started once per session (`scripts/services.sh
start-tls`) and stopped after it only if this session started it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from archivist.config import ElasticsearchSettings
from archivist.sources.elasticsearch import cluster as es_cluster
from tests.spec_support import spec_env as spec_variables
from tests.support import ROOT, free_port

SERVICES = ROOT / "scripts" / "services.sh"


@pytest.fixture(scope="session")
def spec_env(pg_settings, es_settings, storage_settings, backups_settings) -> dict[str, str]:
    """The original tool's variables, a namespace among them, and no AIRFLOW_CONN_*."""
    return {
        **spec_variables(pg_settings, es_settings, storage_settings, backups_settings),
        "NAMESPACE": "global-namespace",
    }


def _tls_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run `make services` and `source .local/env.sh` again", pytrace=False)
    return value


@pytest.fixture(scope="session")
def tls_ca(pg_settings) -> str:
    """The local CA's certificate, which signed the certificate PostgreSQL and the TLS node serve."""
    path = _tls_env("ARCHIVIST_TLS_CA")
    assert Path(path).is_file(), f"{path} is missing: run `make services`"
    return path


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory) -> str:
    """A CA of its own that signed nothing: trusting it alone must fail every handshake."""
    folder = tmp_path_factory.mktemp("other-ca")
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tls.sh"), "ca", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return str(folder / "ca.crt")


def _services(command: str, env: dict[str, str] | None = None) -> None:
    run = subprocess.run(
        ["bash", str(SERVICES), command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert run.returncode == 0, f"services.sh {command} failed:\n{run.stderr[-3000:]}"


def _tls_settings(port: int, es_settings: ElasticsearchSettings, tls_ca: str) -> ElasticsearchSettings:
    return ElasticsearchSettings(
        f"https://127.0.0.1:{port}", es_settings.user, es_settings.password, "TLS test node", ca_certs=tls_ca
    )


@pytest.fixture(scope="session")
def es_tls(es_settings, tls_ca) -> Iterator[ElasticsearchSettings]:
    """The HTTPS-only node, as archivist reaches it with verified TLS: the main node's user, the local CA."""
    settings = _tls_settings(int(_tls_env("ARCHIVIST_ES_TLS_PORT")), es_settings, tls_ca)
    try:
        es_cluster.check_login(settings, quick=True)
        started = False
    except Exception:
        port = free_port(int(_tls_env("ARCHIVIST_ES_TLS_PORT")))
        settings = _tls_settings(port, es_settings, tls_ca)
        # A free port when its own is held; a minute or less, even with other stacks busy.
        _services("start-tls", {"ARCHIVIST_ES_TLS_PORT": str(port)})
        started = True
    yield settings
    if started:
        _services("stop-tls")
