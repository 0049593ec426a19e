"""Scratch target names: one random token, never a name the cleanup could mistake."""

from __future__ import annotations

import pytest

from archivist.drill.scratch import ScratchTargets
from archivist.errors import ConfigurationError


def test_names_rest_on_the_token():
    scratch = ScratchTargets("abc123def4")
    assert scratch.database == "archivist_drill_abc123def4"
    assert scratch.index_prefix == "archivist-drill-abc123def4-"
    assert scratch.storage_prefix == "archivist-drill-abc123def4/"
    assert scratch.database_map(["crm", "billing"]) == (
        ("billing", "archivist_drill_abc123def4_1"),
        ("crm", "archivist_drill_abc123def4_2"),
    )


def test_restore_options_write_only_scratch_targets():
    options = ScratchTargets("abc123def4", "other-bucket").restore_options(["crm"])
    assert options.postgres_database == "archivist_drill_abc123def4"
    assert options.postgres_database_map == (("crm", "archivist_drill_abc123def4_1"),)
    assert options.index_prefix == "archivist-drill-abc123def4-"
    assert options.storage_prefix == "archivist-drill-abc123def4/"
    assert options.storage_bucket == "other-bucket"
    assert options.skip_templates and not options.postgres_roles


def test_new_tokens_differ_and_round_trip():
    first, second = ScratchTargets.new(), ScratchTargets.new()
    assert first.token != second.token
    assert ScratchTargets.from_dict(first.as_dict()) == first


@pytest.mark.parametrize("token", ["", "short", "UPPERCASE1", "../../etc0", "abc123def4*", "abc 123def"])
def test_a_token_that_could_widen_the_cleanup_is_refused(token):
    with pytest.raises(ConfigurationError, match="scratch token"):
        ScratchTargets(token)
