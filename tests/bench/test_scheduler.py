"""bench/scheduler.py: the timeline of a scheduled DAG run, from the API's task-instance records."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import scheduler  # noqa: E402

pytestmark = pytest.mark.unit

TRIGGERED = dt.datetime(2026, 12, 6, 1, 0, 0, tzinfo=dt.UTC)


def _ti(task: str, start: float | None, duration: float | None, map_index: int = -1, state: str = "success") -> dict:
    return {
        "task_id": task,
        "map_index": map_index,
        "state": state,
        "start_date": None if start is None else f"2026-12-06T01:00:{start:06.3f}Z",
        "duration": duration,
    }


def test_tasks_come_in_the_order_they_started_with_skipped_ones_last():
    got = scheduler.timeline(
        TRIGGERED,
        [
            _ti("storage_part", None, None, state="skipped"),
            _ti("bundle_and_upload", 43.25, 11.9),
            _ti("check", 1.2, 3.3),
            _ti("elasticsearch_part", 7.5, 20.0, map_index=1),
            _ti("postgres", 5.0, 23.6),
        ],
    )
    assert [t["task"] for t in got] == [
        "check",
        "postgres",
        "elasticsearch_part[1]",
        "bundle_and_upload",
        "storage_part",
    ]
    assert got[0] == {"task": "check", "state": "success", "started": 1.2, "ran": 3.3}
    assert got[3]["started"] == 43.25
    assert got[-1] == {"task": "storage_part", "state": "skipped", "started": None, "ran": None}


def test_a_start_before_the_trigger_reads_negative_not_as_another_day():
    # A clock a little behind the API server's must show as such, not as a wrapped time.
    got = scheduler.timeline(TRIGGERED + dt.timedelta(seconds=2), [_ti("check", 1.5, 1.0)])
    assert got[0]["started"] == -0.5
