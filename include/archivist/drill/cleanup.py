"""Removing a drill's scratch targets, whatever state the drill left them in. Each kind is found
by its scratch name, never by a pattern a live name could match, and each is removed even when
another could not be; what could not be removed is named in the error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg.sql

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.drill.scratch import ScratchTargets
from archivist.errors import JobFailedError
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io

log = logging.getLogger(__name__)


def scratch_databases(settings: PostgresSettings, scratch: ScratchTargets) -> list[str]:
    with postgres.connect(settings) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_catalog.pg_database").fetchall()]
    return sorted(n for n in names if n == scratch.database or n.startswith(scratch.database + "_"))


def drop_databases(settings: PostgresSettings, scratch: ScratchTargets) -> list[str]:
    dropped = scratch_databases(settings, scratch)
    # Not from inside the database dropped: the connection's own database is never a scratch one.
    with postgres.connect(settings) as conn:
        for name in dropped:
            drop = psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(psycopg.sql.Identifier(name)))
    return dropped


def scratch_indices(settings: ElasticsearchSettings, scratch: ScratchTargets) -> list[str]:
    es = es_cluster.client(settings)
    found = es.indices.get(
        index=scratch.index_prefix + "*", expand_wildcards="all", allow_no_indices=True, ignore_unavailable=True
    )
    return sorted(name for name in found if name.startswith(scratch.index_prefix))


def delete_indices(settings: ElasticsearchSettings, scratch: ScratchTargets) -> list[str]:
    """By name, one at a time: clusters refuse wildcard deletes (action.destructive_requires_name)."""
    es = es_cluster.client(settings)
    deleted = scratch_indices(settings, scratch)
    for name in deleted:
        es.options(ignore_status=404).indices.delete(index=name)
    return deleted


def delete_objects(settings: S3Settings, scratch: ScratchTargets) -> int:
    s3 = s3io.client(settings)
    bucket = scratch.storage_bucket or settings.bucket
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=scratch.storage_prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"].startswith(scratch.storage_prefix)]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    # Filtered here, not by the server: MinIO matches an upload listing's Prefix only against whole keys.
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        if upload["Key"].startswith(scratch.storage_prefix):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return deleted


def remove(scratch: ScratchTargets, settings: dict[str, Any]) -> dict[str, Any]:
    """Removes the scratch targets of the jobs in `settings` (job name → its live settings, which
    reach the servers the scratch targets are on); raises naming what it could not remove."""
    removers: dict[str, Callable[[Any, ScratchTargets], Any]] = {
        "postgres": drop_databases,
        "elasticsearch": delete_indices,
        "storage": delete_objects,
    }
    removed: dict[str, Any] = {}
    failures = []
    for job, remover in removers.items():
        if job not in settings:
            continue
        try:
            removed[job] = remover(settings[job], scratch)
        except Exception as exc:
            failures.append(f"{job}: {type(exc).__name__}: {exc}")
    log.info("removed the drill's scratch targets (%s): %s", scratch.describe(), removed)
    if failures:
        raise JobFailedError(
            f"could not remove all of the drill's scratch targets ({scratch.describe()}): " + "; ".join(failures)
        )
    return removed
