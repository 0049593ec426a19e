"""Handing items from one thread to another through a bounded queue when the other side may stop.

A producer that waits on a full queue must notice when its consumer has gone (closed early, or
failed), or it waits forever; so its put waits a short while at a time and checks in between.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TypeVar

POLL_SECONDS = 0.5  # how soon a waiting producer notices that its consumer has stopped
T = TypeVar("T")


class Stopped(Exception):
    """The handover was given up: the other side, or the work both sides do, has stopped."""


def put(items: queue.Queue[T], item: T, stopped: Callable[[], bool]) -> None:
    """Puts `item` in `items`, waiting while the queue is full; raises Stopped, without putting
    it, once `stopped()` is true."""
    while not stopped():
        try:
            items.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue
    raise Stopped()
