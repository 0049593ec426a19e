"""DAG runs on a real scheduler, for the bench's end-to-end figures and Airflow's share.

Airflow is started as `make airflow` starts it (`scripts/airflow.sh start`, LocalExecutor), its
connections pointed at the bench targets, and stopped after (started again as it was if it ran
before). A run is triggered through the REST API once no other run of its DAG is queued or
running (unpausing a scheduled DAG starts its latest scheduled run, and a run waits for the one
before it), and timed from the trigger to the end Airflow records for it, so the scheduler's
latency is counted and its own start-up is not: a deployment's scheduler is already running.
Under a scheduler the jobs of a run go in parallel, as they do for users; `airflow dags test`
runs one task at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench import cpu_share, measure, targets
from bench.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
SCHEDULER_PID = ROOT / ".local" / "run" / "airflow-scheduler.pid"
UNSCHEDULED = {"ARCHIVIST_SCHEDULE": "off", "ARCHIVIST_DRILL_SCHEDULE": "off"}


def airflow_cpu_seconds() -> float:
    """CPU seconds used so far by Airflow's running components (scripts/airflow.sh's pid files) and
    their children: what a running Airflow does when no run goes on, which the wait before a run
    does not count against the machine's idleness."""
    total = 0.0
    for pidfile in SCHEDULER_PID.parent.glob("airflow-*.pid"):
        try:
            total += measure.tree_cpu_seconds(psutil.Process(int(pidfile.read_text().strip())))
        except (OSError, ValueError, psutil.Error):
            pass
    return total


def _airflow(command: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", "scripts/airflow.sh", command], cwd=ROOT, env=env, check=True, timeout=600)


@contextlib.contextmanager
def running(t: Targets, dag_ids: tuple[str, ...]) -> Iterator:
    """Airflow with its connections pointed at the bench targets and `dag_ids` unpaused; yields an
    AirflowClient. The DAGs are paused again before Airflow stops (which ends any task left). The
    backup schedule is off: unpausing a scheduled DAG starts the run of its latest interval, which
    on a fresh Airflow database would run beside (and bundle apart from) the measured runs."""
    from demo.airflow_api import AirflowClient

    connections = ROOT / ".local" / "bench" / "airflow-connections.sh"
    connections.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(connections, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.writelines(f"export {k}='{v}'\n" for k, v in {**t.airflow_env(), **UNSCHEDULED}.items())
    clean = {k: v for k, v in os.environ.items() if not k.startswith(targets.SHADOWING_PREFIXES)}
    status = subprocess.run(["bash", "scripts/airflow.sh", "status"], cwd=ROOT, capture_output=True, text=True)
    was_running = "scheduler: running" in status.stdout
    _airflow("stop", clean)
    try:
        _airflow("start", {**clean, "ARCHIVIST_EXTRA_ENV": str(connections)})
        api = AirflowClient()
        for dag_id in dag_ids:
            api.wait_for_dag(dag_id, timeout=300)
            _fail_orphaned_runs(api, dag_id)
            api.unpause(dag_id)
        try:
            yield api
        finally:
            for dag_id in dag_ids:
                api.pause(dag_id)
    finally:
        _airflow("stop", clean)
        connections.unlink(missing_ok=True)
        if was_running:
            _airflow("start", clean)


def _fail_orphaned_runs(api, dag_id: str) -> None:
    """Marks failed the runs an earlier Airflow left queued or running when it was stopped: none
    can be going on (this Airflow has just started), yet a new run would wait behind them."""
    found = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"]})
    for run in found["dag_runs"]:
        api.set_run_state(dag_id, run["dag_run_id"], "failed")
        print(f"marked failed {dag_id} run {run['dag_run_id']}, left {run['state']} by an earlier Airflow", flush=True)


def wait_for_no_run(api, dag_id: str, timeout: float = 3600) -> None:
    """Waits until no run of the DAG is queued or running (a new run would wait behind it)."""
    deadline = time.monotonic() + timeout
    path = f"/api/v2/dags/{dag_id}/dagRuns"
    while api.request("GET", path, params={"state": ["queued", "running"], "limit": 1})["total_entries"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"a run of {dag_id} is still going after {timeout:g}s; see the Airflow UI")
        time.sleep(2)


class _TreeSampler:
    """Peak RSS of the scheduler's process tree: the scheduler, its executor's workers and the
    task processes they start."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        try:
            proc = psutil.Process(int(SCHEDULER_PID.read_text().strip()))
        except (OSError, ValueError, psutil.Error):
            return
        while not self._stop.is_set():
            self.peak = max(self.peak, measure.tree_rss(proc))
            self._stop.wait(measure.SAMPLE_SECONDS)

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def api_time(value: str | None) -> dt.datetime | None:
    """A time as the REST API writes it (ISO 8601), or None for a field it left empty."""
    return dt.datetime.fromisoformat(value) if value else None


def _since(triggered: dt.datetime, value: str | None) -> float | None:
    at = api_time(value)
    return round((at - triggered).total_seconds(), 3) if at else None


def timeline(triggered: dt.datetime, task_instances: list[dict]) -> list[dict]:
    """Each task instance (a mapped one as `task[i]`) in the order they started, those that never
    ran (skipped) last: its state, its start after the trigger and the seconds it ran."""
    started = sorted((ti for ti in task_instances if ti.get("start_date")), key=lambda ti: api_time(ti["start_date"]))
    return [
        {
            "task": ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""),
            "state": ti["state"],
            "started": _since(triggered, ti.get("start_date")),
            "ran": ti.get("duration"),
        }
        for ti in started + [ti for ti in task_instances if not ti.get("start_date")]
    ]


def timed_run(api, dag_id: str, conf: dict, timeout: float = 3600, log=print) -> dict:
    """Triggers one run once no other is going and waits for it to succeed.

    Returns its seconds from the trigger to its recorded end, the scheduler tree's peak RSS, where
    the machine's CPU went meanwhile (bench/cpu_share.py), and each task instance's start and
    duration relative to the trigger."""
    wait_for_no_run(api, dag_id, timeout)
    idle = measure.wait_for_idle(log=log, apart_from=airflow_cpu_seconds)
    with _TreeSampler() as sampler, cpu_share.CpuShare() as cpu:
        triggered = dt.datetime.now(dt.UTC)
        run_id = api.trigger(dag_id, conf)
        state = api.wait(dag_id, run_id, timeout=timeout, poll=1)
    if state != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {state}; see its task logs in the Airflow UI")
    run = api.run(dag_id, run_id)
    ended = api_time(run["end_date"])
    tasks = timeline(triggered, api.task_instances(dag_id, run_id))
    seconds = round((ended - triggered).total_seconds(), 3)
    log(f"{dag_id} run on the scheduler: {seconds:.2f}s, scheduler tree peak RSS {sampler.peak / 2**20:.0f} MB")
    return {
        "run_id": run_id,
        "seconds": seconds,
        "started_busy": idle.gave_up,
        "run_started": _since(triggered, run.get("start_date")),
        "scheduler_tree_peak_rss_mb": round(sampler.peak / 2**20, 1),
        "cpu": cpu.result(),
        "tasks": tasks,
    }
