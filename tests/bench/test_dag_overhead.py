"""bench/dag_overhead.py: Airflow's share of a backup run, from the API's records of the run and
its task instances and the jobs' own durations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import dag_overhead, report  # noqa: E402

pytestmark = pytest.mark.unit


def _at(second: float) -> str:
    return f"2026-12-04T23:00:{second:06.3f}Z"


def _ti(task: str, queued: float, start: float, end: float) -> dict:
    return {
        "task_id": task,
        "state": "success",
        "queued_when": _at(queued),
        "start_date": _at(start),
        "end_date": _at(end),
    }


def test_the_share_is_the_run_less_the_slowest_job_and_the_bundle():
    run = {"queued_at": _at(0), "start_date": _at(1), "end_date": _at(41)}
    tis = [
        _ti("check", 1.5, 2, 5),
        _ti("postgres", 5.5, 6, 16),
        _ti("elasticsearch", 5.5, 6, 20),
        _ti("storage", 5.5, 6, 12),
        _ti("bundle_and_upload", 21, 22, 34),
        _ti("rotate", 35, 35.5, 37),
        _ti("cleanup_staging", 38, 38.5, 40),
    ]
    own = {"postgres": 8.0, "elasticsearch": 12.5, "storage": 5.0, "bundle_and_upload": 10.0}
    got = dag_overhead.share(run, tis, own)
    assert got["run_seconds"] == 40.0  # from the run's start, not the trigger: it may wait for another run
    assert got["work_seconds"] == 22.5
    assert got["airflow_seconds"] == 17.5
    assert [t["task"] for t in got["tasks"]][:2] == ["check", "postgres"]
    es = next(t for t in got["tasks"] if t["task"] == "elasticsearch")
    assert es == {
        "task": "elasticsearch",
        "state": "success",
        "after_start": 4.5,
        "queued": 0.5,
        "ran": 14.0,
        "own": 12.5,
    }


def _runs(*airflow_seconds: float) -> list[dict]:
    return [{"airflow_seconds": s, "run_seconds": 30.0, "work_seconds": 0.0, "tasks": []} for s in airflow_seconds]


def test_the_summary_keeps_the_median_run_and_leaves_the_warm_up_out():
    got = dag_overhead.summary(_runs(31.0, 9.0, 12.0), _runs(40.0))
    assert got["airflow_seconds"] == 12.0
    assert got["runs_airflow_seconds"] == [31.0, 9.0, 12.0]
    assert got["warm_up_airflow_seconds"] == [40.0]
    assert got["limit_seconds"] == 10.0


def test_the_report_names_the_warm_up_it_left_out():
    text = "\n".join(report._overhead(dag_overhead.summary(_runs(9.0, 12.0), _runs(40.0))))
    assert "after 1 warm-up run left out (Airflow's share 40.0 s" in text
    assert "the median of 2 runs (9.0, 12.0 s)" in text
