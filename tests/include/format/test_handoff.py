"""format/handoff.py: a side waiting on a full or empty queue lets go once the other has stopped."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from archivist.format import handoff

pytestmark = pytest.mark.unit


def test_an_item_is_put_while_the_queue_has_room():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    handoff.put(items, 7, lambda: False)
    assert items.get_nowait() == 7


def test_a_put_waits_for_room_while_the_consumer_reads():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    items.put(1)
    threading.Timer(0.2, items.get).start()
    handoff.put(items, 2, lambda: False)
    assert items.get(timeout=1) == 2


def test_a_put_on_a_full_queue_stops_soon_after_the_consumer_does():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    items.put(1)
    stopped = threading.Event()
    threading.Timer(0.2, stopped.set).start()
    started = time.monotonic()
    with pytest.raises(handoff.Stopped):
        handoff.put(items, 2, stopped.is_set)
    assert time.monotonic() - started < 0.2 + handoff.POLL_SECONDS + 0.5
    assert items.get_nowait() == 1 and items.empty()  # the item was not put


def test_nothing_is_put_once_stopped():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    with pytest.raises(handoff.Stopped):
        handoff.put(items, 1, lambda: True)
    assert items.empty()


def test_a_get_returns_an_item_that_comes_while_it_waits():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    threading.Timer(0.2, items.put, (3,)).start()
    assert handoff.get(items, lambda: False) == 3


def test_a_get_on_an_empty_queue_stops_soon_after_the_producer_does():
    items: queue.Queue[int] = queue.Queue(maxsize=1)
    stopped = threading.Event()
    threading.Timer(0.2, stopped.set).start()
    started = time.monotonic()
    with pytest.raises(handoff.Stopped):
        handoff.get(items, stopped.is_set)
    assert time.monotonic() - started < 0.2 + handoff.POLL_SECONDS + 0.5
