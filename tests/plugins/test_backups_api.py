"""The Backups plugin's API in a real Airflow API server, over the real backup bucket.

Authentication and authorization are Airflow's own: no login answers 401 (a bad
token 403), the viewer may read but not start runs, the admin may do both. The
runs started here are dry runs (nothing is written) and are deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from urllib.parse import quote

import requests

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.transport import backup_bucket
from archivist.transport.backup_bucket import BackupStore, StoredBundle
from archivist_backups import catalog  # noqa: E402  (plugins/ is put on sys.path by backups_server)
from tests.plugins.backups_server import RESTORE_DAG

API = "/archivist/api"


def call(server, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, server.url + path, headers=headers, timeout=60, **kwargs)


def meta_in_bundle(store: BackupStore, key: str) -> dict:
    for path, _, fileobj in bundle.iter_members(store.open_bundle(BackupKey.parse(key))):
        if path == bundle.META:
            return json.loads(fileobj.read())
    raise AssertionError("no meta.json")


def test_the_page_is_served_and_every_api_route_needs_a_login(airflow_server):
    page = call(airflow_server, "GET", "/archivist/")
    assert page.status_code == 200 and "<h1>Backups</h1>" in page.text
    assert call(airflow_server, "GET", "/archivist/static/backups.js").status_code == 200

    key = "bundle-2026-01-01-AAAAAAAAAAA"
    routes = [
        ("GET", f"{API}/me"),
        ("GET", f"{API}/bundles"),
        ("GET", f"{API}/bundles/{key}/meta"),
        ("GET", f"{API}/runs"),
        ("POST", f"{API}/bundles/{key}/verify"),
        ("POST", f"{API}/bundles/{key}/restore"),
    ]
    for method, path in routes:
        anonymous = call(airflow_server, method, path, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        forged = call(airflow_server, method, path, token="not-a-jwt", json={})
        assert forged.status_code == 403, (method, path, forged.text)
        # a cookie that is not a valid Airflow token is no login either
        cookie = call(airflow_server, method, path, json={}, cookies={"_token": "forged"})
        assert cookie.status_code in (401, 403), (method, path, cookie.text)


def test_the_plugin_is_registered_with_its_nav_entry(airflow_server):
    plugins = airflow_server.client("viewer").request("GET", "/api/v2/plugins")["plugins"]
    mine = next(p for p in plugins if p["name"] == "archivist_backups")
    assert mine["fastapi_apps"][0]["url_prefix"] == "/archivist"
    view = mine["external_views"][0]
    assert (view["name"], view["href"], view["destination"], view["url_route"]) == (
        "Backups",
        "/archivist/",
        "nav",
        "backups",
    )
    assert call(airflow_server, "GET", view["icon"]).status_code == 200


def test_list_and_meta_describe_the_bundles_in_the_bucket(airflow_server, demo_bundle, backups_settings):
    store = BackupStore(backups_settings)
    viewer = airflow_server.token("viewer")
    before = {b.key.name for b in store.list_bundles()}
    listed = call(airflow_server, "GET", f"{API}/bundles", viewer)
    after = {b.key.name for b in store.list_bundles()}
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["bucket"] == backups_settings.bucket
    rows = {b["key"]: b for b in body["bundles"]}
    # other test runs may add or rotate bundles meanwhile: all that stayed is listed, nothing else
    assert before & after <= set(rows) <= before | after
    assert body["total_entries"] == len(rows)
    dates = [(b["date"], b["last_modified"]) for b in body["bundles"]]
    assert dates == sorted(dates, reverse=True), "newest first"

    row = rows[demo_bundle["key"]]
    meta = meta_in_bundle(store, demo_bundle["key"])
    stored = store.locate(demo_bundle["key"])
    assert row["size"] == stored.size == demo_bundle["size"]
    assert row["format_version"] == meta["format_version"] == 1
    assert row["created_at"] == meta["created_at"]
    assert row["error"] is None
    jobs = {j["job"]: j for j in row["jobs"]}
    assert set(jobs) == {"postgres", "elasticsearch", "storage"}
    for job, folder in bundle.JOB_DIRS.items():
        assert jobs[job]["counts"] == meta["counts"][folder]
        assert jobs[job]["time_seconds"] == meta["stats"][folder]["time_seconds"]
    # made by the archivist command, not by an Airflow run: no run to link to
    assert row["airflow"] == {"dag_id": None, "run_id": None, "url": None}

    got = call(airflow_server, "GET", f"{API}/bundles/{demo_bundle['key']}/meta", viewer)
    assert got.status_code == 200 and got.json() == meta
    with_suffix = call(airflow_server, "GET", f"{API}/bundles/{demo_bundle['key']}.tgz/meta", viewer)
    assert with_suffix.json() == meta

    missing = call(airflow_server, "GET", f"{API}/bundles/{demo_bundle['key'][:-3]}zzz/meta", viewer)
    assert missing.status_code == 404 and demo_bundle["key"] in missing.json()["detail"]  # names the closest
    assert call(airflow_server, "GET", f"{API}/bundles/not-a-key/meta", viewer).status_code == 404


def test_viewer_reads_but_cannot_start_a_verify_or_a_restore(airflow_server, demo_bundle):
    viewer = airflow_server.token("viewer")
    me = call(airflow_server, "GET", f"{API}/me", viewer).json()
    assert me["user"] == "viewer" and me["can_read_bundles"] and not me["can_restore"]
    assert call(airflow_server, "GET", f"{API}/runs", viewer).status_code == 200
    before = airflow_server.client("admin").request("GET", f"/api/v2/dags/{RESTORE_DAG}/dagRuns", params={"limit": 1})[
        "total_entries"
    ]
    for action, body in (("verify", {}), ("restore", {"jobs": ["postgres"], "mode": "empty", "dry_run": True})):
        refused = call(airflow_server, "POST", f"{API}/bundles/{demo_bundle['key']}/{action}", viewer, json=body)
        assert refused.status_code == 403, refused.text
    after = airflow_server.client("admin").request("GET", f"/api/v2/dags/{RESTORE_DAG}/dagRuns", params={"limit": 1})[
        "total_entries"
    ]
    assert after == before


def test_verify_and_restore_trigger_archivist_restore_runs(airflow_server, demo_bundle):
    admin_token = airflow_server.token("admin")
    admin = airflow_server.client("admin")
    key = demo_bundle["key"]
    assert call(airflow_server, "GET", f"{API}/me", admin_token).json()["can_restore"] is True

    verify = call(airflow_server, "POST", f"{API}/bundles/{key}.tgz/verify", admin_token, json={})
    assert verify.status_code == 200, verify.text
    started = verify.json()
    airflow_server.started(RESTORE_DAG, started["dag_run_id"])
    assert started["dag_id"] == RESTORE_DAG
    assert started["conf"] == {
        "key": key,
        "jobs": ["postgres", "elasticsearch", "storage"],
        "mode": "empty",
        "dry_run": True,
        "allow_unchecked": False,
    }
    assert started["url"] == f"/dags/{RESTORE_DAG}/runs/{quote(started['dag_run_id'], safe='')}"
    run = admin.run(RESTORE_DAG, started["dag_run_id"])  # GET /api/v2/dags/archivist_restore/dagRuns/{id}
    assert run["conf"] == started["conf"]
    assert run["run_type"] == "manual" and run["triggering_user_name"] == "admin"
    assert run["state"] in ("queued", "running", "success")

    body = {"jobs": ["postgres", "storage"], "mode": "replace", "dry_run": True, "allow_unchecked": True}
    restore = call(airflow_server, "POST", f"{API}/bundles/{key}/restore", admin_token, json=body)
    assert restore.status_code == 200, restore.text
    second = restore.json()
    airflow_server.started(RESTORE_DAG, second["dag_run_id"])
    assert admin.run(RESTORE_DAG, second["dag_run_id"])["conf"] == {"key": key, **body}

    runs = call(airflow_server, "GET", f"{API}/runs?limit=50", admin_token).json()["dags"]
    listed = {r["dag_run_id"]: r for r in runs[RESTORE_DAG]["runs"]}
    assert started["dag_run_id"] in listed and second["dag_run_id"] in listed
    assert listed[second["dag_run_id"]]["conf"] == {"key": key, **body}
    assert listed[second["dag_run_id"]]["url"].startswith(f"/dags/{RESTORE_DAG}/runs/")
    assert set(runs) == {"archivist_backup", RESTORE_DAG}

    logged = admin.request(
        "GET",
        "/api/v2/eventLogs",
        params={"dag_id": RESTORE_DAG, "event_pattern": "trigger_dag_run", "order_by": "-when", "limit": 20},
    )["event_logs"]
    assert any(e["run_id"] == second["dag_run_id"] and e["owner"] == "admin" for e in logged)


def test_bad_restore_requests_start_nothing(airflow_server, demo_bundle):
    token = airflow_server.token("admin")
    key = demo_bundle["key"]
    for body in ({"mode": "wipe-everything"}, {"jobs": []}, {"jobs": ["mysql"]}, {"dry_run": True, "force": 1}):
        bad = call(airflow_server, "POST", f"{API}/bundles/{key}/restore", token, json=body)
        assert bad.status_code == 422, (body, bad.text)
    form = call(
        airflow_server,
        "POST",
        f"{API}/bundles/{key}/restore",
        token,
        data="mode=replace",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415  # a cross-site form cannot ride the UI's cookie
    unknown = call(airflow_server, "POST", f"{API}/bundles/{key[:-3]}zzz/verify", token, json={})
    assert unknown.status_code == 404


# --- the catalog, in-process: meta.json from the first bytes only, read once ----------------


class RecordingS3:
    """The real S3 client, with its get_object calls recorded."""

    def __init__(self, s3):
        self._s3, self.gets = s3, []

    def get_object(self, **kwargs):
        self.gets.append(kwargs)
        return self._s3.get_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._s3, name)


def test_catalog_reads_small_ranges_of_each_bundle_and_caches_it(
    demo_bundle, backups_settings, scratch_bucket, monkeypatch
):
    source = BackupStore(backups_settings)
    data = source.open_bundle(BackupKey.parse(demo_bundle["key"])).read()
    store = BackupStore(scratch_bucket)
    good = BackupKey.parse(demo_bundle["key"])
    store.s3.put_object(Bucket=store.bucket, Key=good.object_key, Body=data)
    garbage = BackupKey.new()
    store.s3.put_object(Bucket=store.bucket, Key=garbage.object_key, Body=b"not a gzipped tar" * 100)
    # the same bundle gzipped again in one go, as another tool would: no seek index to find
    unindexed = BackupKey(good.date, "unindexed00")
    store.s3.put_object(Bucket=store.bucket, Key=unindexed.object_key, Body=gzip.compress(gzip.decompress(data)))
    store.s3.put_object(Bucket=store.bucket, Key="notes.txt", Body=b"not a bundle name")
    # a first probe far smaller than any bundle, so reading all of one would show
    monkeypatch.setattr(backup_bucket, "FIRST_PROBE", 2048)
    assert len(data) > 8 * backup_bucket.FIRST_PROBE
    recorder = RecordingS3(store.s3)
    cat = catalog.Catalog(BackupStore(scratch_bucket, s3=recorder))

    rows = {r["key"]: r for r in cat.list()}
    assert set(rows) == {good.name, garbage.name, unindexed.name}
    assert rows[unindexed.name]["error"] is None and rows[unindexed.name]["format_version"] == 1
    assert rows[good.name]["error"] is None and rows[good.name]["format_version"] == 1
    meta = meta_in_bundle(source, good.name)
    assert {j["job"] for j in rows[good.name]["jobs"]} == {j for j, d in bundle.JOB_DIRS.items() if d in meta["counts"]}
    assert "gzip" in rows[garbage.name]["error"] or "damaged" in rows[garbage.name]["error"]
    reads = [g for g in recorder.gets if g["Key"] == good.object_key]
    # the seek index at the end, then meta.json's own range: two small reads, never the bundle
    assert len(reads) == 2, reads
    for get in reads:
        first, last = map(int, get["Range"].removeprefix("bytes=").split("-"))
        assert last - first < len(data) // 4, get
    for get in (g for g in recorder.gets if g["Key"] == unindexed.object_key):  # its tail, then its first bytes
        first, last = map(int, get["Range"].removeprefix("bytes=").split("-"))
        assert last - first + 1 < len(data), get
    gets = len(recorder.gets)
    cat.list()
    assert cat.meta(store.locate(good.name)) == (meta, None)
    assert len(recorder.gets) == gets, "immutable bundles are read once"


def test_summary_links_a_bundle_to_the_airflow_run_that_made_it():
    b = StoredBundle(BackupKey.parse("bundle-2026-11-26-qQUXdfPnayQ"), 123, dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    meta = {
        "format_version": 1,
        "airflow": {"dag_id": "archivist_backup", "run_id": "scheduled__2026-11-26T01:00:00+00:00"},
        "counts": {"jobs.postgres": {"tables": 2}},
        "stats": {"jobs.postgres": {"time_seconds": 1.5}},
    }
    row = catalog.summarize(b, meta, None, "/")
    assert row["airflow"]["url"] == "/dags/archivist_backup/runs/scheduled__2026-11-26T01%3A00%3A00%2B00%3A00"
    assert row["jobs"] == [
        {"job": "postgres", "counts": {"tables": 2}, "time_seconds": 1.5, "server_version": None, "bytes": None}
    ]
    meta["artifacts"] = {
        "jobs.postgres/postgres-qQUXdfPnayQ.sql": {"size": 1000, "sha256": "0" * 64},
        "jobs.postgres/roles-qQUXdfPnayQ.sql": {"size": 24, "sha256": "0" * 64},
        "jobs.storage/storage-qQUXdfPnayQ.tgz": {"size": 7, "sha256": "0" * 64},
    }
    assert catalog.summarize(b, meta, None, "/")["jobs"][0]["bytes"] == 1024  # its own artifacts only
    assert catalog.summarize(b, meta, None, "/airflow/")["airflow"]["url"].startswith("/airflow/dags/")


def test_each_bundle_carries_the_rules_that_keep_it(monkeypatch):
    """The rules of the server's environment, applied to the listing as rotation would."""
    first = dt.date(2026, 6, 1)
    bundles = [
        StoredBundle(
            BackupKey(first + dt.timedelta(days=3 * n), f"keep{n:07d}"), 10, dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        )
        for n in range(40)
    ]
    monkeypatch.setenv("BACKUPS_KEPT", "7")
    monkeypatch.setenv("BACKUPS_KEPT_MONTHLY", "3")
    kept = catalog.kept_by(bundles)
    newest = max(bundles, key=lambda b: b.key.date).key.name
    assert kept[newest] == ["last 7", "monthly 3"]
    assert sum(bool(r) for r in kept.values()) == 7 + 2  # the newest of the two months before
    assert sum(not r for r in kept.values()) == 40 - 9  # the next rotation deletes these
    assert catalog.retention_rules() == {"policy": "last 7, monthly 3", "error": None}
    monkeypatch.setenv("BACKUPS_KEPT_MONTHLY", "many")
    assert catalog.kept_by(bundles) == {}
    rules = catalog.retention_rules()
    assert rules["policy"] is None and "BACKUPS_KEPT_MONTHLY must be a whole number" in rules["error"]


def test_the_list_gives_each_bundle_its_last_drill_and_distrusts_a_forged_record(backups_settings, demo_bundle):
    from archivist.drill import record

    store, key = BackupStore(backups_settings), demo_bundle["key"]
    cat = catalog.Catalog(store)
    try:
        assert {r["key"]: r for r in cat.list()}[key]["drill"] is None
        when = dt.datetime(2026, 12, 6, 3, 2, tzinfo=dt.UTC)
        record.write(store, record.Verdict(key, "matched", when, (), {"tables": 5}))
        assert {r["key"]: r for r in cat.list()}[key]["drill"] == {
            "result": "matched",
            "drilled_at": when.isoformat(),
            "summary": "restored and matched on 2026-12-06",
        }
        store.s3.put_object(Bucket=store.bucket, Key=record.object_key(store, key), Body=b"\x00" * 70_000)
        forged = {r["key"]: r for r in cat.list()}[key]["drill"]
        assert forged["result"] is None and forged["summary"].startswith("drill record unreadable: over ")
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, key))
