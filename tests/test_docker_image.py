"""What the Dockerfile's image installs is enough: the same pip install (requirements.txt with
constraints.txt) into a fresh virtual environment (kept in the per-user cache while those two
files are unchanged, as scripts/install.sh keeps its venv), then every DAG file parsed by
Airflow's DagBag, every plugin loaded by Airflow's plugins manager and every module of archivist
and of the plugin imported with it, AIRFLOW_HOME in a temporary folder. No Docker engine is
needed; the static agreement of the Dockerfile, docker-compose.yaml and requirements.txt is in
test_docker_compose.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.support import ROOT

# Run by the fresh environment's python, in the layout the image's mounts give (dags, plugins,
# include), with the image's PYTHONPATH.
PROBE = """
import importlib, json, pkgutil, sys
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
import archivist, archivist_backups

bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
plugins_manager.ensure_plugins_loaded()
packages = (archivist, archivist_backups)
modules = [m.name for p in packages for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")] + ["archivist_ui"]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "dags": sorted(bag.dags),
    "dag_errors": bag.import_errors,
    "plugins": sorted(p["name"] for p in plugins_manager.get_plugin_info(["name"])),
    "plugin_errors": plugins_manager.get_import_errors(),
    "modules": len(modules),
}))
"""


@pytest.mark.integration  # installs the image's requirements from the package index
def test_the_image_requirements_parse_every_dag_and_load_every_plugin(tmp_path, fresh_venv):
    files = [ROOT / "requirements.txt", ROOT / "constraints.txt"]
    key = hashlib.sha256(b"".join(f.read_bytes() for f in files) + sys.version.encode()).hexdigest()[:12]
    python = fresh_venv("-r", str(files[0]), "-c", str(files[1]), cache_key=f"image-{key}")
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}",
    }
    probe = subprocess.run(
        [str(python), "-c", PROBE, str(ROOT / "dags")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["dag_errors"] == {} and found["plugin_errors"] == {}
    assert found["dags"] == ["archivist_backup", "archivist_drill", "archivist_restore"]
    assert found["plugins"] == ["archivist_backups"]
    assert found["modules"] > 40
