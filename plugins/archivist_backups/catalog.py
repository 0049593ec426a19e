"""The bundles in the backup bucket with what their meta.json says, for the Backups page.

Each meta.json is read by BackupStore.read_meta, from ranged GETs, never a download.
Bundles are immutable (a key is never reused), so each meta.json is read once
per API server process and cached.

Nothing here speaks HTTP: the routes (routes.py) turn its errors into status codes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from archivist.config import S3Settings
from archivist.errors import VerificationError
from archivist.format.bundle import JOB_DIRS, BackupKey
from archivist.transport.backup_bucket import BackupStore, StoredBundle

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
READERS = 8


def dag_url(ui_root: str, dag_id: str) -> str:
    """The Airflow UI page of a DAG."""
    return f"{ui_root.rstrip('/')}/dags/{quote(dag_id, safe='')}"


def run_url(ui_root: str, dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow UI page of a dag run, or None when the bundle was not made by Airflow."""
    if not dag_id or not run_id:
        return None
    return f"{dag_url(ui_root, dag_id)}/runs/{quote(run_id, safe='')}"


def summarize(
    stored: StoredBundle, meta: dict[str, Any] | None, error: str | None, ui_root: str = "/"
) -> dict[str, Any]:
    """One row of the bundle list: the object, and what its meta.json says per job."""
    row = stored.as_dict()
    row.update(
        format_version=None,
        archivist_version=None,
        created_at=None,
        namespace=None,
        jobs=[],
        airflow={"dag_id": None, "run_id": None, "url": None},
        error=error,
    )
    if meta is None:
        return row
    counts, stats, servers = (meta.get("counts") or {}), (meta.get("stats") or {}), (meta.get("servers") or {})
    jobs = []
    for job, folder in JOB_DIRS.items():
        if folder not in counts and folder not in stats:
            continue
        jobs.append(
            {
                "job": job,
                "counts": counts.get(folder) or {},
                "time_seconds": (stats.get(folder) or {}).get("time_seconds"),
                "server_version": servers.get(job),
            }
        )
    airflow = meta.get("airflow") or {}
    row.update(
        format_version=meta.get("format_version"),
        archivist_version=meta.get("archivist_version"),
        created_at=meta.get("created_at"),
        namespace=meta.get("namespace"),
        jobs=jobs,
        airflow={
            "dag_id": airflow.get("dag_id"),
            "run_id": airflow.get("run_id"),
            "url": run_url(ui_root, airflow.get("dag_id"), airflow.get("run_id")),
        },
    )
    return row


_catalogs: dict[S3Settings, Catalog] = {}
_catalogs_lock = threading.Lock()


class Catalog:
    """The bucket's bundles with their meta.json, each read once and then kept."""

    @classmethod
    def of(cls, settings: S3Settings) -> Catalog:
        """The one catalog of the bucket `settings` reach, so its cache outlives a request."""
        with _catalogs_lock:
            if settings not in _catalogs:
                _catalogs[settings] = cls(BackupStore(settings))
            return _catalogs[settings]

    def __init__(self, store: BackupStore, cache_size: int = CACHE_SIZE):
        self.store = store
        self._cache: OrderedDict[tuple, tuple[dict[str, Any] | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = cache_size

    @staticmethod
    def _cache_key(stored: StoredBundle) -> tuple:
        return stored.object_key, stored.size, stored.last_modified.isoformat()

    def meta(self, stored: StoredBundle) -> tuple[dict[str, Any] | None, str | None]:
        """(meta.json, None), or (None, why it cannot be read) for a damaged bundle."""
        ck = self._cache_key(stored)
        with self._lock:
            if ck in self._cache:
                self._cache.move_to_end(ck)
                return self._cache[ck]
        try:
            found: tuple[dict[str, Any] | None, str | None] = (self.store.read_meta(stored), None)
        except VerificationError as exc:  # damage is as permanent as the bundle: cache it too
            found = (None, str(exc))
            if stored.encrypted:  # or an identity not given yet: read again once it is
                return found
        with self._lock:
            self._cache[ck] = found
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    def locate(self, key: str) -> StoredBundle:
        """The bundle named `key` (with or without .tgz); BackupNotFoundError, naming the closest
        keys, when there is none. A malformed key is refused before the bucket is listed."""
        BackupKey.parse(key)
        return self.store.locate(key)

    def cached(self) -> int:
        with self._lock:
            return len(self._cache)

    def list(self, ui_root: str = "/") -> list[dict[str, Any]]:
        """Every bundle, newest first, with its meta.json summarized; new ones read in parallel."""
        bundles = self.store.list_bundles()
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="meta") as pool:
            metas = list(pool.map(self.meta, bundles))
        return [summarize(b, meta, error, ui_root) for b, (meta, error) in zip(bundles, metas, strict=True)]
