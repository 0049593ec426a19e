"""`make demo`: a real backup and restore of the demo stack through the Airflow scheduler.

Triggers `archivist_backup` through Airflow's REST API, wipes the demo data,
triggers `archivist_restore` with the new key, and checks that PostgreSQL,
Elasticsearch and the bucket hold exactly what they held before. Both runs
stay in the Airflow UI's history.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from archivist import config
from demo import fingerprint
from demo.airflow_api import AirflowClient

BACKUP, RESTORE = "archivist_backup", "archivist_restore"


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def _run(api: AirflowClient, dag_id: str, conf: dict) -> str:
    api.wait_for_dag(dag_id, timeout=180)
    api.unpause(dag_id)
    run_id = api.trigger(dag_id, conf)
    _say(f"triggered {dag_id}, run {run_id}; waiting for the scheduler")
    started = time.monotonic()
    state = api.wait(dag_id, run_id, timeout=900)
    failed = [t["task_id"] for t in api.task_instances(dag_id, run_id) if t["state"] == "failed"]
    if state != "success":
        raise SystemExit(
            f"{dag_id} run {run_id} ended {state}; failed tasks: {', '.join(failed) or 'none'}; "
            f"see its logs in the UI or under $AIRFLOW_HOME/logs"
        )
    _say(f"{dag_id} succeeded in {time.monotonic() - started:.0f}s")
    return run_id


def closing_lines(api: AirflowClient) -> list[str]:
    """Where to look at the runs, and the login that works there: the one the demo logged in with."""
    url = os.environ.get("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080")
    return [
        f"Airflow UI: {url}  ({api.login_line()}); both runs are in the DAGs' history",
        f'Backups page: {url.rstrip("/")}/plugin/backups  (bundles, verify and restore; "Backups" in the UI\'s menu)',
    ]


def main() -> None:
    for noisy in ("elastic_transport", "airflow", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pg, es, s3 = config.load_postgres(), config.load_elasticsearch(), config.load_storage()
    api = AirflowClient()
    before = fingerprint.stack_snapshot(pg, es, s3)

    run_id = _run(api, BACKUP, {})
    made = api.xcom(BACKUP, run_id, "bundle_and_upload")
    _say(f"bundle {made['key']}.tgz: {made['size']:,} bytes")
    for job, stats in sorted(made["stats"].items()):
        print(f"    {job:<20} {stats['time_seconds']:6.2f} s   {made['counts'].get(job)}")

    _say("wiping the demo data from PostgreSQL, Elasticsearch and the bucket")
    fingerprint.wipe_postgres(pg)
    fingerprint.wipe_elasticsearch(es)
    fingerprint.wipe_bucket(s3)

    _run(api, RESTORE, {"key": made["key"]})
    after = fingerprint.stack_snapshot(pg, es, s3)
    checks = {
        "PostgreSQL (pg_dump identical)": before[0] == after[0],
        "Elasticsearch (documents, mappings, aliases, templates)": before[1] == after[1],
        "object storage (bytes, content types, metadata)": before[2] == after[2],
    }
    for name, ok in checks.items():
        print(f"    {'equal  ' if ok else 'DIFFERS'} {name}")
    for line in closing_lines(api):
        _say(line)
    if not all(checks.values()):
        sys.exit("round trip FAILED: restored data differs from what was backed up")
    _say("round trip OK: everything restored exactly")


if __name__ == "__main__":
    main()
