"""A sign of life written at a steady rhythm while a block of work runs (the staging lease, the lock)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def beating(every: float, beat: Callable[[], bool], name: str) -> Iterator[None]:
    """Calls `beat` every `every` seconds in a thread while the block runs; a `beat` that returns
    False is not called again. The thread is stopped and joined however the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            if not beat():
                return

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
