"""bench/measure.py: the peak memory and CPU time of a whole process tree (spikes between samples,
and descendants that have ended, included), and the wait for an idle machine that every
measurement at scale 0.1 and above starts with: its bound, its giving up, and what it counts apart."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

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


def test_what_is_counted_apart_does_not_keep_the_machine_busy():
    # A core kept busy, and counted apart (as the wait before a DAG run counts Airflow's own idle
    # work): the wait ends idle. The count here grows faster than any machine's cores could.
    burn = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    counted = itertools.count(step=1000.0)
    try:
        wait = measure.wait_for_idle(most_seconds=10, apart_from=lambda: next(counted))
    finally:
        burn.kill()
        burn.wait()
    assert not wait.gave_up and wait.seconds < 5


def test_a_tree_counts_the_cpu_of_descendants_that_have_ended():
    burn = "import time\nwhile time.process_time() < 1: pass"
    shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{burn}'; sleep 30; true"])
    try:
        deadline = time.monotonic() + 30
        proc = psutil.Process(shell.pid)
        while "sleep" not in [c.name() for c in proc.children()] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert measure.tree_cpu_seconds(proc) >= 0.95  # the ended python's second, through bash
    finally:
        shell.kill()
        shell.wait()


def test_a_spike_between_two_samples_still_counts():
    spike = "b = bytearray(300 * 2**20); del b; import time; time.sleep(0.5)"  # held for a few ms only
    m = measure.run("spike", [sys.executable, "-c", spike]).check()
    assert m.peak_rss_mb >= 300
