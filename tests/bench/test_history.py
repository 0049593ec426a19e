"""bench/history.py: the speedups of the newest full runs side by side, their spread and how often
each target was met."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import history  # noqa: E402
from bench.report import SPEEDUP_KEYS  # noqa: E402

pytestmark = pytest.mark.unit


def _save(folder: Path, started: str, ratio: float, *, scale: float = 1, quick: bool = False, keys=SPEEDUP_KEYS):
    run = {
        "scale": scale,
        "quick": quick,
        "started_at": started,
        "machine": {"disk_write_mb_s": [1234.4, 900.0]},
        "versions": {"commit": f"c{ratio:g}"},
        "speedup": {key: ratio for key in keys},
    }
    name = f"bench-scale-{scale:g}-{started.replace(':', '')}.json"
    (folder / name).write_text(json.dumps(run))


def _rows(lines: list[str]) -> list[list[str]]:
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in lines[2:]]


def test_runs_come_newest_first_with_their_spread_and_targets_met(tmp_path):
    _save(tmp_path, "2026-12-01T10:00:00+00:00", 1.5)
    _save(tmp_path, "2026-12-03T10:00:00+00:00", 3.5)
    _save(tmp_path, "2026-12-02T10:00:00+00:00", 2.0)
    lines = history.markdown(history.runs_with_speedups(tmp_path, 1, last=10), links="bench/results/")
    rows = _rows(lines)
    assert [row[0][1:17] for row in rows[:3]] == ["2026-12-03 10:00", "2026-12-02 10:00", "2026-12-01 10:00"]
    assert rows[0][0].endswith("(bench/results/bench-scale-1-2026-12-03T100000+0000.md)")
    assert rows[0][1:3] == ["c3.5", "1,234 MB/s"]
    es_export = 3 + SPEEDUP_KEYS.index("es_export")
    assert [row[0] for row in rows[3:]] == ["lowest", "median", "highest", "target met"]
    assert [row[es_export] for row in rows[3:6]] == ["1.50×", "2.00×", "3.50×"]
    assert rows[6][es_export] == "1 of 3 (≥ 3×)"  # only 3.5 reaches the export's 3×
    assert rows[6][3 + SPEEDUP_KEYS.index("es_restore")] == "2 of 3 (≥ 2×)"
    assert rows[6][3 + SPEEDUP_KEYS.index("pg_backup")] == "–"  # no target
    assert "pg_dump \\| gzip" in lines[0]  # a label's bar does not split the table


def test_quick_runs_other_scales_and_runs_without_baselines_are_left_out(tmp_path):
    _save(tmp_path, "2026-12-01T10:00:00+00:00", 2.0)
    _save(tmp_path, "2026-12-02T10:00:00+00:00", 9.0, quick=True)
    _save(tmp_path, "2026-12-03T10:00:00+00:00", 9.0, scale=5)
    _save(tmp_path, "2026-12-04T10:00:00+00:00", 9.0, keys=("es_export",))
    (tmp_path / "bench-scale-1-broken.json").write_text("{")
    runs = history.runs_with_speedups(tmp_path, 1, last=10)
    assert [run["started_at"] for _, run in runs] == ["2026-12-01T10:00:00+00:00"]


def test_only_the_newest_runs_are_kept(tmp_path):
    for day in range(1, 6):
        _save(tmp_path, f"2026-12-0{day}T10:00:00+00:00", float(day))
    runs = history.runs_with_speedups(tmp_path, 1, last=2)
    assert [run["speedup"]["es_export"] for _, run in runs] == [5.0, 4.0]
    assert history.markdown([]) == []
