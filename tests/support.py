"""Helpers shared by the test folders: the repository's root, `airflow dags test`, a wait that
polls for a condition, a free loopback port, a small bundle written in memory, and a browser page
signed in to Airflow's UI. Fixtures live in the conftest.py files, not here."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dags_test(dag_id: str, conf: dict | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`airflow dags test` of one DAG, output captured. The DAG is paused first: a running
    scheduler would otherwise pick up this run's tasks (with its own connections)."""
    subprocess.run(["airflow", "dags", "pause", dag_id], capture_output=True, cwd=ROOT, timeout=120)
    args = ["airflow", "dags", "test", dag_id]
    if conf is not None:
        args += ["-c", json.dumps(conf)]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def free_port(preferred: int) -> int:
    """`preferred` when nothing holds it, else a port the kernel has free on 127.0.0.1. Ports in
    Linux's ephemeral range (32768-60999) may be held by a client connection for as long as it lives."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120, interval: float = 0.05) -> None:
    """Polls `condition` until it holds; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def sample_files(backup_id: str) -> dict[str, bytes]:
    """A member of every kind for a small bundle of `backup_id`: a dump, an index with its
    templates, a storage archive (incompressible) and its manifest."""
    from archivist.format import bundle

    return {
        bundle.postgres_path(backup_id): b"-- dump\n" + b"INSERT INTO t VALUES (1, 'text');\n" * 40_000,
        bundle.templates_path(backup_id): b'{"index_templates": []}',
        bundle.indices_path(backup_id): b'{"alpha": {}}',
        bundle.elasticsearch_index_path("alpha", backup_id): b'{"_id":"1","_source":{"a":1}}\n' * 20_000,
        bundle.storage_path(backup_id): random.Random(4).randbytes(300_000),
        bundle.storage_manifest_path(backup_id): b'{"key":"a.png"}\n',
    }


def bundle_bytes(key, files: dict[str, bytes], created: dt.datetime) -> bytes:
    """The bundle of `key` holding `files` (path -> bytes), written by the real writer in memory."""
    from archivist.format import bundle
    from archivist.format.artifact import Artifact
    from archivist.format.bundle import JobResult
    from archivist.transport.staging import LocalStaging

    staging = LocalStaging()
    try:
        artifacts = []
        for path, data in files.items():
            with staging.writer(path) as out:
                out.write(data)
            artifacts.append(Artifact(path, out.size, out.sha256))
        results = [JobResult(bundle.job_of_path(a.path), [a], {}, 0.1, "1") for a in artifacts]
        meta = bundle.build_meta(key, results, created)
        out = io.BytesIO()
        bundle.write_bundle(out, key, meta, artifacts, staging.open)
        return out.getvalue()
    finally:
        staging.cleanup()


BROWSER_VIEWPORT = {"width": 1600, "height": 1400}
BROWSER_TIMEOUT_MS = 30_000


def signed_in_page(browser, server, user: str, viewport: dict | None = None):
    """A new browser context and page, signed in as `user` through the Airflow UI's login form
    of `server` (the `airflow_server` fixture); the caller closes the context."""
    context = browser.new_context(viewport=viewport or BROWSER_VIEWPORT)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(server.password(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(server.url) + r"/(\?.*)?$"))
    return context, page
