"""bench/report.py: the Markdown report names every measurement that started on a busy machine."""

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
