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

from archivist.config import S3Settings, load_retention
from archivist.drill import record as records
from archivist.errors import ArchivistError, VerificationError
from archivist.format.bundle import JOB_DIRS, BackupKey
from archivist.transport.backup_bucket import BackupStore, StoredBundle, plan_retention

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
    artifacts = meta.get("artifacts") or {}
    for job, folder in JOB_DIRS.items():
        if folder not in counts and folder not in stats:
            continue
        jobs.append(
            {
                "job": job,
                "counts": counts.get(folder) or {},
                "time_seconds": (stats.get(folder) or {}).get("time_seconds"),
                "server_version": servers.get(job),
                "bytes": _job_bytes(artifacts, folder),
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


def _job_bytes(artifacts: dict[str, Any], folder: str) -> int | None:
    """The bytes of a job's artifacts in the bundle (before compression), from meta.json's
    `artifacts`; None for a bundle of the original tool, which lists none."""
    sizes = [
        entry.get("size")
        for path, entry in artifacts.items()
        if path.startswith(folder + "/") and isinstance(entry, dict) and isinstance(entry.get("size"), int)
    ]
    return sum(sizes) if sizes else None


def retention_rules() -> dict[str, Any]:
    """The rules of this server's environment (BACKUPS_KEPT and BACKUPS_KEPT_*): `policy` as
    "last 30, daily 7", or `error` saying which variable is wrong."""
    try:
        return {"policy": load_retention().describe(), "error": None}
    except ArchivistError as exc:
        return {"policy": None, "error": str(exc)}


def kept_by(bundles: list[StoredBundle]) -> dict[str, list[str]]:
    """Each bundle's key with the rules that keep it, as a backup's rotation would apply them now
    (an empty list: the next rotation deletes it); nothing when the rules are misconfigured."""
    try:
        policy = load_retention()
    except ArchivistError:
        return {}
    return {v.bundle.key.name: list(v.reasons) for v in plan_retention(bundles, policy)}


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
        """Every bundle, newest first, with its meta.json summarized and the retention rules that
        keep it (`retention`, None when the rules are misconfigured); new meta.json read in parallel."""
        bundles = self.store.list_bundles()
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="meta") as pool:
            metas = list(pool.map(self.meta, bundles))
        kept = kept_by(bundles)
        drilled = self.drills()
        rows = [summarize(b, meta, error, ui_root) for b, (meta, error) in zip(bundles, metas, strict=True)]
        for row in rows:
            row["retention"] = kept.get(row["key"])
            row["drill"] = records.listed(drilled.get(row["key"]))
        return rows

    def drills(self) -> dict[str, records.Verdict | str]:
        """Each bundle's last drill verdict (drills/<key>.json), read afresh: a drill rewrites it.
        A bucket that will not list them leaves the bundles shown, without verdicts."""
        try:
            return records.read_all(self.store)
        except Exception as exc:
            log.warning("could not read the drill records in %s: %s", self.store.where, exc)
            return {}
