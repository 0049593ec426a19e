"""`archivist simple-restore` with the options of a restore elsewhere, run as the installed command
against the real servers: another database, prefixed indices, another storage connection and a
key prefix; the stack backed up, fingerprinted before and after, is untouched."""

from __future__ import annotations

import dataclasses
import json
import secrets

import orjson
import pytest
from psycopg import sql

from archivist.sources.postgres import job as pg_job
from demo.fingerprint import es_snapshot, pg_dump_text, s3_snapshot
from tests.include.test_cli import KEY_RE, assert_one_error_line
from tests.spec_support import archivist

INDICES = ("customers", "legacy-events", "logs-demo-2026.11", "products")


@pytest.fixture
def targets(pg_settings, es_client, make_bucket):
    """A database name, an index prefix and a bucket of this test; removed after."""
    token = secrets.token_hex(3)
    made = (f"archivist_cli_{token}", f"cli{token}-", make_bucket())
    yield made
    with pg_job.connect(pg_settings) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(made[0])))
    es_client.options(ignore_status=404).indices.delete(index=f"{made[1]}*", expand_wildcards="all")


def _docs(lines: list[bytes]) -> list[dict]:
    return sorted((d for d in map(orjson.loads, lines) if d.pop("_index")), key=lambda d: d["_id"])


def _originals(pg, es, s3) -> tuple:
    search = es_snapshot(es)
    return pg_dump_text(pg), {i: v for i, v in search["indices"].items() if i in INDICES}, s3_snapshot(s3)


def test_simple_restore_elsewhere_through_options_and_another_connection(
    seeded, spec_env, targets, pg_settings, es_settings, storage_settings, tmp_path
):
    database, prefix, bucket = targets
    made = archivist(
        {k: v for k, v in spec_env.items() if not k.startswith("BACKUP_")}, "simple-backup", "--output", str(tmp_path)
    )
    assert made.returncode == 0, made.stdout + made.stderr
    path = str(tmp_path / f"{KEY_RE.search(made.stdout).group(1)}.tgz")
    before = _originals(pg_settings, es_settings, storage_settings)
    other_storage = {
        "conn_type": "aws",
        "login": storage_settings.access_key_id,
        "password": storage_settings.secret_access_key,
        "extra": {
            "endpoint_url": storage_settings.endpoint_url,
            "region_name": storage_settings.region_name,
            "service_config": {"s3": {"bucket_name": bucket.bucket}},
        },
    }
    env = {**spec_env, "AIRFLOW_CONN_ARCHIVIST_TEST_CLI_STORAGE": json.dumps(other_storage)}

    run = archivist(
        env, "simple-restore", path, "--json", "--postgres-database", database, "--index-prefix", prefix,
        "--skip-templates", "--storage-conn-id", "archivist_test_cli_storage", "--storage-prefix", "copy/",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    jobs = json.loads(run.stdout)["jobs"]
    assert jobs["postgres"]["counts"]["database"] == database
    assert sorted(jobs["elasticsearch"]["counts"]["indices"]) == sorted(prefix + i for i in INDICES)
    assert jobs["storage"]["counts"]["bucket"] == bucket.bucket and jobs["storage"]["counts"]["prefix"] == "copy/"

    assert pg_dump_text(dataclasses.replace(pg_settings, dbname=database)) == before[0]
    search = es_snapshot(es_settings)
    for index in INDICES:
        assert _docs(search["indices"][prefix + index]["docs"]) == _docs(before[1][index]["docs"])
    assert not [t for t in search["templates"]["index_templates"] if t["name"].startswith(prefix)]
    assert {k.removeprefix("copy/"): v for k, v in s3_snapshot(bucket).items()} == before[2]
    assert _originals(pg_settings, es_settings, storage_settings) == before, "the stack backed up was touched"

    bad = archivist(spec_env, "simple-restore", path, "--index-rename", "products")
    assert_one_error_line(bad, 2, "--index-rename: 'products' is not old=new")
    bad = archivist(spec_env, "simple-restore", path, "--storage-bucket", "Not_A_Bucket")
    assert_one_error_line(bad, 2, "storage_bucket 'Not_A_Bucket' is not 3 to 63 lowercase")
