"""The order-independent digest and the line splitting the drill reads with."""

from __future__ import annotations

import random

from archivist.drill.digest import LineDigest, split_lines


def _digest(lines) -> LineDigest:
    digest = LineDigest()
    for line in lines:
        digest.add(line)
    return digest


def test_the_same_lines_in_any_order_give_the_same_digest():
    lines = [b"row %d" % i for i in range(1000)]
    shuffled = lines[:]
    random.Random(1).shuffle(shuffled)
    assert _digest(lines) == _digest(shuffled)


def test_one_line_fewer_changed_or_repeated_changes_it():
    lines = [b"row %d" % i for i in range(100)]
    whole = _digest(lines)
    assert _digest(lines[:-1]) != whole
    assert _digest([*lines[:-1], b"row 100"]).total != whole.total
    assert _digest([*lines, lines[0]]) != whole
    assert len(whole.hexdigest) == 32


def test_lines_split_across_chunks():
    assert list(split_lines([b"a\nb", b"c\n", b"", b"\nd"])) == [b"a", b"bc", b"", b"d"]
    assert list(split_lines([b"a\n"])) == [b"a"]
