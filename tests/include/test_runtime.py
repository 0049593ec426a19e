"""runtime.frozen: what exists before a job is left out of collections, and thawed after."""

from __future__ import annotations

import gc
import threading
import weakref

from archivist import runtime


class _Cycle:
    def __init__(self):
        self.me = self


def test_objects_from_before_are_frozen_and_thawed_after():
    before = gc.get_freeze_count()
    with runtime.frozen():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before


def test_a_cycle_made_inside_the_block_is_still_collected():
    with runtime.frozen():
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert gone() is None


def test_side_by_side_jobs_thaw_only_when_the_last_one_ends():
    inside, release = threading.Barrier(2), threading.Event()

    def job():
        with runtime.frozen():
            inside.wait()
            release.wait()

    other = threading.Thread(target=job)
    other.start()
    with runtime.frozen():
        inside.wait()
    assert gc.get_freeze_count() > 0  # the other job still runs
    release.set()
    other.join()
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_own_objects_keeps_them_frozen():
    gc.freeze()
    try:
        with runtime.frozen():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
