"""Loaded by each Celery worker of `make test-distributed` (scripts/airflow.sh puts this folder on
the workers' PYTHONPATH when ARCHIVIST_AUDIT_DIR is set): every local file a task process opens,
with the task that opened it and whether to read or to write, one JSON line per open in
ARCHIVIST_AUDIT_DIR/<worker>-<pid>.ndjson. tests/distributed reads them to prove that no task
reads a file another task wrote: the backup bucket's staging prefix is the only hand-over."""

from __future__ import annotations

import json
import os
import sys

_DIR = os.environ.get("ARCHIVIST_AUDIT_DIR", "")
# Code, the interpreter's own files and the kernel's: read by every task, written by none of them.
_IGNORED = tuple(
    p
    for p in (sys.prefix, sys.base_prefix, os.environ.get("ARCHIVIST_ROOT", "") + "/", "/proc/", "/sys/", "/dev/")
    if p
) + ("/usr/", "/etc/", "/lib")
_busy = False


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))


def _hook(event: str, args: tuple) -> None:
    global _busy
    if event != "open" or _busy or not _DIR:
        return
    task = os.environ.get("AIRFLOW_CTX_TASK_ID")
    path = args[0]
    if not task or not isinstance(path, str):
        return
    path = os.path.abspath(path)
    if path.startswith(_IGNORED) or path.startswith(_DIR):
        return
    _busy = True
    try:
        line = {
            "run": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"),
            "task": task,
            "map_index": os.environ.get("AIRFLOW_CTX_MAP_INDEX", ""),
            "try": os.environ.get("AIRFLOW_CTX_TRY_NUMBER", ""),
            "host": os.environ.get("ARCHIVIST_WORKER_HOST", ""),
            "path": path,
            "write": _writes(args[1], args[2] if len(args) > 2 else None),
        }
        with open(os.path.join(_DIR, f"{line['host']}-{os.getpid()}.ndjson"), "a") as out:
            out.write(json.dumps(line) + "\n")
    finally:
        _busy = False


def _start() -> None:
    """A first line per process: the audit is on in this worker, even if its tasks open no file."""
    host = os.environ.get("ARCHIVIST_WORKER_HOST", "")
    with open(os.path.join(_DIR, f"{host}-{os.getpid()}.ndjson"), "a") as out:
        out.write(json.dumps({"run": None, "host": host, "started": True}) + "\n")
    sys.addaudithook(_hook)


if _DIR:
    _start()
