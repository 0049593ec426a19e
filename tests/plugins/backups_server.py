"""A real Airflow API server for the Backups plugin's tests (the fixture is in conftest.py).

It runs with the environment of .local/env.sh (same metadata database, plugins
folder, users and connections) on a free loopback port of its own, so it never
disturbs the stack's API server on 8080 nor another test run. The DAGs are
written to the metadata database first with `airflow dags reserialize`: an API
server does not parse DAGs, and triggering archivist_restore needs it serialized.
`airflow db migrate` is done by `make test` beforehand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
PLUGINS = ROOT / "plugins"
if str(PLUGINS) not in sys.path:  # the plugin's package, for tests that call its modules directly
    sys.path.insert(0, str(PLUGINS))

from demo.airflow_api import AirflowClient  # noqa: E402
from tests.support import free_port  # noqa: E402

PREFERRED_PORT = 18080
START_TIMEOUT = 180
RESTORE_DAG = "archivist_restore"


def _password(user: str) -> str:
    path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    with open(path, encoding="utf-8") as f:
        return json.load(f)[user]


@dataclass
class Server:
    """The running test server, and the dag runs tests started on it (deleted at the end)."""

    url: str
    process: subprocess.Popen
    log: Path
    started_runs: list[tuple[str, str]] = field(default_factory=list)

    def client(self, user: str) -> AirflowClient:
        return AirflowClient(base_url=self.url, username=user, password=_password(user))

    def password(self, user: str) -> str:
        return _password(user)

    def token(self, user: str) -> str:
        resp = requests.post(f"{self.url}/auth/token", json={"username": user, "password": _password(user)}, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.json()["access_token"]

    def started(self, dag_id: str, run_id: str) -> None:
        self.started_runs.append((dag_id, run_id))

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_server() -> Server:
    if "AIRFLOW_HOME" not in os.environ or "AIRFLOW_CONN_ARCHIVIST_BACKUPS" not in os.environ:
        pytest.fail("the stack's environment is not set: `make services` and `source .local/env.sh`", pytrace=False)
    port = free_port(PREFERRED_PORT)
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "airflow-api-server-test.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(url, process, log)
    # While the server starts, write the DAGs to the metadata database.
    reserialize = subprocess.run(
        ["airflow", "dags", "reserialize"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if reserialize.returncode != 0:
        stop_server(server)
        pytest.fail(
            f"airflow dags reserialize failed:\n{reserialize.stdout[-2000:]}\n{reserialize.stderr[-2000:]}",
            pytrace=False,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the Airflow API server exited ({process.returncode}):\n{server.log_tail()}", pytrace=False)
        try:
            health = requests.get(f"{url}/api/v2/monitor/health", timeout=5).json()
            if health.get("metadatabase", {}).get("status") == "healthy":
                break
        except (requests.RequestException, ValueError):
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(
                f"the Airflow API server did not answer within {START_TIMEOUT}s:\n{server.log_tail()}", pytrace=False
            )
        time.sleep(1)
    return server


def stop_server(server: Server) -> None:
    """Deletes the runs the tests started, then ends the server's process group."""
    if server.process.poll() is None and server.started_runs:
        try:
            admin = server.client("admin")
            for dag_id, run_id in server.started_runs:
                try:
                    admin.request("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
                except Exception:  # already gone, or picked up and finished: nothing to undo
                    pass
        except Exception:
            pass
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=30)
