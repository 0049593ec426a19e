"""bench/scaling.py: the table of time per GB and peak memory at each scale, taken from the newest
full run of each scale in a results folder, and its chart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import scaling  # noqa: E402

pytestmark = pytest.mark.unit
GB = 1024**3


def _run(scale: float, started: str, seconds: float, rss: float, quick: bool = False) -> dict:
    """A saved run with each server holding `scale` GB, every task taking `seconds` per GB."""
    size = int(scale * GB)
    tasks = {t: {"seconds": seconds * scale, "peak_rss_mb": rss} for t in ("postgres", "restore_storage")}
    tasks["bundle_and_upload"] = {"seconds": seconds * 3 * scale, "peak_rss_mb": rss}
    e2e = {"archivist": {"seconds": seconds * 3 * scale, "airflow_tree_peak_rss_mb": 900.0}}
    return {
        "scale": scale,
        "quick": quick,
        "started_at": started,
        "data": {"postgres": {"sql_bytes": size}, "elasticsearch": {"source_bytes": size}, "storage": {"bytes": size}},
        "archivist_tasks": tasks,
        "end_to_end": {"backup": e2e, "restore": e2e},
    }


def _save(folder: Path, run: dict) -> None:
    (folder / f"bench-scale-{run['scale']:g}-{run['started_at']}.json").write_text(json.dumps(run))


def test_each_scale_comes_from_its_newest_full_run(tmp_path):
    _save(tmp_path, _run(0.1, "2026-12-01T00:00:00", 10, 100))
    _save(tmp_path, _run(1.0, "2026-12-01T00:00:00", 99, 100))
    _save(tmp_path, _run(1.0, "2026-12-02T00:00:00", 20, 120))  # newer: this one counts
    _save(tmp_path, _run(1.0, "2026-12-03T00:00:00", 99, 100, quick=True))  # quick runs never do
    rows = scaling.figures(scaling.gathered(tmp_path))
    assert rows["postgres"][0.1] == pytest.approx((10, 100))
    assert rows["postgres"][1.0] == pytest.approx((20, 120))
    assert rows["bundle_and_upload"][1.0][0] == pytest.approx(20)  # all three servers' data
    assert 5.0 not in rows["postgres"]


def test_another_benchs_result_at_the_scale_is_not_a_run(tmp_path):
    _save(tmp_path, _run(0.1, "2026-12-01T00:00:00", 10, 100))
    # bench/encryption.py's result: newer, the same scale, none of a run's figures
    (tmp_path / "bench-encryption-scale-0.1-20261204-225251.json").write_text(
        json.dumps({"scale": 0.1, "started_at": "2026-12-04T22:52:51", "rounds": []})
    )
    assert scaling.newest(tmp_path, 0.1)["started_at"] == "2026-12-01T00:00:00"


def test_the_run_being_written_stands_for_its_scale(tmp_path):
    _save(tmp_path, _run(5.0, "2026-12-01T00:00:00", 99, 100))
    runs = scaling.gathered(tmp_path, _run(5.0, "2026-12-04T00:00:00", 30, 100))
    assert scaling.figures(runs)["postgres"][5.0][0] == pytest.approx(30)


def test_the_table_flags_growth_over_the_bounds_from_scale_1_to_5(tmp_path):
    runs = {1.0: _run(1.0, "a", 20, 100), 5.0: _run(5.0, "b", 25, 105)}
    table = "\n".join(scaling.markdown(runs))
    assert "| postgres | – | 20.0 | 25.0 | – | 100 MB | 105 MB | +25% (over) | +5% |" in table
    assert "| backup end to end |" in table


def test_the_chart_is_a_png(tmp_path):
    runs = {s: _run(s, str(s), 20, 100) for s in scaling.SCALES}
    path = scaling.chart(runs, tmp_path / scaling.CHART)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
