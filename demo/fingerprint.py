"""What a round trip must preserve, read straight from the real servers, and how to wipe it (demo stack only)."""

from __future__ import annotations

import hashlib
import os
import subprocess

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.transport import s3io

DEMO_TEMPLATES = ("archivist-demo-logs", "archivist-demo-logs-mappings", "archivist-demo-legacy")


def pg_dump_text(settings: PostgresSettings) -> str:
    """The database as pg_dump prints it: equal text means equal schema and data.
    The \\restrict lines carry a random key per dump, so they are left out."""
    text = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **settings.libpq_env()},
    ).stdout
    return "\n".join(line for line in text.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def es_snapshot(settings: ElasticsearchSettings) -> dict:
    """Every user index's documents (_id, _routing, _source), mappings and aliases, and the templates."""
    es = es_cluster.client(settings)
    snapshot = {"indices": {}, "templates": es_export.templates(es)}
    for index in es_cluster.list_indices(es):
        es.indices.refresh(index=index)
        docs = sorted(es_export.document_lines(es, index))
        body = es.indices.get(index=index)[index]
        snapshot["indices"][index] = {
            "docs": docs,
            "count": len(docs),
            "mappings": body["mappings"],
            "aliases": body.get("aliases", {}),
            "shards": body["settings"]["index"]["number_of_shards"],
        }
    return snapshot


def s3_snapshot(settings: S3Settings) -> dict:
    """Every object's sha256, content type and user metadata, by key."""
    s3 = s3io.client(settings)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            got = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])
            digest = hashlib.sha256()
            for chunk in iter(lambda body=got["Body"]: body.read(1 << 20), b""):
                digest.update(chunk)
            found[obj["Key"]] = (digest.hexdigest(), got["ContentType"], got.get("Metadata", {}))
    return found


def stack_snapshot(pg: PostgresSettings, es: ElasticsearchSettings, s3: S3Settings) -> tuple[str, dict, dict]:
    """All three servers at once, for comparing before and after a round trip."""
    return pg_dump_text(pg), es_snapshot(es), s3_snapshot(s3)


def wipe_postgres(settings: PostgresSettings) -> None:
    from archivist.sources.postgres import job as postgres

    with postgres.connect(settings) as conn:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema'"
        ).fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        # Recreated as initdb makes it, so pg_dump sees no difference to dump.
        conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        conn.execute("COMMENT ON SCHEMA public IS 'standard public schema'")


def wipe_elasticsearch(settings: ElasticsearchSettings) -> None:
    es = es_cluster.client(settings)
    for index in es_cluster.list_indices(es):
        es.indices.delete(index=index)
    es.options(ignore_status=404).indices.delete_index_template(name="archivist-demo-logs")
    es.options(ignore_status=404).cluster.delete_component_template(name="archivist-demo-logs-mappings")
    es.options(ignore_status=404).indices.delete_template(name="archivist-demo-legacy")


def wipe_bucket(settings: S3Settings) -> None:
    s3 = s3io.client(settings)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=settings.bucket, Delete={"Objects": keys})
