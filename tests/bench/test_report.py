"""bench/report.py: the Markdown report names every measurement that started on a busy machine,
evaluates every target of the issue, and keeps the server's bound when rendered again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402

pytestmark = pytest.mark.unit
SAVED = ROOT / "bench" / "results" / "bench-scale-1-20261206-173533.json"


def test_a_measurement_the_idle_wait_gave_up_on_is_named_in_the_report():
    busy = ["baseline elasticdump import data", "archivist_restore run"]
    results = {**json.loads(SAVED.read_text()), "busy_starts": busy}
    text = report.markdown(results, reference=None)
    [line] = [x for x in text.splitlines() if x.startswith("**Started on a busy machine**")]
    assert "baseline elasticdump import data, archivist_restore run." in line
    assert text.index(line) < text.index("## Targets")


def test_a_run_that_always_started_idle_says_nothing_of_it():
    saved = json.loads(SAVED.read_text())  # saved before the report kept busy starts
    for results in (saved, {**saved, "busy_starts": []}):
        assert "busy machine" not in report.markdown(results, reference=None)


def test_every_speedup_target_of_the_issue_is_evaluated():
    results = json.loads(SAVED.read_text())
    rows = {what: (wanted, found, met) for what, wanted, found, met in report.evaluate(results, reference=None)}
    e2e = results["end_to_end"]["restore"]
    ratio = e2e["archivist"]["seconds"] / e2e["baseline"]["seconds"]
    assert rows["restore end to end wall time ÷ baselines'"] == ("≤ 0.6", f"{ratio:.2f}", ratio <= 0.6)
    pg = results["speedup"]["pg_restore"]
    assert rows["pg_restore speedup"] == ("≥ 2×", f"{pg:.2f}×", pg >= 2)


def test_a_report_rendered_again_keeps_the_newest_bound_of_its_scale(tmp_path, monkeypatch):
    bound = sorted((ROOT / "bench" / "results").glob("pg-restore-scale-1-*.json"))[-1]
    (tmp_path / bound.name).write_text(bound.read_text())
    saved = tmp_path / SAVED.name
    saved.write_text(SAVED.read_text())
    monkeypatch.setattr(sys, "argv", ["bench.report", str(saved)])
    report.main()
    text = saved.with_suffix(".md").read_text()
    assert "## PostgreSQL restore against the server's bound (scale 1" in text
    assert any(t["what"] == "pg_restore speedup" for t in json.loads(saved.read_text())["targets"])
