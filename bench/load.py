"""Putting a scale's cached data on the servers, checking it is there, and taking it off again.

Every `ensure_*` is idempotent: it counts what is on the server and loads only
what does not match the generated data (other test runs delete indices and
empty buckets while the bench runs). `unload` removes every bench target's
contents, so other test runs are not slowed by gigabytes they do not need.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import boto3
import orjson
import psycopg
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from bench import generate, targets
from bench.targets import Targets

COPY_CHUNK = 1024 * 1024
# Files of the bench's objects, uploaded by s3transfer: multipart above 8 MiB, parts of 8 MiB.
TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
BULK_DOCS = 2000


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _admin(settings: PostgresSettings) -> psycopg.Connection:
    return psycopg.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


def pg_exists(settings: PostgresSettings) -> bool:
    with _admin(settings) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.dbname,)).fetchone() is not None


def pg_recreate(settings: PostgresSettings, create: bool = True) -> None:
    """Drops the bench database (closing its sessions) and, with `create`, makes it anew and empty."""
    with _admin(settings) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{settings.dbname}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{settings.dbname}"')


def pg_counts(settings: PostgresSettings) -> dict[str, int]:
    if not pg_exists(settings):
        return {}
    with postgres.connect(settings) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def pg_load(settings: PostgresSettings, data: Path) -> None:
    pg_recreate(settings)
    with postgres.connect(settings) as conn:
        conn.execute((data / "schema.sql").read_text())
        for table in generate.PG_TABLES:
            with open(data / f"{table}.copy", "rb") as f, conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
                while chunk := f.read(COPY_CHUNK):
                    copy.write(chunk)
        conn.execute((data / "indexes.sql").read_text())
        conn.execute("ANALYZE")


def ensure_postgres(t: Targets, scale: float) -> dict[str, int]:
    info = generate.marker(generate.data_dir(scale) / "postgres")
    want = info["rows"]
    if pg_counts(t.postgres) != want:
        _log(f"loading PostgreSQL data (scale {scale:g}) into database {t.postgres.dbname}")
        started = time.monotonic()
        pg_load(t.postgres, generate.data_dir(scale) / "postgres")
        _log(f"loaded PostgreSQL in {time.monotonic() - started:.1f}s")
        got = pg_counts(t.postgres)
        if got != want:
            raise RuntimeError(f"PostgreSQL holds {got} rows after loading, expected {want}")
    return want


# --- Elasticsearch ------------------------------------------------------------------------------------


def es_counts(settings: ElasticsearchSettings, pattern: str) -> dict[str, int]:
    es = es_cluster.client(settings)
    found = es_cluster.list_indices(es, pattern)
    if found:
        es.indices.refresh(index=",".join(found))
    return {i: es.count(index=i)["count"] for i in found}


def es_wipe(settings: ElasticsearchSettings, pattern: str) -> None:
    es = es_cluster.client(settings)
    es.options(ignore_status=404).indices.delete(index=pattern, expand_wildcards="all")


def es_merges_settled(settings: ElasticsearchSettings, most_seconds: float = 900) -> dict[str, float]:
    """Waits until Elasticsearch runs no merge (those a restore's last flushes start go on after
    it); returns the seconds waited and the merge time the node spent in them (thread-seconds)."""
    es = es_cluster.client(settings)

    def merges() -> tuple[int, int]:
        nodes = es.nodes.stats(metric="indices", index_metric="merge")["nodes"].values()
        found = [n["indices"]["merges"] for n in nodes]
        return sum(m["current"] for m in found), sum(m["total_time_in_millis"] for m in found)

    started = time.monotonic()
    current, spent_before = merges()
    spent = spent_before
    while current and time.monotonic() - started < most_seconds:
        time.sleep(1)
        current, spent = merges()
    return {"seconds": round(time.monotonic() - started, 1), "merge_seconds": round((spent - spent_before) / 1000, 1)}


def es_drop_templates(settings: ElasticsearchSettings) -> list[str]:
    """Deletes the cluster's user-made templates. A backup takes every template and an `empty`
    restore refuses one that exists, so the bench's bundles must hold only what its own restores
    can put back into an empty cluster: the bench's data has no templates of its own."""
    es = es_cluster.client(settings)
    found = es_export.templates(es)
    for t in found["index_templates"]:
        es.indices.delete_index_template(name=t["name"])
    for t in found["component_templates"]:
        es.cluster.delete_component_template(name=t["name"])
    for name in found["legacy_templates"]:
        es.indices.delete_template(name=name)
    names = [t["name"] for t in found["index_templates"] + found["component_templates"]] + list(
        found["legacy_templates"]
    )
    if names:
        _log(f"deleted the templates {', '.join(names)}: an empty-mode restore of the bench's bundles refuses them")
    return names


