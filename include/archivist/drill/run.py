"""A drill from start to end: the bundle restored into scratch targets, what they hold compared
with the bundle, the verdict. The DAG runs the steps as tasks; `drill` runs them in one process.

The restore is archivist's own (runner/restore.run_restore) in `empty` mode, so it verifies the
bundle first and refuses a scratch target that somehow holds data."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from archivist import config
from archivist.drill import cleanup, compare, indices, objects, tables
from archivist.drill.digest import LineDigest
from archivist.drill.record import Verdict
from archivist.drill.scratch import ScratchTargets
from archivist.errors import ArchivistError
from archivist.format import bundle
from archivist.format.bundle_index import BundleSource
from archivist.format.members import finish, members
from archivist.runner import restore as restorer
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore

log = logging.getLogger(__name__)


def live_settings() -> dict[str, Any]:
    """Each job's live connection: the servers the scratch targets are made on (never written)."""
    return {job: restorer.load_settings(job) for job in config.JOBS}


def restore(store: BackupStore, key: str, scratch: ScratchTargets, settings: dict[str, Any]) -> dict[str, Any]:
    """Restores bundle `key` into the scratch targets; returns the verified summary (safe for XCom)."""
    stored = store.locate(key)
    meta = store.read_meta(stored)
    extra = sorted({name for p in (meta.get("artifacts") or {}) if (name := bundle.database_of_path(str(p)))})
    source = store.bundle_source(stored.key, encrypted=stored.encrypted)
    log.info("drill of %s into scratch targets: %s", stored.key, scratch.describe())
    result = restorer.run_restore(
        source, stored.key.name, None, "empty", scratch.restore_options(extra), settings=settings
    )
    return {
        "key": stored.key.name,
        "encrypted": stored.encrypted,
        "etag": result["etag"],
        "jobs": result["jobs"],
        "counts": result["counts"],
        "problems": result["problems"],
        "databases": extra,
    }


def _read_bundle(source: BundleSource) -> dict[str, Any]:
    """The bundle's data as the drill reads it: each dump's tables, each index's ids, each
    object's sha256 and the manifest; every member hashed against meta.json as it is read."""
    read: dict[str, Any] = {"dumps": {}, "indices": {}, "archive": {}, "manifest": None}

    def wanted(path: str) -> bool:
        return path.endswith((".sql", ".ndjson", ".tgz")) and not bundle.is_postgres_roles(path)

    for path, fileobj in members(source, wanted):
        if bundle.is_postgres_dump(path):
            read["dumps"][""] = tables.read_dump(fileobj)
        elif (name := bundle.database_of_path(path)) is not None:
            read["dumps"][name] = tables.read_dump(fileobj)
        elif (index := bundle.index_of_path(path)) is not None:
            read["indices"][index] = indices.read_lines(fileobj)
        elif path.startswith("jobs.storage/storage-"):
            read["archive"].update(objects.read_archive(fileobj))  # one archive, or one per part
        elif path.startswith("jobs.storage/manifest-"):
            read["manifest"] = {**(read["manifest"] or {}), **objects.read_manifest(fileobj)}
        finish(fileobj)  # what a reader left is hashed too
    return read


