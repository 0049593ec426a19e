"""bench/measure.py: the peak memory of a whole process tree (spikes between samples included),
and the wait for an idle machine that every measurement at scale 0.1 and above starts with."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import measure  # noqa: E402

HOLD_200_MB = "b = bytearray(200 * 2**20); import time; time.sleep(0.5)"


def test_peak_rss_counts_the_children_of_the_command():
    m = measure.run(
        "tree", f"{sys.executable} -c '{HOLD_200_MB}' & {sys.executable} -c '{HOLD_200_MB}' & wait", shell=True
    ).check()
    assert m.peak_rss_mb >= 400  # two children holding 200 MB each, at the same time
    assert 0.5 <= m.seconds < 10


def test_waiting_for_idle_ends_within_its_bound():
    os.sync()  # what is left to write back is written before the clock starts
    started = time.monotonic()
    wait = measure.wait_for_idle(most_seconds=4)
    # At least IDLE_SECONDS of sampling whether or not the machine is busy; a busy one gives up.
    assert measure.IDLE_SECONDS <= wait.seconds <= time.monotonic() - started + 0.1 < 4 + 2.1


def test_a_machine_kept_busy_makes_the_wait_give_up_and_say_so():
    burn = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        wait = measure.wait_for_idle(most_seconds=3)
    finally:
        burn.kill()
        burn.wait()
    assert wait.gave_up and wait.seconds >= 3


def test_a_spike_between_two_samples_still_counts():
    spike = "b = bytearray(300 * 2**20); del b; import time; time.sleep(0.5)"  # held for a few ms only
    m = measure.run("spike", [sys.executable, "-c", spike]).check()
    assert m.peak_rss_mb >= 300