def _bulk_bodies(path: Path):
    with open(path, "rb", buffering=COPY_CHUNK) as f:
        lines = []
        for line in f:
            lines.append(line)
            if len(lines) >= 2 * BULK_DOCS:
                yield b"".join(lines)
                lines = []
        if lines:
            yield b"".join(lines)


def es_load_index(settings: ElasticsearchSettings, index: str, definition: dict, path: Path) -> None:
    es = es_cluster.client(settings)
    es.options(ignore_status=404).indices.delete(index=index)
    body = {"settings": {**definition["settings"], "refresh_interval": "-1"}, "mappings": definition["mappings"]}
    es.indices.create(index=index, body=body)

    def send(payload: bytes) -> None:
        resp = es.bulk(index=index, operations=payload)
        if resp["errors"]:
            first = next(i for i in resp["items"] if "error" in next(iter(i.values())))
            raise RuntimeError(f"bulk load of {index} failed: {first}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = set()
        for payload in _bulk_bodies(path):
            if len(pending) >= 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
            pending.add(pool.submit(send, payload))
        for f in pending:
            f.result()
    es.indices.put_settings(index=index, body={"index": {"refresh_interval": None}})
    es.indices.refresh(index=index)


def ensure_elasticsearch(t: Targets, scale: float) -> dict[str, int]:
    data = generate.data_dir(scale) / "elasticsearch"
    want = {t.index(name): docs for name, docs in generate.marker(data)["docs"].items()}
    definitions = json.loads((data / "indices.json").read_text())
    got = es_counts(t.elasticsearch, t.index_pattern)
    for extra in sorted(set(got) - set(want)):
        es_cluster.client(t.elasticsearch).indices.delete(index=extra)
    for name in definitions:
        index = t.index(name)
        if got.get(index) != want[index]:
            _log(f"loading {want[index]} documents into index {index}")
            started = time.monotonic()
            es_load_index(t.elasticsearch, index, definitions[name], data / f"{name}.bulk")
            _log(f"loaded {index} in {time.monotonic() - started:.1f}s")
    got = es_counts(t.elasticsearch, t.index_pattern)
    if got != want:
        raise RuntimeError(f"Elasticsearch holds {got} documents after loading, expected {want}")
    return want


# --- object storage -----------------------------------------------------------------------------------


def ensure_bucket(s3, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        s3.create_bucket(Bucket=bucket)


def s3_listing(settings: S3Settings) -> dict[str, int]:
    s3 = s3io.client(settings)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["Size"]
    return found


def s3_counts(settings: S3Settings) -> dict[str, int]:
    listing = s3_listing(settings)
    return {"objects": len(listing), "bytes": sum(listing.values())}


def s3_wipe(settings: S3Settings) -> int:
    """Deletes every object of the bucket and aborts unfinished uploads; returns how many objects."""
    s3 = s3io.client(settings)
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except Exception:
        return 0
    s3io.abort_uploads(s3, settings.bucket, "")
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=settings.bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def manifest(scale: float) -> list[dict]:
    path = generate.data_dir(scale) / "storage" / "manifest.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def _loader_client(settings: S3Settings):
    """A client with room for the loader's 16 parallel uploads."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=settings.secret_access_key or None,
        region_name=settings.region_name or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def ensure_storage(t: Targets, scale: float) -> dict[str, int]:
    s3 = _loader_client(t.storage)
    for bucket in (t.storage.bucket, t.backups.bucket):
        ensure_bucket(s3, bucket)
    entries = manifest(scale)
    objects_dir = generate.data_dir(scale) / "storage" / "objects"
    listing = s3_listing(t.storage)
    wanted = {e["key"]: e["size"] for e in entries}
    stale = [k for k, size in listing.items() if wanted.get(k) != size]
    if stale:
        for i in range(0, len(stale), 1000):
            s3.delete_objects(
                Bucket=t.storage.bucket, Delete={"Objects": [{"Key": k} for k in stale[i : i + 1000]], "Quiet": True}
            )
    missing = [e for e in entries if listing.get(e["key"]) != e["size"]]
    if missing:
        _log(f"uploading {len(missing)} objects into bucket {t.storage.bucket}")
        started = time.monotonic()

        def put(entry: dict) -> None:
            extra = {"ContentType": entry["content_type"], "Metadata": entry["metadata"]}
            s3.upload_file(
                str(objects_dir / entry["file"]), t.storage.bucket, entry["key"], ExtraArgs=extra, Config=TRANSFER
            )

        with ThreadPoolExecutor(max_workers=16) as pool:
            for f in [pool.submit(put, e) for e in missing]:
                f.result()
        _log(f"uploaded in {time.monotonic() - started:.1f}s")
    want = {"objects": len(entries), "bytes": sum(e["size"] for e in entries)}
    got = s3_counts(t.storage)
    if got != want:
        raise RuntimeError(f"bucket {t.storage.bucket} holds {got} after loading, expected {want}")
    return want


# --- all ----------------------------------------------------------------------------------------------

ENSURE = {"postgres": ensure_postgres, "elasticsearch": ensure_elasticsearch, "storage": ensure_storage}


def ensure(t: Targets, scale: float, jobs=("postgres", "elasticsearch", "storage")) -> dict[str, dict]:
    generate.ensure(scale, log=_log)
    return {job: ENSURE[job](t, scale) for job in jobs}


def counts(t: Targets, job: str) -> dict:
    """What the bench target of `job` holds now, in the shape `expected` gives."""
    if job == "postgres":
        return pg_counts(t.postgres)
    if job == "elasticsearch":
        return es_counts(t.elasticsearch, t.index_pattern)
    return s3_counts(t.storage)


def expected(t: Targets, scale: float, job: str) -> dict:
    info = generate.marker(generate.data_dir(scale) / job)
    if job == "postgres":
        return info["rows"]
    if job == "elasticsearch":
        return {t.index(name): docs for name, docs in info["docs"].items()}
    return {"objects": info["objects"], "bytes": info["bytes"]}


def wipe(t: Targets, job: str) -> None:
    """Empties one target, as a restore into a fresh stack would find it."""
    if job == "postgres":
        pg_recreate(t.postgres)
    elif job == "elasticsearch":
        es_wipe(t.elasticsearch, t.index_pattern)
    else:
        s3_wipe(t.storage)


def unload(t: Targets) -> None:
    """Takes every bench target's data off the servers (the generated files stay cached)."""
    pg_recreate(t.postgres, create=False)
    es_wipe(t.elasticsearch, t.index_pattern)
    for bucket in (t.storage, t.backups):
        s3_wipe(bucket)
    _log("bench data unloaded: database dropped, bench-* indices deleted, bench buckets emptied")


def main() -> None:
    parser = argparse.ArgumentParser(description="Load or unload the bench data")
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--unload", action="store_true")
    parser.add_argument("--prefix", default=targets.PREFIX)
    args = parser.parse_args()
    t = targets.load(args.prefix)
    if args.unload:
        unload(t)
    else:
        print(json.dumps(ensure(t, args.scale), indent=2))


if __name__ == "__main__":
    main()