def check(
    store: BackupStore, restored: dict[str, Any], scratch: ScratchTargets, settings: dict[str, Any]
) -> tuple[list[str], dict[str, int]]:
    """Compares the scratch targets with the bundle; returns the differences and what was checked."""
    source = store.bundle_source(
        bundle.BackupKey.parse(restored["key"]), etag=restored["etag"], encrypted=restored.get("encrypted", False)
    )
    read = _read_bundle(source)
    counts = restored["counts"]
    problems = [f"restore: {p}" for p in restored["problems"]]
    checked = dict.fromkeys(("tables", "rows", "indices", "documents", "objects", "bytes"), 0)
    jobs = restored["jobs"]
    if "postgres" in jobs:
        pg_counts = counts.get(bundle.JOB_DIRS["postgres"]) or {}
        scratch_names = {"": scratch.database, **dict(scratch.database_map(restored["databases"]))}
        found = {}
        for label, dump in read["dumps"].items():
            meta = pg_counts if label == "" else (pg_counts.get("databases") or {}).get(label) or {}
            db = compare.Database(meta if isinstance(meta, dict) else {}, dump)
            db.tables, db.restored = tables.read_database(settings["postgres"], scratch_names[label], dump)
            checked["tables"] += db.tables
            checked["rows"] += sum(d.count for d in db.restored.values())
            found[label] = db
        problems += compare.databases(found)
    if "elasticsearch" in jobs:
        es_counts = counts.get(bundle.JOB_DIRS["elasticsearch"]) or {}
        es_counts = _without_data_streams(es_counts if isinstance(es_counts, dict) else {}, read["indices"])
        es, raw = es_cluster.client(settings["elasticsearch"]), es_cluster.raw_client(settings["elasticsearch"])
        names = set(read["indices"]) | set(es_counts.get("indices") or {})
        got: dict[str, LineDigest | None] = {i: indices.read_index(es, scratch.index_prefix + i, raw) for i in names}
        checked["indices"] = sum(1 for d in got.values() if d is not None)
        checked["documents"] = sum(d.count for d in got.values() if d is not None)
        problems += compare.indices(es_counts, read["indices"], got)
    if "storage" in jobs:
        st_settings = settings["storage"]
        bucket = scratch.storage_bucket or st_settings.bucket
        in_prefix = objects.read_prefix(s3io.client(st_settings), bucket, scratch.storage_prefix)
        checked["objects"], checked["bytes"] = len(in_prefix), sum(s.size for s in in_prefix.values())
        st_counts = counts.get(bundle.JOB_DIRS["storage"]) or {}
        problems += compare.objects(
            st_counts if isinstance(st_counts, dict) else {}, read["archive"], read["manifest"], in_prefix
        )
    for problem in problems:
        log.error("drill: %s", problem)
    return problems, checked


def _without_data_streams(es_counts: dict[str, Any], read: dict[str, LineDigest]) -> dict[str, Any]:
    """meta.json's Elasticsearch counts, and the ids read from the bundle (`read`, changed in
    place), without the data streams the drill leaves out (scratch.restore_options says why)."""
    streams = es_counts.get(bundle.DATA_STREAMS_COUNT) or []
    if not isinstance(streams, list) or not streams:
        return es_counts
    for name in streams:
        read.pop(name, None)
    counted = es_counts.get("indices")
    indices = {k: v for k, v in counted.items() if k not in streams} if isinstance(counted, dict) else counted
    return {**es_counts, "indices": indices}


def notes(restored: dict[str, Any]) -> list[str]:
    """What the drill of `restored` (restore's summary) leaves unchecked: the bundle's data streams."""
    es_counts = (restored.get("counts") or {}).get(bundle.JOB_DIRS["elasticsearch"]) or {}
    streams = es_counts.get(bundle.DATA_STREAMS_COUNT) if isinstance(es_counts, dict) else None
    if "elasticsearch" not in restored.get("jobs", []) or not isinstance(streams, list) or not streams:
        return []
    return [
        f"data stream(s) {', '.join(str(s) for s in streams)} not drilled: no template makes one under scratch names"
    ]


def verdict(
    key: str,
    problems: list[str] | None,
    checked: dict[str, int],
    seconds: float,
    run: str,
    error: str | None = None,
    notes: list[str] | None = None,
) -> Verdict:
    """`failed` with `error` when the restore or the checks could not run, else matched or
    differed; `notes` say what was not checked."""
    if error is not None:
        result, lines = "failed", [error]
    else:
        result, lines = ("differed", problems) if problems else ("matched", [])
    return Verdict(key, result, dt.datetime.now(dt.UTC), tuple(lines), checked, seconds, run, tuple(notes or ()))


def run_drill(
    store: BackupStore, key: str = "latest", storage_bucket: str | None = None, run: str = "archivist drill"
) -> Verdict:
    """A whole drill in one process, the scratch targets removed whatever happens; the verdict is
    returned, not written (the caller writes it with record.write)."""
    started = time.monotonic()
    stored = store.locate(key)
    settings = live_settings()
    scratch = ScratchTargets.new(storage_bucket)
    try:
        try:
            restored = restore(store, stored.key.name, scratch, settings)
            problems, checked = check(store, restored, scratch, settings)
        except ArchivistError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return verdict(stored.key.name, None, {}, time.monotonic() - started, run, error)
        return verdict(stored.key.name, problems, checked, time.monotonic() - started, run, notes=notes(restored))
    finally:
        cleanup.remove(scratch, settings)
