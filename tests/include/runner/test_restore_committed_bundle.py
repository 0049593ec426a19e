"""A bundle written by an earlier archivist (committed under tests/data/) still verifies and
restores exactly, into the real servers: the format is a promise to bundles already in buckets.

tests/data/bundle-2026-12-04-yxt9b9zmlws.tgz was made by `archivist simple-backup`'s code at
commit 7648ec1 (format_version 1) from a small stack: schema `shop` and table `public.orders`
with a view, two indices (one with an alias, text with quotes, backslashes and non-ASCII), a
legacy template, and three objects with content types and metadata.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from archivist.format.bundle_index import BundleSource
from archivist.runner import restore
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as pg_job
from archivist.transport import s3io
from demo import fingerprint

BUNDLE = Path(__file__).parents[2] / "data" / "bundle-2026-12-04-yxt9b9zmlws.tgz"


@pytest.fixture
def empty_targets(pg_settings, es_settings, scratch_bucket):
    fingerprint.wipe_postgres(pg_settings)
    fingerprint.wipe_elasticsearch(es_settings)
    return {"postgres": pg_settings, "elasticsearch": es_settings, "storage": scratch_bucket}


def test_the_committed_bundle_verifies_with_its_checksums():
    report = restore.verify(BundleSource.file(str(BUNDLE)))
    assert report.checksummed and report.meta["format_version"] == 1
    assert sorted(report.jobs) == ["elasticsearch", "postgres", "storage"]


def test_the_committed_bundle_restores_exactly(empty_targets, pg_settings, es_settings, scratch_bucket):
    result = restore.run_restore(BundleSource.file(str(BUNDLE)), BUNDLE.name, mode="empty", settings=empty_targets)
    assert result["problems"] == []
    assert result["restored"]["elasticsearch"]["indices"] == {"fixture-logs-2026.12": 5, "fixture-products": 3}
    assert result["restored"]["storage"] == {"objects": 3, "bytes": 278}

    with pg_job.connect(pg_settings) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM shop.customers ORDER BY id")]
        totals = [str(row[0]) for row in conn.execute("SELECT total FROM public.big_orders ORDER BY id")]
        with pytest.raises(psycopg.errors.UniqueViolation):  # the primary key came back too
            conn.execute("INSERT INTO shop.customers (id, name) VALUES (1, 'again')")
    assert names == ["Ada Lovelace", "Grace Hopper", "Ñandú ☃"]
    assert totals == ["99.99", "1234.56"]

    es = es_cluster.client(es_settings)
    assert es.get(index="fixture-products", id="p2")["_source"] == {"name": "Back\\slash", "sku": "B-3", "price": 0.0}
    assert es.get(index="fixture-catalog", id="p0")["_source"]["name"] == 'Tea "Earl Grey"'  # through the alias
    assert es.indices.get_mapping(index="fixture-products")["fixture-products"]["mappings"]["properties"]["sku"] == {
        "type": "keyword"
    }
    assert "archivist-demo-legacy" in es.indices.get_template(name="archivist-demo-legacy")

    s3 = s3io.client(scratch_bucket)
    readme = s3.get_object(Bucket=scratch_bucket.bucket, Key="docs/readme.txt")
    assert readme["Body"].read() == b"hello fixture\n"
    assert readme["ContentType"] == "text/plain" and readme["Metadata"] == {"owner": "ada"}
    pixel = s3.get_object(Bucket=scratch_bucket.bucket, Key="images/pixel.bin")["Body"].read()
    assert pixel == bytes(range(256))
    assert s3.get_object(Bucket=scratch_bucket.bucket, Key="deep/a/b/c/é ünï.json")["Body"].read() == b'{"k": 1}'
