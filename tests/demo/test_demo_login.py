"""`make demo` tells the truth about the login. `make test`'s Airflow step runs first, then the
demo's (`make airflow`, which `make demo` runs: the same preparation, then the components), each
as the Makefile runs it; then the user and password the demo prints in its closing lines, and
those `make airflow` prints, log in to the real API server they started (POST /auth/token)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import requests

from demo.airflow_api import AirflowClient
from demo.run import closing_lines
from tests.support import ROOT

DAGS = ("archivist_backup", "archivist_restore")


def _recipe_step(target: str) -> str:
    """The Makefile's command of `target` that runs scripts/airflow.sh."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        if "scripts/airflow.sh" in line:
            return line.strip()
    raise AssertionError(f"the Makefile's {target} target runs no scripts/airflow.sh step")


def _run(command: str) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout + done.stderr


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/v2/monitor/health", timeout=5).ok
    except requests.RequestException:
        return False


@pytest.mark.integration
def test_the_login_the_demo_prints_works_after_make_test_then_make_demo():
    url = os.environ["AIRFLOW__API__BASE_URL"]
    demo_needs = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("##", 1)[0].split()
    assert "airflow" in demo_needs, "make demo must start Airflow through `make airflow`"
    was_running = _answers(url)
    if not was_running:  # the scheduler about to start must not run a backup of its own meanwhile
        for dag_id in DAGS:
            subprocess.run(["airflow", "dags", "pause", dag_id], cwd=ROOT, capture_output=True, timeout=300)
    _run(_recipe_step("test"))
    started = _run(_recipe_step("airflow"))
    try:
        printed = " ".join(closing_lines(AirflowClient()))
        user, password = re.search(r"\(user (\S+), password (\S+)\)", printed).groups()
        token = requests.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
        assert token.status_code == 201, f"the demo's login {user!r} was refused: {token.text}"
        assert token.json()["access_token"]
        shown = re.search(r"\(user (\S+), password ([^;\s)]+)", started)
        assert shown and shown.groups() == (user, password), "make airflow prints another login than the demo"
    finally:
        if not was_running:
            _run("bash scripts/airflow.sh stop")
