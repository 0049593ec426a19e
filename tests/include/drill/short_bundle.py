"""A bundle whose checksums are all consistent but whose data holds a document (and a row) fewer
than its meta.json counts: written with the repository's own bundle writer (forge)."""

from __future__ import annotations

import json

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from tests.security.forge import forge, members


def drop_last_row(sql: bytes, table: str) -> bytes:
    """The dump without the last row of `table`'s COPY block."""
    header = sql.index(f"\nCOPY {table} ".encode()) + 1
    end = sql.index(b"\n\\.\n", header)
    last = sql.rindex(b"\n", header, end)
    return sql[:last] + sql[end:]


def one_row_and_one_document_fewer(data: bytes, table: str, index: str) -> tuple[BackupKey, bytes]:
    """`data` (a real bundle) forged again under a new key, with the last row of `table` and the
    first document of `index` left out of the data, and meta.json's counts as they were."""
    return _short(data, index, table)


def one_document_fewer(data: bytes, index: str) -> tuple[BackupKey, bytes]:
    """`data` (a real bundle, with or without a database dump) forged again under a new key, with
    the first document of `index` left out of its ndjson, and meta.json's counts as they were."""
    return _short(data, index, None)


def _short(data: bytes, index: str, table: str | None) -> tuple[BackupKey, bytes]:
    files = members(data)
    meta = json.loads(files.pop(bundle.META))
    if table is not None:
        dump = next(p for p in files if bundle.is_postgres_dump(p))
        files[dump] = drop_last_row(files[dump], table)
    ndjson = next(p for p in files if bundle.index_of_path(p) == index)
    files[ndjson] = b"".join(files[ndjson].splitlines(keepends=True)[1:])
    counts = {job: meta["counts"][folder] for job, folder in bundle.JOB_DIRS.items() if folder in meta["counts"]}
    return forge({p.replace(meta["backup_id"], "{id}"): body for p, body in files.items()}, counts=counts)
