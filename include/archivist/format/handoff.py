"""Handing items from one thread to another through a bounded queue when the other side may stop.

A producer that waits on a full queue, or a consumer on an empty one, must notice when the other
side has gone (closed early, or failed), or it waits forever; so each wait is short and the stop
is checked in between.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TypeVar

POLL_SECONDS = 0.5  # how soon a waiting side notices that the other has stopped
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


def get(items: queue.Queue[T], stopped: Callable[[], bool]) -> T:
    """The next item of `items`, waiting while the queue is empty; raises Stopped once `stopped()`
    is true and no item has come."""
    while True:
        try:
            return items.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if stopped():
                raise Stopped() from None
