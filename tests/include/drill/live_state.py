"""The live stack as a drill must leave it: every database, every index and template, every
object of every bucket, read straight from the servers (the backup bucket's drill records and
lock aside, which a drill writes by design)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from urllib.parse import urlsplit

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.drill.record import FOLDER
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from archivist.transport.operation_lock import LOCK_OBJECT
from demo.fingerprint import es_snapshot, pg_dump_text, s3_snapshot


def _airflow_database() -> str | None:
    """Airflow's metadata database, which a DAG run writes by design, when it is on this server."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return urlsplit(url).path.lstrip("/") or None


def databases(pg: PostgresSettings) -> dict[str, str]:
    """Every database of the server but the templates, each as pg_dump prints it (hashed); of
    Airflow's metadata database only that it is there."""
    with postgres.connect(pg) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()]
    return {
        name: "Airflow's metadata"
        if name == _airflow_database()
        else hashlib.sha256(pg_dump_text(dataclasses.replace(pg, dbname=name)).encode()).hexdigest()
        for name in sorted(names)
    }


def indices(es: ElasticsearchSettings) -> dict:
    """Every index (open, closed or hidden) by name, with the user indices' documents, mappings,
    aliases and the templates as demo.fingerprint reads them."""
    client = es_cluster.client(es)
    names = sorted(client.indices.get(index="*", expand_wildcards="open,closed"))
    return {"names": names, "snapshot": es_snapshot(es)}


def buckets(s3: S3Settings, backups: S3Settings) -> dict:
    """Every object of every bucket of the S3 server; in the backup bucket, all but the drill
    records and the lock, by key and ETag."""
    client = s3io.client(s3)
    found = {}
    for bucket in sorted(b["Name"] for b in client.list_buckets()["Buckets"]):
        if bucket == backups.bucket:
            objects = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(backups.prefix) :]
                    if not name.startswith(FOLDER) and name != LOCK_OBJECT:
                        objects[obj["Key"]] = obj["ETag"]
            found[bucket] = objects
        else:
            found[bucket] = s3_snapshot(dataclasses.replace(s3, bucket=bucket))
    return found


def live_state(pg: PostgresSettings, es: ElasticsearchSettings, s3: S3Settings, backups: S3Settings) -> dict:
    return {"databases": databases(pg), "indices": indices(es), "buckets": buckets(s3, backups)}


def scratch_left(pg: PostgresSettings, es: ElasticsearchSettings, s3: S3Settings) -> list[str]:
    """Anything a drill's scratch targets left on the servers, by name."""
    with postgres.connect(pg) as conn:
        left = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'archivist_drill_%'")]
    left += [i for i in es_cluster.client(es).indices.get(index="archivist-drill-*", expand_wildcards="all")]
    client = s3io.client(s3)
    for bucket in (b["Name"] for b in client.list_buckets()["Buckets"]):
        listed = client.list_objects_v2(Bucket=bucket, Prefix="archivist-drill-").get("Contents", [])
        left += [f"{bucket}/{o['Key']}" for o in listed]
    return left
