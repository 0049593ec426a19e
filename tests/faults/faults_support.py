"""Helpers for the outage fault tests: servers killed and brought back, background jobs,
and data big enough that a job is really running when its server goes away."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from typing import Any

import psutil

from tests.support import ROOT


def start_servers() -> None:
    """Starts whatever server is down (services.sh start leaves running ones alone)."""
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "start"], check=True, cwd=ROOT, capture_output=True, timeout=600
    )


def kill_server(name: str) -> None:
    """Stops one server abruptly: postgres, elasticsearch or minio."""
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "kill", name],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )


def process_running(name: str) -> bool:
    """Whether a process of this test run (not another run on the machine) is `name`."""
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() == name:
                return True
        except psutil.NoSuchProcess:
            continue
    return False


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
