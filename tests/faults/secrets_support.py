"""Helpers for the secrets, concurrency, killed-task and bad-configuration fault tests: the
`archivist` command run with the spec's variables, S3 listings of staging and unfinished uploads,
a bundle reader, and small indices of a test's own."""

from __future__ import annotations

import gzip
import io
import os
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from conftest import ROOT

SPEC_PREFIXES = ("DATABASE_", "ELASTICSEARCH_", "S3_", "BACKUP_")


def spec_env(pg: PostgresSettings, es: ElasticsearchSettings, storage: S3Settings, backups: S3Settings,
             es_user: str = "") -> dict[str, str]:
    """This process's environment with the original tool's variables, and no AIRFLOW_CONN_* at all."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CONN_", *SPEC_PREFIXES)) and k not in ("BACKUPS_KEPT", "NAMESPACE")}
    url = urlsplit(es.url)
    env.update({
        "DATABASE_HOST": pg.host, "DATABASE_PORT": str(pg.port), "DATABASE_NAME": pg.dbname,
        "DATABASE_USER": pg.user, "DATABASE_PASSWORD": pg.password,
        "ELASTICSEARCH_PROTOCOL": url.scheme, "ELASTICSEARCH_HOST": url.hostname or "",
        "ELASTICSEARCH_PORT": str(url.port), "BACKUPS_KEPT": "30",
    })
    if es.user or es_user:
        env.update({"ELASTICSEARCH_USER": es.user or es_user, "ELASTICSEARCH_PASSWORD": es.password})
    for prefix, s3 in (("S3_", storage), ("BACKUP_", backups)):
        env.update({f"{prefix}ACCESS_KEY_ID": s3.access_key_id, f"{prefix}SECRET_ACCESS_KEY": s3.secret_access_key,
                    f"{prefix}BUCKET_NAME": s3.bucket, f"{prefix}ENDPOINT_URL": s3.endpoint_url or "",
                    f"{prefix}REGION": s3.region_name or "us-east-1"})
        if s3.session_token:
            env[f"{prefix}SESSION_TOKEN"] = s3.session_token
    return env


def archivist(env: dict[str, str], *args: str, timeout: int = 300, cwd: Any = None) -> subprocess.CompletedProcess:
    command = shutil.which("archivist", path=env.get("PATH"))
    assert command, "the archivist command is not on PATH: source .local/env.sh"
    return subprocess.run([command, *args], capture_output=True, text=True, env=env, cwd=cwd or ROOT,
                          timeout=timeout)


@contextmanager
def small_index(es: Any, prefix: str, docs: int) -> Iterator[str]:
    """An index named `<prefix>-<random>` holding `docs` tiny documents, deleted afterwards, so a
    test never races another over the demo indices."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    es.indices.create(index=name, settings={"number_of_shards": 1, "number_of_replicas": 0})
    try:
        for i in range(docs):
            es.index(index=name, id=str(i), document={"n": i, "text": f"document {i}"})
        es.indices.refresh(index=name)
        yield name
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def objects_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]


def unfinished_uploads(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys of unfinished multipart uploads starting with `prefix` (listed whole: MinIO's
    Prefix matches only whole keys)."""
    return [u["Key"] for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
            for u in page.get("Uploads", []) if u["Key"].startswith(prefix)]


def bundle_blobs(stream: Any, label: str) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) for every member of a bundle stream: its name and PAX headers, its data,
    and for a gzipped member (the storage archive) the whole decompressed inner tar too."""
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            where = f"{label}:{member.name}"
            yield f"{where} (header)", (member.name + repr(member.pax_headers)).encode()
            if not member.isfile():
                continue
            data = tar.extractfile(member).read()
            yield where, data
            if member.name.endswith((".tgz", ".gz")):
                inner = gzip.decompress(data)
                yield f"{where} (decompressed)", inner
                with tarfile.open(fileobj=io.BytesIO(inner), mode="r:") as inner_tar:
                    for item in inner_tar:
                        yield f"{where}!{item.name} (header)", (item.name + repr(item.pax_headers)).encode()
                        if item.isfile():
                            yield f"{where}!{item.name}", inner_tar.extractfile(item).read()
