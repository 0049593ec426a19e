"""Airflow's share of a backup DAG run: the time from the run's start to its end that the jobs
did not spend working (scheduling, task start-up, XCom, the small tasks around the jobs).

A real scheduler runs it (bench/scheduler.py: LocalExecutor, as `make airflow` starts it). Airflow's
task-instance records (queued, start and end times) give each task's share; the jobs' own
durations come from their results (`time_seconds`).

    python -m bench.dag_overhead [--runs 5]      (Airflow started by this command, bench targets loaded)

The first run after Airflow starts is a warm-up, reported and left out of the median, as a
deployment's Airflow has run before (the execution API's own build, which made the first task
wait 2.4–4 s, is done by `scripts/airflow.sh start`: docs/PERFORMANCE.md#execution-api-warmed-at-start).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from bench import measure, scheduler, targets
from bench.scheduler import api_time
from bench.targets import Targets

DAG_ID = "archivist_backup"
JOBS = ("postgres", "elasticsearch", "storage")
LIMIT_SECONDS = 10.0  # the bound on Airflow's share of a backup run at scale 0.1
WARM_UP_RUNS = 1


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def share(run: dict, task_instances: list[dict], own: dict[str, float]) -> dict:
    """Airflow's share of one finished run, from its API records.

    `own` maps a task to the seconds its own work took (the jobs' and the bundle's results). The
    run's work is the critical path of that work: the slowest job, then the bundle; everything else
    from the run's start to its end (the check, rotation and cleanup tasks included) is Airflow's
    share."""
    triggered, ended = api_time(run["start_date"]), api_time(run["end_date"])
    wall = _seconds(triggered, ended) or 0.0
    jobs = [own[j] for j in JOBS if j in own]
    work = (max(jobs) if jobs else 0.0) + own.get("bundle_and_upload", 0.0)
    tasks = []
    for ti in sorted(task_instances, key=lambda t: t.get("start_date") or ""):
        queued, started, done = (api_time(ti.get(k)) for k in ("queued_when", "start_date", "end_date"))
        tasks.append(
            {
                "task": ti["task_id"],
                "state": ti["state"],
                "after_start": _seconds(triggered, queued),
                "queued": _seconds(queued, started),
                "ran": _seconds(started, done),
                "own": own.get(ti["task_id"]),
            }
        )
    return {
        "run_seconds": wall,
        "work_seconds": round(work, 3),
        "airflow_seconds": round(wall - work, 3),
        "tasks": tasks,
    }


def measure_run(api, conf: dict, timeout: float = 1800) -> dict:
    """Triggers one backup run once no other is going, waits for it, and returns its share (see `share`)."""
    scheduler.wait_for_no_run(api, DAG_ID, timeout)
    run_id = api.trigger(DAG_ID, conf)
    state = api.wait(DAG_ID, run_id, timeout=timeout, poll=1)
    if state != "success":
        raise RuntimeError(f"backup DAG run {run_id} ended {state}; see its task logs in the Airflow UI")
    own: dict[str, float] = {}
    for task in (*JOBS, "bundle_and_upload"):
        result = api.xcom(DAG_ID, run_id, task)
        if isinstance(result, dict) and "time_seconds" in result:
            own[task] = float(result["time_seconds"])
    return {"run_id": run_id, **share(api.run(DAG_ID, run_id), api.task_instances(DAG_ID, run_id), own)}


def scheduler_runs(t: Targets, runs: int, log=print) -> tuple[list[dict], list[dict]]:
    """Starts Airflow with its connections pointed at the bench targets, measures WARM_UP_RUNS
    backup runs and then `runs` more in turn, and stops it (starting it again as it was if it ran
    before); returns the warm-up runs and the measured ones."""
    warm_ups: list[dict] = []
    measured: list[dict] = []
    with scheduler.running(t, (DAG_ID,)) as api:
        for i in range(WARM_UP_RUNS + runs):
            got = measure_run(api, {"index_pattern": t.index_pattern, "keep": 7})
            warm_up = i < WARM_UP_RUNS
            label = "warm-up run" if warm_up else f"run {i + 1 - WARM_UP_RUNS}/{runs}"
            log(f"backup DAG {label}: {got['run_seconds']:.1f} s, Airflow's {got['airflow_seconds']:.1f} s")
            (warm_ups if warm_up else measured).append(got)
    return warm_ups, measured


def summary(measured: list[dict], warm_ups: list[dict]) -> dict:
    """The median measured run's share, with every measured run's figure and the warm-ups'."""
    return {
        "source": "scheduler (LocalExecutor) runs triggered through the REST API",
        "warm_up_airflow_seconds": [r["airflow_seconds"] for r in warm_ups],
        "runs_airflow_seconds": [r["airflow_seconds"] for r in measured],
        "limit_seconds": LIMIT_SECONDS,
        **measure.median_round(measured, "airflow_seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    warm_ups, measured = scheduler_runs(targets.load(), args.runs)
    result = summary(measured, warm_ups)
    print(f"load average: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = scheduler.ROOT / "bench" / "results" / f"dag-overhead-scale-0.1-{stamp}.json"
    saved.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved {saved.relative_to(scheduler.ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
