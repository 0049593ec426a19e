"""A COPY block's spool is read while written, deletes what was read, and keeps disk use in budget."""

from __future__ import annotations

import os
import threading

import pytest

from archivist.sources.postgres import spool
from archivist.sources.postgres.spool import Spool, SpoolBudget, SpoolCancelled


def test_rows_arrive_whole_and_in_order_across_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(spool, "SEGMENT", 10)
    budget = SpoolBudget(25)
    block = Spool(str(tmp_path), "0", budget)
    written = [bytes([i]) * (i + 1) for i in range(30)]
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(block.chunks()))
    reader.start()
    for data in written:
        block.write(data)
        assert budget.used <= 25 + len(data)
    block.finish()
    reader.join(10)
    assert b"".join(got) == b"".join(written)
    assert budget.used == 0
    assert budget.peak <= 25 + 30
    assert os.listdir(tmp_path) == [], "a read segment was left on disk"


def test_a_writer_waits_for_the_reader_at_the_budget(tmp_path):
    budget = SpoolBudget(8)
    block = Spool(str(tmp_path), "0", budget)
    block.write(b"12345678")
    blocked = threading.Thread(target=block.write, args=(b"9",))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive(), "the writer went past the budget"
    chunks = block.chunks()
    assert next(chunks) == b"12345678"
    blocked.join(5)
    assert not blocked.is_alive()
    block.finish()
    assert list(chunks) == [b"9"]


def test_cancel_stops_a_waiting_writer_and_reader(tmp_path):
    budget = SpoolBudget(4)
    writing, reading = Spool(str(tmp_path), "0", budget), Spool(str(tmp_path), "1", budget)
    writing.write(b"1234")
    errors: list[BaseException] = []

    def expect_cancel(work) -> None:
        try:
            work()
        except SpoolCancelled as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=expect_cancel, args=(lambda: writing.write(b"5"),)),
        threading.Thread(target=expect_cancel, args=(lambda: list(reading.chunks()),)),
    ]
    for thread in threads:
        thread.start()
    budget.cancel()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 2
    writing.discard()
    reading.discard()
    assert os.listdir(tmp_path) == []
    with pytest.raises(SpoolCancelled):
        budget.take(1)
