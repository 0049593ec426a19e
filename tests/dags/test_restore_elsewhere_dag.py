"""archivist_restore run for real (`airflow dags test`) into other targets than the ones backed up:
another database, prefixed and renamed indices, another bucket under a key prefix, and other
connections named by param. The stack backed up is fingerprinted before and after: untouched."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets

import orjson
import pytest
from psycopg import sql

from archivist.runner import backup
from archivist.sources.postgres import job as pg_job
from demo import seed
from demo.fingerprint import es_snapshot, pg_dump_text, s3_snapshot
from demo.fingerprint import stack_snapshot as fingerprint
from tests.support import dags_test

INDICES = ("customers", seed.LEGACY_INDEX, seed.LOGS_INDEX, "products")
TEMPLATES = (seed.COMPONENT_TEMPLATE, seed.INDEX_TEMPLATE, seed.LEGACY_TEMPLATE)


def _originals(pg, es, s3) -> tuple:
    """The seeded stack alone: the database, the seeded indices and templates, the bucket."""
    dump, search, objects = fingerprint(pg, es, s3)
    templates = search["templates"]
    return (
        dump,
        {i: v for i, v in search["indices"].items() if i in INDICES},
        [t for t in templates["component_templates"] + templates["index_templates"] if t["name"] in TEMPLATES],
        {n: b for n, b in templates["legacy_templates"].items() if n in TEMPLATES},
        objects,
    )


def _docs(lines: list[bytes]) -> list[dict]:
    return sorted((d for d in map(orjson.loads, lines) if d.pop("_index")), key=lambda d: d["_id"])


@pytest.fixture
def scratch(pg_settings, es_client, make_bucket):
    """Names of this test's targets (databases, index prefixes, a bucket); all removed after."""
    token = secrets.token_hex(3)
    made = {
        "databases": [f"archivist_dag_{token}_a", f"archivist_dag_{token}_b"],
        "prefixes": [f"dag{token}-", f"ren{token}-"],
        "bucket": make_bucket(),
    }
    yield made
    with pg_job.connect(pg_settings) as conn:
        for name in made["databases"]:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    quiet = es_client.options(ignore_status=404)
    for prefix in made["prefixes"]:
        quiet.indices.delete(index=f"{prefix}*", expand_wildcards="all")
        for name in TEMPLATES:  # index templates first: they use the component template
            quiet.indices.delete_index_template(name=prefix + name)
            quiet.indices.delete_template(name=prefix + name)
        for name in TEMPLATES:
            quiet.cluster.delete_component_template(name=prefix + name)


def _connection(settings_json: str, **changes) -> str:
    conn = json.loads(settings_json)
    for key, value in changes.items():
        if key == "bucket_name":
            conn["extra"]["service_config"]["s3"]["bucket_name"] = value
        else:
            conn[key] = value
    return json.dumps(conn)


def test_a_dag_run_restores_elsewhere_and_leaves_the_stack_it_backed_up(
    seeded, scratch, pg_settings, es_settings, storage_settings
):
    made = backup.run_backup()
    before = _originals(pg_settings, es_settings, storage_settings)
    (into_a, into_b), (prefix, renamed), bucket = scratch["databases"], scratch["prefixes"], scratch["bucket"]
    with pg_job.connect(pg_settings) as conn:  # the database the other connection names must exist
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(into_a)))
    # other connections: PostgreSQL into another database, storage into another bucket
    env = {
        "AIRFLOW_CONN_ARCHIVIST_TEST_PG_ELSEWHERE": _connection(
            os.environ["AIRFLOW_CONN_ARCHIVIST_POSTGRES"], schema=into_a
        ),
        "AIRFLOW_CONN_ARCHIVIST_TEST_STORAGE_ELSEWHERE": _connection(
            os.environ["AIRFLOW_CONN_ARCHIVIST_STORAGE"], bucket_name=bucket.bucket
        ),
    }
    run = dags_test(
        "archivist_restore",
        {
            "key": made["key"],
            "postgres_conn_id": "archivist_test_pg_elsewhere",
            "elasticsearch_conn_id": "archivist_elasticsearch",
            "storage_conn_id": "archivist_test_storage_elsewhere",
            "index_prefix": prefix,
            "storage_prefix": "restored/",
        },
        env,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert pg_dump_text(dataclasses.replace(pg_settings, dbname=into_a)) == before[0]
    search = es_snapshot(es_settings)
    for index in INDICES:
        copy, original = search["indices"][prefix + index], before[1][index]
        assert _docs(copy["docs"]) == _docs(original["docs"]) and copy["mappings"] == original["mappings"]
        assert copy["aliases"] == {prefix + a: spec for a, spec in original["aliases"].items()}
    composable = {t["name"]: t for t in search["templates"]["index_templates"]}[prefix + seed.INDEX_TEMPLATE]
    assert composable["index_template"]["index_patterns"] == [prefix + "logs-demo-*"]
    restored = s3_snapshot(bucket)
    assert {k.removeprefix("restored/"): v for k, v in restored.items()} == before[4]
    assert all(k.startswith("restored/") for k in restored)
    assert _originals(pg_settings, es_settings, storage_settings) == before, "the stack backed up was touched"

    # the same through params alone: another database, a rename map, another bucket; no aliases or templates
    run = dags_test(
        "archivist_restore",
        {
            "key": made["key"],
            "jobs": ["postgres", "elasticsearch"],
            "postgres_database": into_b,
            "indices": ["products"],
            "index_prefix": renamed,
            "index_rename": [f"products={renamed}shop"],
            "skip_aliases": True,
            "skip_templates": True,
        },
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert pg_dump_text(dataclasses.replace(pg_settings, dbname=into_b)) == before[0]
    shop = es_snapshot(es_settings)["indices"][f"{renamed}shop"]
    assert _docs(shop["docs"]) == _docs(before[1]["products"]["docs"]) and shop["aliases"] == {}
    assert _originals(pg_settings, es_settings, storage_settings) == before, "the stack backed up was touched"


def test_a_target_name_the_server_refuses_fails_the_run_naming_the_param(seeded, pg_settings, es_settings):
    made = backup.run_backup(jobs=("postgres", "elasticsearch"))
    before = pg_dump_text(pg_settings), es_snapshot(es_settings)
    run = dags_test("archivist_restore", {"key": made["key"], "index_prefix": "Upper-", "mode": "replace"})
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "index_prefix 'Upper-' cannot begin an index name" in output
    assert "starting task_id=restore_" not in output, "a restore task ran"
    assert (pg_dump_text(pg_settings), es_snapshot(es_settings)) == before
