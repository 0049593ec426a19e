"""`pip install .` into a fresh virtual environment gives a working `archivist` command: every
runtime dependency the code imports is declared in pyproject.toml, and the package needs neither
Airflow nor the repository's folders beside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration  # installs the dependencies from the package index
def test_pip_install_gives_a_working_archivist_command(tmp_path, fresh_venv):
    # the constraints pin what PyPI serves to the versions the suite runs with
    python = fresh_venv(str(ROOT), "-c", str(ROOT / "constraints.txt"))
    env_dir = python.parent.parent
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    installed = subprocess.run([*pip, "list", "--format=freeze"], check=True, capture_output=True, text=True).stdout
    assert "apache-airflow" not in installed  # the command must not need Airflow

    archivist = env_dir / "bin" / "archivist"
    shown = subprocess.run([str(archivist), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert shown.returncode == 0, shown.stderr
    for command in ("backup", "restore", "list", "check", "simple-backup", "simple-restore"):
        assert command in shown.stdout

    # every module of the package imports, so no dependency is left to the first backup to miss
    probe = (
        "import importlib, pkgutil, archivist; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(archivist.__path__, 'archivist.')]"
    )
    imported = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
