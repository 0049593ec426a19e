"""archivist_backup run for real with `airflow dags test` against the demo stack."""

from __future__ import annotations

import json
import re
import tarfile

from archivist.format import bundle
from archivist.transport.backup_bucket import BackupStore
from tests.support import dags_test

SPEC_CI_FIELDS = {
    "CI_COMMIT_MESSAGE",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_REF_SLUG",
    "CI_COMMIT_SHA",
    "CI_COMMIT_SHORT_SHA",
    "CI_COMMIT_TAG",
    "CI_JOB_ID",
    "CI_PIPELINE_IID",
    "CI_PROJECT_NAME",
    "CI_REGISTRY_IMAGE",
}


def staging_objects(store: BackupStore) -> list[str]:
    return [o["Key"] for o in store.s3.list_objects_v2(Bucket=store.bucket, Prefix="staging/").get("Contents", [])]


def latest_backup_event() -> dict:
    """The extra of the newest event of the archivist_backups asset, from Airflow's database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        newest = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        newest = newest.where(AssetModel.name == "archivist_backups").order_by(AssetEvent.id.desc()).limit(1)
        event = session.scalars(newest).first()
        assert event is not None, "bundle_and_upload produced no event of the archivist_backups asset"
        return dict(event.extra)


def test_backup_dag_makes_one_bundle_in_the_spec_layout(seeded, backups_settings):
    store = BackupStore(backups_settings)
    before = {b.key.name for b in store.list_bundles()}
    run = dags_test("archivist_backup")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    new = [b for b in store.list_bundles() if b.key.name not in before]
    assert len(new) == 1
    key = new[0].key
    event = latest_backup_event()  # what a DAG scheduled on the asset receives
    assert event["key"] == key.name and event["size"] == new[0].size
    assert event["object"] == new[0].object_key and set(event["counts"]) == set(bundle.JOB_DIRS.values())
    assert re.fullmatch(r"bundle-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{11}", key.name)
    i = key.backup_id
    with tarfile.open(fileobj=store.open_bundle(key), mode="r|gz") as tar:
        names, meta = [], None
        for member in tar:
            names.append(member.name)
            if member.name.endswith("/meta.json"):
                meta = json.load(tar.extractfile(member))
    spec_tree = {
        f"{key.name}",
        f"{key.name}/jobs.elasticsearch",
        f"{key.name}/jobs.postgres",
        f"{key.name}/jobs.storage",
        f"{key.name}/meta.json",
        f"{key.name}/jobs.postgres/postgres-{i}.sql",
        f"{key.name}/jobs.storage/storage-{i}.tgz",
        f"{key.name}/jobs.elasticsearch/templates-{i}.json",
        *(
            f"{key.name}/jobs.elasticsearch/elasticsearch-{index}-{i}.ndjson"
            for index in ("customers", "legacy-events", "logs-demo-2026.11", "products")
        ),
    }
    ours = {f"{key.name}/jobs.elasticsearch/indices-{i}.json", f"{key.name}/jobs.storage/manifest-{i}.ndjson"}
    assert set(names) == spec_tree | ours
    assert len(names) == len(set(names))

    assert set(meta["archivist"]) == SPEC_CI_FIELDS
    assert set(meta["stats"]) == {"jobs.elasticsearch", "jobs.postgres", "jobs.storage"}
    assert all(s["time_seconds"] > 0 for s in meta["stats"].values())
    assert meta["format_version"] == 1 and meta["key"] == key.name
    assert meta["airflow"]["dag_id"] == "archivist_backup" and meta["airflow"]["run_id"]
    assert meta["counts"]["jobs.elasticsearch"]["indices"] == {
        "customers": 400,
        "legacy-events": 150,
        "logs-demo-2026.11": 1000,
        "products": 200,
    }
    assert meta["counts"]["jobs.storage"]["objects"] == seeded["storage"]["objects"]
    assert meta["counts"]["jobs.postgres"]["tables"] == 5
    assert meta["servers"]["postgres"].startswith("15") and meta["servers"]["elasticsearch"].startswith("8.")

    report = bundle.verify(store.open_bundle(key))  # every sha256 and size in meta.json holds
    assert set(report.members) == {n.split("/", 1)[1] for n in spec_tree | ours if n.count("/") >= 2}
    assert staging_objects(store) == []


def test_backup_dag_fails_at_check_when_elasticsearch_is_unreachable(earlier_bundle, backups_settings):
    store = BackupStore(backups_settings)
    before = {b.key.name: (b.size, b.last_modified) for b in store.list_bundles()}
    assert earlier_bundle.name in before
    broken = json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1", "port": 1, "extra": {"scheme": "http"}})
    no_mail = {"ARCHIVIST_SMTP_CONN_ID": "archivist_smtp_absent"}  # alerts are optional
    run = dags_test("archivist_backup", env={"AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": broken, **no_mail})
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "cannot reach Elasticsearch at http://127.0.0.1:1 (connection 'archivist_elasticsearch')" in output
    assert "alert not sent, connection 'archivist_smtp_absent' is not defined" in output
    assert "Failed to run task callback" not in output
    assert "starting task_id=postgres" not in output, "jobs ran although check failed"
    after = {b.key.name: (b.size, b.last_modified) for b in store.list_bundles()}
    assert after == before, "a failed backup added, changed or removed a bundle"
    assert staging_objects(store) == []


def test_backup_dag_rotates_by_its_calendar_params_and_variables(seeded, backups_settings):
    """A param given wins, an empty one falls back to its BACKUPS_KEPT_* variable; the dry run
    logs the rules that keep each bundle and deletes nothing."""
    store = BackupStore(backups_settings)
    before = {b.key.name for b in store.list_bundles()}
    conf = {"jobs": ["storage"], "keep": 7, "keep_monthly": 3, "rotation_dry_run": True}
    run = dags_test("archivist_backup", conf=conf, env={"BACKUPS_KEPT_WEEKLY": "2", "BACKUPS_KEPT_MONTHLY": "9"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "rotation kept" in output and "by the rules last 7, weekly 2, monthly 3" in output, output[-3000:]
    new = [b.key.name for b in store.list_bundles() if b.key.name not in before]
    assert len(new) == 1
    assert re.search(rf"keeping \S*{new[0]}\.tgz \(last 7, weekly 2, monthly 3\)", output), output[-3000:]
    assert before <= {b.key.name for b in store.list_bundles()}  # a dry run deletes nothing
