"""Keeps Python's cyclic garbage collector off what a process held before a job started.

A job that makes objects by the million (the ES restore's bulk bodies, the export's pages) sets
off a young collection every 700 of them, and every so often a full one that walks every object
the process holds: the modules of boto3, the Elasticsearch client and Airflow
(docs/PERFORMANCE.md#gc-freeze-during-export-and-restore). Frozen objects are left out of every
collection; what the job itself makes is still collected.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_jobs = 0  # jobs inside `frozen`: restore jobs run side by side in one process
_thaw = False  # whether the first of them froze from nothing (a process that froze its own keeps it)


@contextmanager
def frozen() -> Iterator[None]:
    """Freezes the objects that exist now for the block's duration (gc.freeze), then thaws them."""
    global _jobs, _thaw
    with _lock:
        if _jobs == 0:
            _thaw = gc.get_freeze_count() == 0
            gc.freeze()
        _jobs += 1
    try:
        yield
    finally:
        with _lock:
            _jobs -= 1
            if _jobs == 0 and _thaw:
                gc.unfreeze()
