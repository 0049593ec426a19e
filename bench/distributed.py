"""The backup DAG on the local Celery stack: one worker against two, and what splitting costs.

Run with the Celery stack up (`ARCHIVIST_EXECUTOR=celery make services airflow`):

    python -m bench.distributed --scale 0.1

It loads the bench's generated data into the targets the stack's connections name (the demo
database, the application bucket, indices `bench-*`: the demo data there is replaced), then
triggers `archivist_backup` through the REST API three times and records the wall time, each
task's duration and the CPU seconds each server and each worker used:

1. one worker (w2 killed while idle), `split` 1: one task per source;
2. two workers, `split` 1: the same tasks, free to land on either worker;
3. two workers, `split` 2: elasticsearch and storage each in two mapped parts.

The split's bookkeeping is the planning tasks' time (split_elasticsearch, split_storage) plus
what bundle_and_upload took beyond the unsplit run's (joining the parts). Results go to
bench/results/distributed-scale-<scale>-<UTC time>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import psutil

from archivist import config
from bench import generate, load, scheduler
from bench.targets import Targets
from demo.airflow_api import AirflowClient

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOCAL = ROOT / ".local"
BACKUP = "archivist_backup"
# What each server's CPU is read from: the pid files the scripts write (a process and its children).
SERVERS = {
    "postgres": LOCAL / "pg" / "data" / "postmaster.pid",
    "elasticsearch": LOCAL / "es" / "es.pid",
    "minio": LOCAL / "run" / "minio.pid",
    "worker w1": LOCAL / "run" / "airflow-worker-w1.pid",
    "worker w2": LOCAL / "run" / "airflow-worker-w2.pid",
    "scheduler": LOCAL / "run" / "airflow-scheduler.pid",
    "api-server": LOCAL / "run" / "airflow-api-server.pid",
}


def _tree_cpu(pid: int) -> float:
    """CPU seconds of the process and its children now alive (a finished child's time counts in its
    parent's children times once waited for)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def cpu_now() -> dict[str, float]:
    out = {}
    for name, pidfile in SERVERS.items():
        try:
            out[name] = _tree_cpu(int(pidfile.read_text().split()[0]))
        except (OSError, ValueError):
            out[name] = 0.0
    return out


def _airflow_sh(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "airflow.sh"), *args], check=True, timeout=600)


def backup(api: AirflowClient, conf: dict) -> dict:
    # The scheduled run that unpausing starts would otherwise share the measured one's window.
    scheduler.wait_for_no_run(api, BACKUP)
    load_before = psutil.getloadavg()[0]
    before = cpu_now()
    started = time.monotonic()
    run_id = api.trigger(BACKUP, conf)
    state = api.wait(BACKUP, run_id, timeout=3600, poll=3)
    seconds = time.monotonic() - started
    after = cpu_now()
    tis = api.task_instances(BACKUP, run_id)
    if state != "success":
        raise SystemExit(f"backup run {run_id} ended {state}: {[(t['task_id'], t['state']) for t in tis]}")
    tasks: dict[str, float] = {}
    hosts: dict[str, str] = {}
    for ti in tis:
        if ti["state"] == "success":
            name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            tasks[name] = round(ti["duration"] or 0.0, 2)
            hosts[name] = ti["hostname"]
    made = api.xcom(BACKUP, run_id, "bundle_and_upload")
    return {
        "conf": conf,
        "run_id": run_id,
        "wall_seconds": round(seconds, 1),
        "load_before": round(load_before, 2),
        "cpu_seconds": {k: round(after[k] - before[k], 1) for k in after},
        "tasks": tasks,
        "hosts": hosts,
        "bundle_bytes": made["size"],
    }


def bookkeeping(unsplit: dict, split: dict) -> dict[str, float]:
    planning = sum(v for k, v in split["tasks"].items() if k.startswith("split_"))
    join = split["tasks"].get("bundle_and_upload", 0.0) - unsplit["tasks"].get("bundle_and_upload", 0.0)
    return {"planning_seconds": round(planning, 2), "join_extra_seconds": round(join, 2)}


def markdown(result: dict) -> str:
    header = "| run | wall s | load before | " + " | ".join(f"CPU s {k}" for k in SERVERS) + " |"
    rows = [header, "|---|---|---|" + "---|" * len(SERVERS)]
    for name, r in result["runs"].items():
        cpu = " | ".join(str(r["cpu_seconds"][k]) for k in SERVERS)
        rows.append(f"| {name} | {r['wall_seconds']} | {r['load_before']} | {cpu} |")
    b = result["bookkeeping"]
    rows.append("")
    rows.append(
        f"split bookkeeping at scale {result['scale']}: planning {b['planning_seconds']} s (task time), "
        f"joining {b['join_extra_seconds']} s more in bundle_and_upload"
    )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    args = parser.parse_args(argv)
    generate.ensure(args.scale)
    t = Targets(config.load_postgres(), config.load_elasticsearch(), config.load_storage(), config.load_backups())
    load.ensure(t, args.scale)
    api = AirflowClient(request_timeout=120)
    api.wait_for_dag(BACKUP, timeout=300)
    api.unpause(BACKUP)
    conf = {"index_pattern": t.index_pattern, "keep": 7}
    runs = {}
    _airflow_sh("kill-worker", "w2")
    try:
        runs["one worker, split 1"] = backup(api, {**conf, "split": 1})
    finally:
        _airflow_sh("start-worker", "w2")
    time.sleep(20)  # the worker answering again
    runs["two workers, split 1"] = backup(api, {**conf, "split": 1})
    runs["two workers, split 2"] = backup(api, {**conf, "split": 2})
    result = {
        "scale": args.scale,
        "cores": psutil.cpu_count(),
        "load_average_at_end": psutil.getloadavg(),
        "runs": runs,
        "bookkeeping": bookkeeping(runs["two workers, split 1"], runs["two workers, split 2"]),
    }
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = f"distributed-{generate.scale_name(args.scale)}-{stamp}"
    (RESULTS / f"{base}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{base}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
