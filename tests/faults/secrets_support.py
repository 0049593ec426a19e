"""Helpers for the secrets, concurrency, killed-task and bad-configuration fault tests: S3
listings of staging and unfinished uploads, a bundle reader, and small indices of a test's own.
The `archivist` command with the spec's variables is in tests/spec_support.py."""

from __future__ import annotations

import gzip
import io
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
    return [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


def unfinished_uploads(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Keys of unfinished multipart uploads starting with `prefix` (listed whole: MinIO's
    Prefix matches only whole keys)."""
    return [
        u["Key"]
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        for u in page.get("Uploads", [])
        if u["Key"].startswith(prefix)
    ]


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
