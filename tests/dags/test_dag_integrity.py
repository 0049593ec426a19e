"""Integrity of the DAG files: every file in dags/ parses through Airflow's DagBag without
errors, the three DAGs have the expected tasks, dependencies, schedule and defaults, and
importing them does no network I/O (checked in a subprocess whose connections point at
a closed port and whose sockets refuse to connect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SCHEDULE_VARS = ("ARCHIVIST_SCHEDULE", "CRON_SCHEDULE")

BACKUP_UPSTREAMS = {
    "check": set(),
    "split_elasticsearch": {"check"},
    "split_storage": {"check"},
    "postgres": {"check"},
    "elasticsearch": {"check", "split_elasticsearch"},
    "storage": {"check", "split_storage"},
    "elasticsearch_part": {"check", "split_elasticsearch"},
    "storage_part": {"check", "split_storage"},
    "bundle_and_upload": {"check", "postgres", "elasticsearch", "storage", "elasticsearch_part", "storage_part"},
    "rotate": {"bundle_and_upload"},
    "cleanup_staging": {"check", "rotate"},
}
RESTORE_JOBS = (
    "restore_postgres",
    "restore_elasticsearch",
    "restore_storage",
    "restore_elasticsearch_part",
    "restore_storage_part",
)
RESTORE_UPSTREAMS = {
    "verify": set(),
    "split_elasticsearch": {"verify"},
    "split_storage": {"verify"},
    # the whole jobs plan as split_<job> does rather than wait for it: all start after verify
    "restore_postgres": {"verify"},
    "restore_elasticsearch": {"verify"},
    "restore_storage": {"verify"},
    "restore_elasticsearch_part": {"verify", "split_elasticsearch"},
    "restore_storage_part": {"verify", "split_storage"},
    "report": {
        "verify",
        "restore_postgres",
        "restore_elasticsearch",
        "restore_storage",
        "restore_elasticsearch_part",
        "restore_storage_part",
    },
    # report only compares counts: the lock is freed beside it, once no job writes
    "release_lock": set(RESTORE_JOBS),
}
DRILL_UPSTREAMS = {
    "prepare": set(),
    "restore": {"prepare"},
    "check": {"prepare", "restore"},
    "record": {"check"},
    "remove_scratch": {"prepare", "record"},
}
BACKUP_JOBS = ("postgres", "elasticsearch", "storage", "elasticsearch_part", "storage_part")


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    assert files, "no DAG files found"
    assert sorted({dag.fileloc for dag in dagbag.dags.values()}) == files  # each file defines a DAG


def test_the_three_dags_exist(dagbag):
    assert set(dagbag.dags) == {"archivist_backup", "archivist_restore", "archivist_drill"}


def test_every_dag_has_tags_and_a_real_owner(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert "archivist" in dag.tags
        assert dag.description, dag.dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag.dag_id}.{task.task_id} owner {task.owner!r}"


def test_every_dag_sets_retries_explicitly(dagbag):
    for dag in dagbag.dags.values():
        assert "retries" in dag.default_args, dag.dag_id


def test_backup_job_tasks_retry_with_backoff(backup_dag):
    for task_id in BACKUP_JOBS:
        task = backup_dag.get_task(task_id)
        assert task.retries >= 1, task_id
        assert task.retry_delay.total_seconds() > 0, task_id
        assert task.retry_exponential_backoff, task_id
        assert task.max_retry_delay is not None, task_id


def test_restore_job_tasks_retry_as_configured(restore_dag):
    configured = restore_dag.default_args["retries"]
    for task_id in RESTORE_JOBS:
        assert restore_dag.get_task(task_id).retries == configured, task_id


def test_backup_tasks_and_dependencies(backup_dag):
    assert set(backup_dag.task_ids) == set(BACKUP_UPSTREAMS)
    for task_id, upstream in BACKUP_UPSTREAMS.items():
        assert backup_dag.get_task(task_id).upstream_task_ids == upstream, task_id


def test_backup_trigger_rules(backup_dag):
    # a skipped (unselected) job must not stop the bundle; a failed one must
    assert backup_dag.get_task("bundle_and_upload").trigger_rule == "none_failed"
    # no rotation after a failed upload
    assert backup_dag.get_task("rotate").trigger_rule == "all_success"
    # staging is cleaned up whatever happened
    cleanup = backup_dag.get_task("cleanup_staging")
    assert cleanup.is_teardown
    for task_id in set(BACKUP_UPSTREAMS) - {"cleanup_staging"}:
        assert not backup_dag.get_task(task_id).is_teardown, task_id


def test_restore_tasks_and_dependencies(restore_dag):
    assert set(restore_dag.task_ids) == set(RESTORE_UPSTREAMS)
    for task_id, upstream in RESTORE_UPSTREAMS.items():
        assert restore_dag.get_task(task_id).upstream_task_ids == upstream, task_id
    assert restore_dag.get_task("report").trigger_rule == "none_failed"
    for task_id in RESTORE_JOBS:  # nothing restored unless verify succeeded
        assert restore_dag.get_task(task_id).trigger_rule == "all_success", task_id
    # the lock verify took is freed whatever happened
    assert restore_dag.get_task("release_lock").is_teardown
    assert [t.task_id for t in restore_dag.tasks if t.is_teardown] == ["release_lock"]


def test_backup_schedule(backup_dag):
    assert backup_dag.schedule == "0 1 * * *"
    assert backup_dag.timetable.expression == "0 1 * * *"
    assert backup_dag.catchup is False
    assert backup_dag.max_active_runs == 1


def test_backup_schedule_off_makes_triggered_runs_only():
    probe = (
        "import sys; sys.path[:0] = ['include', 'dags']; import archivist_backup as b; "
        "dag = b.archivist_backup(); print(type(dag.timetable).__name__, dag.schedule)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in SCHEDULE_VARS}
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "ARCHIVIST_SCHEDULE": "off"},
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip().splitlines()[-1] == "NullTimetable None"


def test_restore_runs_only_when_triggered(restore_dag):
    assert restore_dag.schedule is None
    assert restore_dag.catchup is False
    assert restore_dag.max_active_runs == 1


def test_backup_params(backup_dag):
    params = backup_dag.params
    assert params["jobs"] == ["postgres", "elasticsearch", "storage"]
    assert params["keep"] == 30
    assert params.get_param("keep").schema["minimum"] == 7
    for period in ("daily", "weekly", "monthly", "yearly"):
        assert params[f"keep_{period}"] is None  # its BACKUPS_KEPT_* variable, else off
        assert params.get_param(f"keep_{period}").schema["minimum"] == 0
    assert params["rotation_dry_run"] is False
    assert params["index_pattern"] == "*"
    assert params["closed_indices"] == "refuse"
    assert params.get_param("closed_indices").schema["enum"] == ["refuse", "open"]
    assert params["mappings_only"] == []
    assert params["postgres_privileges"] is False


def test_restore_params(restore_dag):
    params = restore_dag.params
    assert params.get_param("mode").value == "empty"
    assert params.get_param("mode").schema["enum"] == ["empty", "replace"]
    assert params["dry_run"] is False
    assert params.get_param("key").schema["minLength"] == 1


# --- no network I/O at import ---------------------------------------------------------------

# Runs in a fresh interpreter: once Airflow is loaded, every socket connect is refused and
# recorded; then the DAG folder is parsed. libpq (which does not use Python sockets) is
# caught by the connections and the metadata database pointing at a closed port.
IMPORT_PROBE = textwrap.dedent("""
    import json, socket, sys
    from airflow.dag_processing.dagbag import DagBag

    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(repr(address))
        raise ConnectionRefusedError(f"network I/O while importing DAGs: connect to {address!r}")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
    print("PROBE-RESULT " + json.dumps({
        "errors": {path: str(err) for path, err in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "attempts": attempts,
    }))
""")

UNREACHABLE = {
    "AIRFLOW_CONN_ARCHIVIST_POSTGRES": {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 1,
        "login": "nobody",
        "password": "x",
        "schema": "nothing",
    },
    "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": {
        "conn_type": "elasticsearch",
        "host": "127.0.0.1",
        "port": 1,
        "extra": {"scheme": "http"},
    },
    "AIRFLOW_CONN_ARCHIVIST_STORAGE": {
        "conn_type": "aws",
        "login": "nobody",
        "password": "x",
        "extra": {
            "endpoint_url": "http://127.0.0.1:1",
            "region_name": "us-east-1",
            "service_config": {"s3": {"bucket_name": "nowhere-app"}},
        },
    },
    "AIRFLOW_CONN_ARCHIVIST_BACKUPS": {
        "conn_type": "aws",
        "login": "nobody",
        "password": "x",
        "extra": {
            "endpoint_url": "http://127.0.0.1:1",
            "region_name": "us-east-1",
            "service_config": {"s3": {"bucket_name": "nowhere-backups"}},
        },
    },
}


def _import_offline(dag_folder: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "ELASTICSEARCH_", "S3_", "BACKUP_", "ARCHIVIST_"))
    }
    env.update({name: json.dumps(conn) for name, conn in UNREACHABLE.items()})
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql+psycopg2://nobody:x@127.0.0.1:1/nothing"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "include"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(dag_folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE-RESULT ")]
    assert proc.returncode == 0 and lines, f"the import probe crashed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("PROBE-RESULT "))


def test_importing_the_dags_does_no_network_io():
    result = _import_offline(DAGS)
    assert result["attempts"] == []
    assert result["errors"] == {}
    assert result["dags"] == ["archivist_backup", "archivist_drill", "archivist_restore"]


def test_the_import_probe_catches_network_io(tmp_path):
    """The probe itself: a DAG file that checks the backup bucket while being imported is caught."""
    (tmp_path / "chatty.py").write_text(
        textwrap.dedent("""
        import datetime as dt
        from airflow.sdk import dag, task
        from archivist import config
        from archivist.transport.backup_bucket import BackupStore

        BackupStore(config.load_backups()).check()  # network I/O at import: what the DAGs must not do

        @dag(dag_id="chatty", schedule=None, start_date=dt.datetime(2026, 1, 1), tags=["test"])
        def chatty():
            @task
            def noop():
                pass
            noop()

        chatty()
    """)
    )
    result = _import_offline(tmp_path)
    assert result["attempts"], "the probe did not see the connect"
    assert any("127.0.0.1" in a and "1)" in a for a in result["attempts"])
    assert list(result["errors"]) == [str(tmp_path / "chatty.py")]
    assert result["dags"] == []


def test_parsing_the_dags_imports_no_client():
    """The DAG processor parses these files every few seconds: they must not pull in boto3, the
    Elasticsearch client, psycopg, awscrt or the SMTP provider's notifier and client
    (docs/PERFORMANCE.md#dag-files-parse-without-the-clients)."""
    clients = {"boto3", "botocore", "elasticsearch", "elastic_transport", "awscrt", "psycopg", "aiosmtplib", "smtplib"}
    probe = (
        "import sys, time; sys.path[:0] = ['include', 'dags']; import airflow.sdk; "
        "started = time.perf_counter(); import archivist_backup, archivist_restore, archivist_drill; "
        "print(time.perf_counter() - started); print(' '.join(sorted(sys.modules)))"
    )
    shown = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    seconds, modules = shown.stdout.strip().splitlines()[-2:]
    loaded = set(modules.split())
    assert clients.isdisjoint({m.split(".")[0] for m in loaded}), sorted(clients & {m.split(".")[0] for m in loaded})
    assert not any(m.startswith("airflow.providers.smtp.") and "get_provider_info" not in m for m in loaded)
    print(f"the three DAG files import in {float(seconds):.3f} s once airflow.sdk is loaded")


def test_a_finished_backup_produces_the_backups_asset(backup_dag):
    outlets = backup_dag.get_task("bundle_and_upload").outlets
    assert [(a.name, a.uri, a.group) for a in outlets] == [("archivist_backups", "archivist_backups", "archivist")]


def test_drill_tasks_and_dependencies(drill_dag):
    assert set(drill_dag.task_ids) == set(DRILL_UPSTREAMS)
    for task_id, upstream in DRILL_UPSTREAMS.items():
        assert drill_dag.get_task(task_id).upstream_task_ids == upstream, task_id
    # the verdict is recorded whatever the restore and the check did; the scratch always removed
    assert drill_dag.get_task("record").trigger_rule == "all_done"
    assert [t.task_id for t in drill_dag.tasks if t.is_teardown] == ["remove_scratch"]


def test_drill_runs_weekly_and_drills_the_latest_bundle(drill_dag):
    assert drill_dag.timetable.expression == "0 3 * * 0"
    assert drill_dag.catchup is False
    assert drill_dag.max_active_runs == 1
    assert drill_dag.params["key"] == "latest"
    assert drill_dag.params["storage_bucket"] == ""


def _schedule_of_drill(env: dict) -> str:
    probe = (
        "import sys; sys.path[:0] = ['include', 'dags']; import archivist_drill as d; "
        "dag = d.archivist_drill(); t = dag.timetable; "
        "print(type(t).__name__, getattr(t, 'expression', None) or getattr(getattr(t, 'timetable', None), "
        "'expression', None), getattr(getattr(t, 'asset_condition', None), 'name', None) or "
        "[a.name for a in getattr(getattr(t, 'asset_condition', None), 'objects', [])])"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_DRILL_")}
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, env={**clean, **env}
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout.strip().splitlines()[-1]


def test_drill_schedule_after_backups_when_turned_on():
    shown = _schedule_of_drill({"ARCHIVIST_DRILL_AFTER_BACKUP": "true"})
    assert shown.startswith("AssetOrTimeSchedule 0 3 * * 0") and "archivist_backups" in shown
    shown = _schedule_of_drill({"ARCHIVIST_DRILL_AFTER_BACKUP": "true", "ARCHIVIST_DRILL_SCHEDULE": "off"})
    assert shown.startswith("AssetTriggeredTimetable") and "archivist_backups" in shown
    assert _schedule_of_drill({"ARCHIVIST_DRILL_SCHEDULE": "off"}).startswith("NullTimetable")
