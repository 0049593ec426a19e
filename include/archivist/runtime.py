"""Process tuning for a job: the garbage collector kept off what the process held before it
started, and glibc's malloc kept from fragmenting under many threads.

A job that makes objects by the million (the ES restore's bulk bodies, the export's pages) sets
off a young collection every 700 of them, and every so often a full one that walks every object
the process holds: the modules of boto3, the Elasticsearch client and Airflow
(docs/PERFORMANCE.md#gc-freeze-during-export-and-restore). Frozen objects are left out of every
collection; what the job itself makes is still collected.
"""

from __future__ import annotations

import ctypes
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


M_ARENA_MAX = -8  # mallopt's parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
GLIBC_MMAP_THRESHOLD = 128 * 1024  # where glibc's threshold starts
# Blocks this large (multipart parts, bulk bodies, export pages) are mapped on their own; the 1 MiB
# blocks that come and go by the thousand (read windows, small objects) stay in the arenas, where
# mapping them costs page faults (docs/PERFORMANCE.md#mmap-threshold).
MMAP_THRESHOLD = 2 * 1024 * 1024


@contextmanager
def malloc_arenas(arenas: int, mmap_threshold: int = MMAP_THRESHOLD) -> Iterator[None]:
    """Caps glibc's malloc arenas while the block runs, then puts glibc's default back (a no-op
    without glibc). Scoped, so a task run inside a longer-lived process (`airflow dags test`, a
    worker that runs several tasks) does not keep the cap after the task.

    glibc gives threads that allocate their own arenas, up to 8 per core, and keeps freed memory
    in each; a dozen threads handling bodies of every size so fragment the heap that peak RSS grows
    with the data. Two arenas keep it bounded (docs/PERFORMANCE.md#malloc-arenas).

    Every block of at least `mmap_threshold` bytes is mapped on its own and given back when freed.
    Left alone, glibc raises its threshold to the largest block freed so far, so that after the
    first multi-MiB body or part all of them come from the arenas, which they fragment
    (docs/PERFORMANCE.md#mmap-threshold).
    glibc has no way back to that moving threshold: afterwards it stays at glibc's starting value."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_ARENA_MAX, arenas)
    mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    try:
        yield
    finally:
        mallopt(M_ARENA_MAX, 0)  # 0: glibc's own limit again
        mallopt(M_MMAP_THRESHOLD, GLIBC_MMAP_THRESHOLD)
