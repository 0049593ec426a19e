"""Which indices a backup takes: the refusals of closed indices and of indices whose _source
cannot give their documents back, and the ways out the run's options give."""

from __future__ import annotations

import pytest

from archivist.errors import ConfigurationError
from archivist.sources.base import DumpOptions
from archivist.sources.elasticsearch import selection

WHERE = "Elasticsearch at http://es:9200"


def _definition(mappings: dict | None = None, index_settings: dict | None = None) -> dict:
    return {"settings": {"index": index_settings or {}}, "mappings": mappings or {}, "aliases": {}}


@pytest.mark.parametrize(
    ("mappings", "index_settings", "why"),
    [
        ({}, {}, None),
        ({"_source": {"enabled": True}}, {}, None),
        ({"_source": {"mode": "synthetic"}}, {}, None),
        ({"_source": {"enabled": False}}, {}, selection.DISABLED),
        ({"_source": {"mode": "disabled"}}, {}, selection.DISABLED),
        ({}, {"mapping": {"source": {"mode": "disabled"}}}, selection.DISABLED),
        ({"_source": {"excludes": ["secret"]}}, {}, selection.FILTERED),
        ({"_source": {"includes": ["a", "b"]}}, {}, selection.FILTERED),
        ({"_source": {"includes": [], "excludes": []}}, {}, None),
    ],
)
def test_source_problem(mappings, index_settings, why):
    assert selection.source_problem(_definition(mappings, index_settings)) == why


def test_open_indices_with_their_source_are_all_taken():
    chosen = selection.select(
        {"a": "open", "b": "open"}, {"a": _definition(), "b": _definition()}, DumpOptions(), WHERE
    )
    assert chosen == selection.Selection(["a", "b"], [], {})


def test_closed_indices_are_refused_by_name_unless_the_run_opens_them():
    states = {"a": "open", "old-1": "close", "old-2": "close"}
    definitions = {name: _definition() for name in states}
    with pytest.raises(ConfigurationError, match=r"^2 index\(es\) of Elasticsearch at http://es:9200 are closed"):
        selection.select(states, definitions, DumpOptions(), WHERE)
    chosen = selection.select(states, definitions, DumpOptions(closed_indices="open"), WHERE)
    assert chosen.closed == ["old-1", "old-2"] and chosen.indices == ["a", "old-1", "old-2"]


def test_an_unreadable_source_is_refused_unless_taken_mappings_only():
    states = {"fine": "open", "lossy": "open"}
    definitions = {"fine": _definition(), "lossy": _definition({"_source": {"enabled": False}})}
    with pytest.raises(ConfigurationError, match=f"lossy: {selection.DISABLED}"):
        selection.select(states, definitions, DumpOptions(), WHERE)
    chosen = selection.select(states, definitions, DumpOptions(mappings_only=("lo*",)), WHERE)
    assert chosen.mappings_only == {"lossy": selection.DISABLED}


def test_mappings_only_may_name_any_index():
    chosen = selection.select({"big": "open"}, {"big": _definition()}, DumpOptions(mappings_only=("big",)), WHERE)
    assert chosen.mappings_only == {"big": "the run's mappings_only names it"}
