"""Shared fixtures: the real servers started by `make services`, reached through the
same four Airflow connections the DAGs use. A server that does not answer fails
the test that needs it with a message naming what to start; nothing is skipped. Below them,
the hook that gives every test its marker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import AuthenticationException

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "include"))

from archivist import config  # noqa: E402
from archivist.config import S3Settings  # noqa: E402
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io

START_HINT = "start the servers with `make services` and `source .local/env.sh`"


def _require_env() -> None:
    if "AIRFLOW_CONN_ARCHIVIST_POSTGRES" not in os.environ:
        pytest.fail(f"the archivist connections are not set: {START_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def pg_settings() -> config.PostgresSettings:
    _require_env()
    settings = config.load_postgres()
    try:
        postgres.server_version(settings)
    except Exception as exc:
        pytest.fail(f"PostgreSQL does not answer ({exc}): {START_HINT}", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def es_settings() -> config.ElasticsearchSettings:
    _require_env()
    settings = config.load_elasticsearch()
    try:
        es_cluster.check_login(settings, quick=True)
    except Exception as exc:
        pytest.fail(f"Elasticsearch does not answer ({exc}): {START_HINT}", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def storage_settings() -> S3Settings:
    _require_env()
    settings = config.load_storage()
    try:
        s3io.client(settings).head_bucket(Bucket=settings.bucket)
    except Exception as exc:
        pytest.fail(f"the S3 server does not answer ({exc}): {START_HINT}", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def backups_settings(storage_settings) -> S3Settings:
    return config.load_backups()


@pytest.fixture(scope="session")
def es_client(es_settings):
    return es_cluster.client(es_settings)


def _es_user_command(*args: str, password: str = "") -> None:
    """`scripts/services.sh es-user ...`: the password goes on stdin, never argv."""
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "es-user", *args],
        input=password,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


@pytest.fixture
def es_user(es_settings):
    """Makes users of the local Elasticsearch's file realm: `es_user(name, password, role)`
    (no role: a user who may log in and do nothing). Each is removed after the test. (The
    security API cannot make users here: its .security index needs a module this
    distribution lacks; see README.)"""
    made = []

    def make(name: str, password: str, role: str = "") -> str:
        made.append(name)
        _es_user_command("add", name, *([role] if role else []), password=password + "\n")
        as_user = es_cluster.client(config.ElasticsearchSettings(es_settings.url, name, password), quick=True)
        deadline = time.monotonic() + 30
        while True:  # the server reads the realm's files again every second
            try:
                assert as_user.security.authenticate()["username"] == name
                return name
            except AuthenticationException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    yield make
    for name in made:
        _es_user_command("del", name)


@pytest.fixture
def make_bucket(storage_settings) -> Iterator:
    """Makes empty buckets of the real S3 server: `make_bucket()`; all removed after the test,
    with whatever they hold and any upload left unfinished."""
    s3 = s3io.client(storage_settings)
    made = []

    def make() -> S3Settings:
        name = f"archivist-test-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=name)
        made.append(name)
        return S3Settings(
            bucket=name,
            access_key_id=storage_settings.access_key_id,
            secret_access_key=storage_settings.secret_access_key,
            endpoint_url=storage_settings.endpoint_url,
            region_name=storage_settings.region_name,
            source="test bucket",
        )

    yield make
    for name in made:
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):  # versioned or not
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def scratch_bucket(make_bucket) -> S3Settings:
    """A fresh, empty bucket of the real S3 server, removed after the test."""
    return make_bucket()


@pytest.fixture
def seeded(pg_settings, es_settings, storage_settings):
    """The demo stack, freshly seeded into all three servers; returns the seeder's counts.
    Whatever an earlier test left (tables, indices, objects) is wiped first."""
    from demo import fingerprint, seed

    fingerprint.wipe_postgres(pg_settings)
    fingerprint.wipe_elasticsearch(es_settings)
    return seed.seed(pg_settings, es_settings, storage_settings)


@pytest.fixture(scope="session")
def airflow_server():
    """One Airflow API server of the stack's environment for the whole session, on a port of its
    own, whichever test asks first (tests/plugins/backups_server.py)."""
    from tests.plugins.backups_server import start_server, stop_server

    server = start_server()
    yield server
    stop_server(server)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (its own browser downloads are never used)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install it with `bash scripts/install.sh browser`", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _cache_dir() -> Path:
    """The per-user cache of scripts/common.sh."""
    if os.environ.get("ARCHIVIST_CACHE"):
        return Path(os.environ["ARCHIVIST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archivist"


@pytest.fixture
def fresh_venv(tmp_path) -> Callable[..., Path]:
    """`fresh_venv(*pip_args, cache_key=None)`: a new virtual environment holding only what `pip
    install *pip_args` brings from the package index (pip's cache spares the downloads after the
    first time); returns its python. With `cache_key` (a digest of everything that decides the
    install), the environment is kept in the per-user cache, as scripts/install.sh keeps its
    venv, and reused while the key is the same: built under a temporary name, renamed when whole."""

    def build(env_dir: Path, pip_args: tuple[str, ...]) -> Path:
        venv.EnvBuilder(with_pip=True).create(env_dir)
        python = env_dir / "bin" / "python"
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", "install"]
        subprocess.run([*pip, *pip_args], check=True, cwd=tmp_path, timeout=900)
        return python

    def make(*pip_args: str, cache_key: str | None = None) -> Path:
        if cache_key is None:
            return build(tmp_path / "venv", pip_args)
        kept = _cache_dir() / f"test-venv-{cache_key}"
        if not (kept / "bin" / "python").exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.parent / f".{kept.name}.{uuid.uuid4().hex[:8]}"
            build(partial, pip_args)
            try:
                partial.rename(kept)  # only python -m is used from it, which a rename keeps working
            except OSError:  # another run finished the same one first
                shutil.rmtree(partial, ignore_errors=True)
        return kept / "bin" / "python"

    return make


# --- markers ------------------------------------------------------------------------------
# Each test gets exactly one of unit, integration, faults, browser, bench and esmatrix
# (pyproject.toml describes them). faults and bench go by folder, browser and esmatrix by their
# module's pytestmark (esmatrix tests are left out unless ARCHIVIST_ES_VERSIONS is set); of the
# rest, a test that asks for a server fixture, or is marked integration because it reaches a
# server some other way, is integration, and every other test is unit.

SERVER_FIXTURES = frozenset({"pg_settings", "es_settings", "storage_settings", "airflow_server"})
FOLDER_MARKS = {"faults": "faults", "bench": "bench"}
OWN_MARKS = ("faults", "browser", "bench", "integration", "esmatrix")


def pytest_ignore_collect(collection_path, config) -> bool | None:
    """tests/distributed needs the Celery stack: `make test-distributed` runs it, `make test` leaves it out."""
    if (
        collection_path == ROOT / "tests" / "distributed"
        and os.environ.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor"
    ):
        return True
    return None


def pytest_collection_modifyitems(config, items) -> None:
    tests = ROOT / "tests"
    if not os.environ.get("ARCHIVIST_ES_VERSIONS"):  # the matrix runs only when asked for its servers
        left_out = [item for item in items if item.get_closest_marker("esmatrix")]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if not item.get_closest_marker("esmatrix")]
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if folder in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[folder])
        if any(item.get_closest_marker(name) for name in OWN_MARKS):
            continue
        item.add_marker("integration" if SERVER_FIXTURES & set(item.fixturenames) else "unit")
