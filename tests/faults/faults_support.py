"""Helpers for the outage fault tests: servers killed and brought back, background jobs,
and data big enough that a job is really running when its server goes away."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from elasticsearch import helpers

from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from conftest import ROOT


def start_servers() -> None:
    """Starts whatever server is down (services.sh start leaves running ones alone)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "start"], check=True, cwd=ROOT,
                   capture_output=True, timeout=600)


def kill_server(name: str) -> None:
    """Stops one server abruptly: postgres, elasticsearch or minio."""
    subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "kill", name], check=True, cwd=ROOT,
                   capture_output=True, timeout=120)


def process_running(name: str) -> bool:
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == name:
            return True
    return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Background:
    """Runs `func` in a thread; after join(), `result` or `error` holds how it ended."""

    def __init__(self, func: Callable[[], Any]):
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = func()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 600) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the background job still runs after {timeout}s"


HEAVY_INDEX = "heavy-events"
HEAVY_INDEX_DOCS = 80_000
HEAVY_TABLE_ROWS = 1_500_000
HEAVY_OBJECTS = 24
HEAVY_OBJECT_BYTES = 6 * 1024 * 1024


@pytest.fixture
def restart_after():
    """Whatever a test kills is running again afterwards, for the tests that follow."""
    yield
    start_servers()


@pytest.fixture
def heavy_table(seeded, pg_settings):
    """A table big enough that pg_dump and psql run for seconds."""
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.heavy")
        conn.execute("CREATE TABLE public.heavy AS SELECT g AS id, md5(g::text) || repeat('x', 120) AS body "
                     f"FROM generate_series(1, {HEAVY_TABLE_ROWS}) g")
    yield
    start_servers()  # the test may have killed PostgreSQL; the table must go either way
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.heavy")


@pytest.fixture
def heavy_index(seeded, es_client):
    """An index big enough that its export and bulk load run for seconds."""
    helpers.bulk(es_client, ({"_index": HEAVY_INDEX, "_id": str(i), "_source": {"n": i, "text": "lorem ipsum " * 40}}
                             for i in range(HEAVY_INDEX_DOCS)), chunk_size=5000, refresh=True)
    yield
    es_client.options(ignore_status=404).indices.delete(index=HEAVY_INDEX)


@pytest.fixture
def heavy_objects(seeded, storage_settings):
    """Objects big enough that their transfer takes seconds and goes multipart."""
    s3 = s3io.client(storage_settings)
    for i in range(HEAVY_OBJECTS):
        s3.upload_fileobj(io.BytesIO(os.urandom(HEAVY_OBJECT_BYTES)), storage_settings.bucket, f"heavy/blob-{i}.bin")
