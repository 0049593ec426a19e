"""Fixtures of the fault tests: data big enough that a job is really running when its server
goes away, and the servers running again after a test that killed one."""

from __future__ import annotations

import io
import os

import pytest
from elasticsearch import helpers

from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from tests.faults.faults_support import (
    HEAVY_INDEX,
    HEAVY_INDEX_DOCS,
    HEAVY_OBJECT_BYTES,
    HEAVY_OBJECTS,
    HEAVY_TABLE_ROWS,
    start_servers,
)


@pytest.fixture
def restart_after():
    """Whatever a test kills is running again afterwards, for the tests that follow."""
    yield
    start_servers()


@pytest.fixture
def heavy_table(seeded, pg_settings):
    """A table big enough that pg_dump and psql run for seconds."""
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.heavy")
        conn.execute(
            "CREATE TABLE public.heavy AS SELECT g AS id, md5(g::text) || repeat('x', 120) AS body "
            f"FROM generate_series(1, {HEAVY_TABLE_ROWS}) g"
        )
    yield
    start_servers()  # the test may have killed PostgreSQL; the table must go either way
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP TABLE IF EXISTS public.heavy")


@pytest.fixture
def heavy_index(seeded, es_client):
    """An index big enough that its export and bulk load run for seconds."""
    helpers.bulk(
        es_client,
        (
            {"_index": HEAVY_INDEX, "_id": str(i), "_source": {"n": i, "text": "lorem ipsum " * 40}}
            for i in range(HEAVY_INDEX_DOCS)
        ),
        chunk_size=5000,
        refresh=True,
    )
    yield
    es_client.options(ignore_status=404).indices.delete(index=HEAVY_INDEX)


@pytest.fixture
def heavy_objects(seeded, storage_settings):
    """Objects big enough that their transfer takes seconds and goes multipart."""
    s3 = s3io.client(storage_settings)
    for i in range(HEAVY_OBJECTS):
        s3.upload_fileobj(io.BytesIO(os.urandom(HEAVY_OBJECT_BYTES)), storage_settings.bucket, f"heavy/blob-{i}.bin")
