"""archivist on a distributed Airflow: CeleryExecutor with two workers that share no folder
(`make test-distributed`; scripts/airflow.sh starts them). Backups and restores run through the
REST API with the split on; Airflow's own task-instance records show where each task ran.

- one backup and its restore spread over both workers, one large index read in slices of one point
  in time by several parts (the workers run with ARCHIVIST_SLICE_MIN_MB=0), and the round trip is
  exact;
- no task opens a local file another task wrote (the workers' audit, tests/distributed/audit);
- a worker killed in the middle of a mapped part: Airflow retries the part on the other worker,
  and the bundle is whole, every object once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from archivist.format import bundle
from archivist.sources.storage import pax
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from demo import fingerprint
from demo.airflow_api import AirflowClient

ROOT = Path(__file__).resolve().parents[2]
BACKUP, RESTORE = "archivist_backup", "archivist_restore"
WORKERS = {"127.0.0.11": "w1", "127.0.0.12": "w2"}  # scripts/common.sh: worker_address
RUN_TIMEOUT = 420
# The objects of the killed run: enough that a storage part is still streaming when its worker dies.
SLOW_OBJECTS, SLOW_OBJECT_BYTES = 24, 2 * 1024 * 1024
# An index that dwarfs the demo's others, so the planning reads it in slices; custom routing included.
SLICED, SLICED_DOCS = "bulk-events", 12_000
SPLIT = 4


@pytest.fixture(scope="module")
def api() -> AirflowClient:
    assert os.environ.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", "run with `make test-distributed`"
    client = AirflowClient(request_timeout=120)
    for dag_id in (BACKUP, RESTORE):
        client.wait_for_dag(dag_id, timeout=180)
        client.unpause(dag_id)
    return client


def _run(api: AirflowClient, dag_id: str, conf: dict) -> tuple[str, list[dict]]:
    run_id = api.trigger(dag_id, conf)
    state = api.wait(dag_id, run_id, timeout=RUN_TIMEOUT, poll=3)
    tis = api.task_instances(dag_id, run_id)
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    return run_id, tis


def _hosts(tis: list[dict]) -> set[str]:
    return {t["hostname"] for t in tis if t["state"] == "success"}


def _audit(run_ids: set[str]) -> tuple[set[str], list[dict]]:
    """The workers whose audit is on, and the files the tasks of `run_ids` opened."""
    folder = Path(os.environ["ARCHIVIST_AUDIT_DIR"])
    lines = [json.loads(line) for f in sorted(folder.glob("*.ndjson")) for line in f.read_text().splitlines()]
    return {line["host"] for line in lines if line.get("started")}, [x for x in lines if x["run"] in run_ids]


@pytest.fixture(scope="module")
def round_trip(api, pg_settings, es_settings, storage_settings):
    """The demo stack, freshly seeded, backed up and restored with the split on, wiped in between."""
    from demo import seed

    fingerprint.wipe_postgres(pg_settings)
    fingerprint.wipe_elasticsearch(es_settings)
    fingerprint.wipe_bucket(storage_settings)
    seed.seed(pg_settings, es_settings, storage_settings)
    _seed_sliced(es_settings)
    before = fingerprint.stack_snapshot(pg_settings, es_settings, storage_settings)
    backup_run, backup_tis = _run(api, BACKUP, {"split": SPLIT})
    made = api.xcom(BACKUP, backup_run, "bundle_and_upload")
    planned = api.xcom(BACKUP, backup_run, "split_elasticsearch")
    fingerprint.wipe_postgres(pg_settings)
    fingerprint.wipe_elasticsearch(es_settings)
    fingerprint.wipe_bucket(storage_settings)
    restore_run, restore_tis = _run(api, RESTORE, {"key": made["key"], "split": SPLIT})
    after = fingerprint.stack_snapshot(pg_settings, es_settings, storage_settings)
    return {
        "made": made,
        "planned": planned,
        "runs": {backup_run, restore_run},
        "backup": backup_tis,
        "restore": restore_tis,
        "before": before,
        "after": after,
    }


def _seed_sliced(es_settings) -> None:
    from elasticsearch import helpers

    from archivist.sources.elasticsearch import cluster

    docs = (
        {"_index": SLICED, "_id": f"evt-{i}", "_routing": f"r{i % 7}", "_source": {"n": i, "text": f"event {i} " * 40}}
        for i in range(SLICED_DOCS)
    )
    helpers.bulk(cluster.client(es_settings), docs, refresh=True, chunk_size=2000)


def test_one_backup_and_its_restore_ran_on_both_workers(round_trip):
    for dag in ("backup", "restore"):
        tis = round_trip[dag]
        parts = [t for t in tis if t["task_id"].endswith("_part") and t["state"] == "success"]
        assert len(parts) >= 4, f"{dag}: the split made {len(parts)} parts"  # two each of elasticsearch, storage
        assert _hosts(tis) == set(WORKERS), f"{dag} ran on {_hosts(tis)}"


def test_one_index_was_read_in_slices_by_parts_on_both_workers(round_trip):
    planned = round_trip["planned"]
    sliced = {p["part"]: p["slices"] for p in planned if "slices" in p}
    assert {s["index"] for s in sliced.values()} == {SLICED}, planned
    assert len(sliced) >= 2 and len({s["pit"] for s in sliced.values()}) == 1
    ran = {t["map_index"]: t["state"] for t in round_trip["backup"] if t["task_id"] == "elasticsearch_part"}
    assert all(ran.get(part) == "success" for part in sliced), ran
    assert round_trip["made"]["counts"]["jobs.elasticsearch"]["indices"][SLICED] == SLICED_DOCS


def test_the_round_trip_through_the_parts_is_exact(round_trip):
    before, after = round_trip["before"], round_trip["after"]
    assert before[0] == after[0], "PostgreSQL differs after the restore"
    assert before[1] == after[1], "Elasticsearch (documents, mappings, aliases, templates) differs"
    assert before[2] == after[2], "the bucket (bytes, content types, metadata) differs"
    assert round_trip["made"]["counts"]["jobs.elasticsearch"]["documents"] > 0


def test_no_task_reads_a_local_file_another_task_wrote(round_trip):
    audited, opened = _audit(round_trip["runs"])
    assert audited == set(WORKERS), f"the audit is on in {audited} only: is ARCHIVIST_AUDIT_DIR set for the workers?"
    writer: dict[str, tuple] = {}
    for line in opened:
        if line["write"]:
            writer.setdefault(line["path"], (line["run"], line["task"], line["map_index"]))
    crossed = [
        f"{line['task']}[{line['map_index']}] read {line['path']} written by {writer[line['path']][1]}"
        for line in opened
        if not line["write"]
        and line["path"] in writer
        and writer[line["path"]] != (line["run"], line["task"], line["map_index"])
    ]
    assert not crossed, crossed


@pytest.fixture
def slow_objects(round_trip, storage_settings):
    s3 = s3io.client(storage_settings)
    keys = [f"slow/blob-{i:03d}.bin" for i in range(SLOW_OBJECTS)]
    for key in keys:
        s3.upload_fileobj(io.BytesIO(os.urandom(SLOW_OBJECT_BYTES)), storage_settings.bucket, key)
    yield keys
    for key in keys:
        s3.delete_object(Bucket=storage_settings.bucket, Key=key)


def _airflow_sh(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "airflow.sh"), *args], check=True, timeout=300)


def test_a_worker_killed_in_a_mapped_part_ends_in_a_whole_bundle(api, slow_objects, storage_settings, backups_settings):
    expected = {
        o["Key"]: o["Size"]
        for o in s3io.client(storage_settings).list_objects_v2(Bucket=storage_settings.bucket).get("Contents", [])
    }
    run_id = api.trigger(BACKUP, {"split": 2, "jobs": ["storage"]})
    victim = None
    deadline = time.monotonic() + RUN_TIMEOUT
    while victim is None and time.monotonic() < deadline:
        running = [
            t for t in api.task_instances(BACKUP, run_id) if t["task_id"] == "storage_part" and t["state"] == "running"
        ]
        if running and running[0]["hostname"] in WORKERS:
            victim = running[0]
        else:
            time.sleep(1)
    assert victim is not None, "no storage part was seen running"
    killed = WORKERS[victim["hostname"]]
    _airflow_sh("kill-worker", killed)
    try:
        state = api.wait(BACKUP, run_id, timeout=RUN_TIMEOUT, poll=3)
    finally:
        _airflow_sh("start-worker", killed)
    tis = api.task_instances(BACKUP, run_id)
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    again = next(t for t in tis if t["task_id"] == "storage_part" and t["map_index"] == victim["map_index"])
    assert again["try_number"] >= 2, "the killed part was not retried"
    assert again["hostname"] != victim["hostname"], "the retry ran on the killed worker"

    made = api.xcom(BACKUP, run_id, "bundle_and_upload")
    assert made["counts"]["jobs.storage"]["objects"] == len(expected)
    store = BackupStore(backups_settings)
    key = bundle.BackupKey.parse(made["key"])
    body = s3io.client(backups_settings).get_object(
        Bucket=backups_settings.bucket, Key=store.object_key(key.object_key)
    )
    found: list[tuple[str, int]] = []
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as outer:
        for member in outer:
            if bundle.is_storage_part(member.name.partition("/")[2]) and member.name.endswith(".tgz"):
                with tarfile.open(fileobj=outer.extractfile(member), mode="r:gz") as part:
                    found += [(m.pax_headers.get(pax.KEY, m.name), m.size) for m in part if m.isfile()]
    keys = [k for k, _ in found]
    assert len(keys) == len(set(keys)), "an object is in the bundle twice"
    assert dict(found) == expected, "the bundle's objects differ from the bucket's"
