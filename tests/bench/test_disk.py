"""bench/disk.py: the disk a bench run needs, with and without the baselines' copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import disk  # noqa: E402

pytestmark = pytest.mark.unit


def test_without_the_baselines_their_work_folder_is_not_counted():
    full, alone = disk.estimate(5), disk.estimate(5, baselines=False)
    assert disk.BASELINES_WORK in full and disk.BASELINES_WORK not in alone
    assert sum(full.values()) - sum(alone.values()) == pytest.approx(full[disk.BASELINES_WORK])
    assert full[disk.BASELINES_WORK] == pytest.approx(3.2 * 5 * disk.MARGIN, abs=0.05)


def test_the_shortfall_is_what_the_free_disk_lacks():
    needed = sum(disk.estimate(5).values())
    short = disk.Room(5, free=needed - 10.0, generated=0.0)
    assert short.shortfall() == pytest.approx(10.0)
    assert short.shortfall(baselines=False) == 0.0
    assert disk.Room(5, free=needed + 1.0, generated=0.0).shortfall() == 0.0


def test_data_generated_already_is_not_needed_again():
    needed = sum(disk.estimate(5).values())
    room = disk.Room(5, free=needed - 10.0, generated=14.0)
    assert room.needed() == pytest.approx(needed - 14.0)
    assert room.shortfall() == 0.0


def test_the_write_rate_is_measured_and_leaves_nothing(tmp_path):
    rate = disk.write_rate(tmp_path, mb=8)
    assert rate > 0
    assert list(tmp_path.iterdir()) == []
