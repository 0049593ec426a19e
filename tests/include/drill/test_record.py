"""The verdict record: written small and without secrets, read back as untrusted input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from archivist.drill import record
from archivist.drill.record import Verdict

KEY = "bundle-2026-12-04-abcdefghijk"
WHEN = dt.datetime(2026, 12, 4, 23, 0, tzinfo=dt.UTC)


def _body(**changes) -> bytes:
    data = Verdict(KEY, "matched", WHEN, (), {"tables": 5, "rows": 3332}, 12.3, "archivist_drill/manual").as_dict()
    data.update(changes)
    return json.dumps(data).encode()


def test_a_matched_verdict_round_trips_and_says_so():
    verdict = record.parse(_body(), KEY)
    assert verdict.matched
    assert verdict.summary() == "restored and matched on 2026-12-04"
    assert verdict.checked == {"tables": 5, "rows": 3332}


def test_a_differing_verdict_names_the_first_difference_and_how_many_more():
    lines = ("table app.customers: 399 rows restored, meta.json says 400", "index products: 199 documents")
    verdict = Verdict(KEY, "differed", WHEN, lines)
    assert verdict.summary() == (
        "differed on 2026-12-04: table app.customers: 399 rows restored, meta.json says 400 (and 1 more)"
    )
    assert record.parse(json.dumps(verdict.as_dict()).encode(), KEY).differences == lines


def test_the_record_stays_small_however_much_differed():
    verdict = Verdict(KEY, "differed", WHEN, tuple("x" * 5000 for _ in range(10_000)))
    body = json.dumps(verdict.as_dict()).encode()
    assert len(body) < record.MAX_BYTES
    assert len(record.parse(body, KEY).differences) == record.MAX_DIFFERENCES + 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[]", "not a drill record"),
        (b"{" + b" " * (70 * 1024) + b"}", "over"),
        (_body(format=2), "not a drill record"),
        (_body(key="bundle-2026-12-04-zzzzzzzzzzz"), "key"),
        (_body(result="fine"), "result"),
        (_body(drilled_at="2026-12-04T23:00:00"), "time zone"),
        (_body(differences="all good"), "differences"),
        (_body(checked={"rows": -1}), "checked"),
        (_body(checked={"secret": 1}), "checked"),
        (_body(seconds="soon"), "duration"),
    ],
)
def test_a_forged_record_is_refused_naming_what_is_wrong(body, problem):
    with pytest.raises(ValueError, match=problem):
        record.parse(body, KEY)


def test_notes_say_what_was_not_checked_without_making_a_difference():
    note = "data stream(s) logs-app not drilled: scratch names have no template to make a data stream"
    verdict = Verdict(KEY, "matched", WHEN, (), {"indices": 2}, notes=(note,))
    read = record.parse(json.dumps(verdict.as_dict()).encode(), KEY)
    assert read.matched and read.notes == (note,)
    assert read.summary() == f"restored and matched on 2026-12-04 ({note})"
    with pytest.raises(ValueError, match="notes"):
        record.parse(_body(notes="none"), KEY)


def test_control_characters_never_reach_a_terminal():
    verdict = record.parse(_body(result="differed", differences=["\x1b[2Jtable x\r\n: gone"]), KEY)
    assert verdict.differences == ("?[2Jtable x??: gone",)
