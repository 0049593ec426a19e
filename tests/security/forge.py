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

from archivist.format import bundle, bundle_index
from archivist.format.artifact import Artifact
from archivist.format.bundle import BackupKey, JobResult
from archivist.format.deflate import GzipWriter
from archivist.transport.staging import LocalStaging
from tests.support import ROOT

CREATED = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)


def forge(
    files: dict[str, bytes],
    key: BackupKey | None = None,
    change_meta=None,
    counts: dict[str, dict[str, Any]] | None = None,
) -> tuple[BackupKey, bytes]:
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
            if "created_at" not in meta:  # the original tool's meta.json: written as its plain tar
                return key, _plain_tar(key, {bundle.META: json.dumps(meta).encode(), **files})
        out_bytes = io.BytesIO()
        bundle.write_bundle(out_bytes, key, meta, [a for arts in by_job.values() for a in arts], staging.open)
        return key, out_bytes.getvalue()
    finally:
        staging.cleanup()


def _plain_tar(key: BackupKey, files: dict[str, bytes]) -> bytes:
    """A bundle as `tar czf` of its folder makes it: no restart points, no seek index."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, body in files.items():
            info = tarfile.TarInfo(f"{key.name}/{path}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def forge_appended(
    files: dict[str, bytes], smuggled: dict[str, bytes], key: BackupKey | None = None
) -> tuple[BackupKey, bytes]:
    """A bundle whose tar holds `files` (checksums consistent), followed, after the tar's end, by
    other contents for some of those paths (`smuggled`), with a seek index pointing at those
    instead: what `tar tzf` and a front-to-back read see differs from what a ranged read sees."""
    key = key or BackupKey.new()
    files = {path.replace("{id}", key.backup_id): body for path, body in files.items()}
    smuggled = {path.replace("{id}", key.backup_id): body for path, body in smuggled.items()}
    _, honest = forge(files, key)
    meta_body = members(honest)[bundle.META]
    mtime = int(CREATED.timestamp())
    starts: list[tuple[str, int, int]] = []
    out = io.BytesIO()
    with GzipWriter(out, compresslevel=bundle.GZIP_LEVEL, mtime=mtime, engine=bundle.GZIP_ENGINE) as gz:
        with tarfile.open(fileobj=gz, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            for folder in [key.name, *sorted({f"{key.name}/{p.split('/')[0]}" for p in files})]:
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                tar.addfile(info)
            for path, body in [(bundle.META, meta_body), *files.items()]:
                starts.append((path, *gz.restart_point()))
                info = tarfile.TarInfo(f"{key.name}/{path}")
                info.size, info.mtime = len(body), mtime
                tar.addfile(info, io.BytesIO(body))
        ranges = bundle_index.spans(starts, *gz.restart_point())
        for path, body in smuggled.items():  # after the tar's end: tar readers never look here
            start, _ = gz.restart_point()
            info = tarfile.TarInfo(f"{key.name}/{path}")
            info.size, info.mtime = len(body), mtime
            gz.write(info.tobuf(tarfile.PAX_FORMAT) + body + b"\0" * (-len(body) % tarfile.BLOCKSIZE))
            end, crc = gz.restart_point()
            ranges[path] = (start, end, crc)
        gz.append_stored(bundle_index.index_block(ranges))
    return key, out.getvalue()


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
    return subprocess.run(
        ["archivist", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
