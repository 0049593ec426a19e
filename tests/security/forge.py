"""Hostile bundles built in the test: well-formed bundles (checksums and seek index consistent)
whose contents an attacker chose, and helpers to plant them in the backup bucket.

`forge(files)` writes a bundle exactly as archivist does (meta.json with matching sizes and
sha256, restart points, the seek index), so only what the test put in the files is hostile."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import tarfile
from typing import Any

from archivist import bundle
from archivist.bundle import BackupKey, JobResult
from archivist.s3io import Artifact
from archivist.staging import LocalStaging
from conftest import ROOT

CREATED = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.timezone.utc)


def forge(files: dict[str, bytes], key: BackupKey | None = None, change_meta=None,
          counts: dict[str, dict[str, Any]] | None = None) -> tuple[BackupKey, bytes]:
    """A bundle holding `files` (paths inside the bundle folder, e.g. `jobs.postgres/postgres-<id>.sql`).

    The file names' `<id>` may be written as `{id}`; it is replaced by the key's id. `counts` are
    meta.json's per-job counts; `change_meta(meta)` edits meta.json before it is written."""
    key = key or BackupKey.new()
    files = {path.replace("{id}", key.backup_id): body for path, body in files.items()}
    staging = LocalStaging()
    try:
        by_job: dict[str, list[Artifact]] = {}
        for path, body in files.items():
            with staging.writer(path) as out:
                out.write(body)
            by_job.setdefault(bundle.job_of_path(path) or "postgres", []).append(Artifact(path, out.size, out.sha256))
        results = [JobResult(job, arts, (counts or {}).get(job, {}), 0.1, "test") for job, arts in by_job.items()]
        meta = bundle.build_meta(key, results, CREATED, "test", "archivist_backup", "manual__forged")
        if change_meta:
            change_meta(meta)
        out_bytes = io.BytesIO()
        bundle.write_bundle(out_bytes, key, meta, [a for arts in by_job.values() for a in arts], staging.open)
        return key, out_bytes.getvalue()
    finally:
        staging.cleanup()


def members(data: bytes) -> dict[str, bytes]:
    """Every file of a bundle by its path inside the bundle folder (meta.json included)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            if member.isfile():
                out[member.name.partition("/")[2]] = tar.extractfile(member).read()
    return out


def meta_of(data: bytes) -> dict[str, Any]:
    return json.loads(members(data)[bundle.META])


def plant(store, key: BackupKey, data: bytes) -> str:
    """Puts the bundle into the backup bucket under its key's object name; returns that name."""
    store.s3.put_object(Bucket=store.bucket, Key=key.object_key, Body=data)
    return key.object_key


def archivist(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """The installed `archivist` command with this process's environment (the test connections)."""
    return subprocess.run(["archivist", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})})
