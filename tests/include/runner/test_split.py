"""How a job is split into parts and joined again: the pure logic of runner/split.py."""

from __future__ import annotations

import fnmatch

import pytest

from archivist.errors import ConfigurationError
from archivist.format import bundle
from archivist.runner import split
from archivist.sources.base import DumpOptions, RestoreOptions


def test_part_count_scales_with_the_data_and_stays_one_for_a_small_stack():
    assert split.part_count(0, 4, split.INDICES_PER_PART) == 1
    assert split.part_count(0, 41, split.INDICES_PER_PART) == 3
    assert split.part_count(0, 10**7, split.OBJECTS_PER_PART) == split.MAX_PARTS
    assert split.part_count(5, 3, 1) == 3  # never more parts than items
    assert split.part_count(1, 1000, 1) == 1
    with pytest.raises(ConfigurationError, match="split -1"):
        split.part_count(-1, 10, 1)


def test_balanced_groups_hold_every_name_once_and_about_equal_weight():
    weights = {"big": 100, "a": 30, "b": 30, "c": 30, "d": 10}
    groups = split.balanced(weights, 2)
    assert sorted(n for g in groups for n in g) == sorted(weights)
    totals = sorted(sum(weights[n] for n in g) for g in groups)
    assert totals == [100, 100]


def test_key_ranges_cover_every_key_once_and_run_to_both_ends():
    keys = [f"k{i:03d}" for i in range(100)]
    ranges = split.key_ranges(keys, [1] * 100, 4)
    assert len(ranges) == 4
    assert ranges[0][0] is None and ranges[-1][1] is None

    def inside(key, after, last):
        return (after is None or key > after) and (last is None or key <= last)

    for key in [*keys, "a-before-all", "z-after-all"]:
        assert sum(inside(key, *r) for r in ranges) == 1, key
    sizes = [sum(inside(k, *r) for k in keys) for r in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_key_ranges_follow_the_weight_not_the_count():
    keys = ["a", "b", "c", "d"]
    ranges = split.key_ranges(keys, [300, 100, 100, 100], 2)
    assert ranges == [(None, "a"), ("a", None)]


def test_key_ranges_of_one_key_or_one_part_are_the_whole_space():
    assert split.key_ranges(["only"], [5], 3) == [(None, None)]
    assert split.key_ranges(["a", "b"], [1, 1], 1) == [(None, None)]


def test_part_options_narrow_the_run_to_the_part():
    options = DumpOptions(index_pattern="logs-*", mappings_only=("x",))
    es = split.part_options(options, "elasticsearch", {"part": 2, "indices": ["logs-1", "logs-2"]})
    assert (es.index_pattern, es.part, es.mappings_only) == ("logs-1,logs-2", 2, ("x",))
    storage = split.part_options(options, "storage", {"part": 0, "after": None, "last": "m"})
    assert (storage.key_range, storage.part) == ((None, "m"), 0)


def test_an_exact_pattern_matches_its_name_alone():
    for name in ("logs[1]", "a?b", "star*", "plain"):
        assert fnmatch.fnmatchcase(name, split.exact(name))
        assert not fnmatch.fnmatchcase(name + "x", split.exact(name))


def test_restore_parts_follow_the_run_choice_of_indices():
    part = {"part": 0, "indices": ["logs-1", "products"]}
    chosen = split.restore_part_options(RestoreOptions(indices=["logs-*"]), "elasticsearch", part)
    assert chosen is not None and chosen.indices == ["logs-1"]
    assert split.restore_part_options(RestoreOptions(indices=["other"]), "elasticsearch", part) is None


def test_a_bundle_made_in_parts_is_restored_in_its_parts():
    backup_id = "abcdefghijk"
    archives = [bundle.storage_path(backup_id, p) for p in range(3)]
    members = [*archives, *(bundle.storage_manifest_path(backup_id, p) for p in range(3))]
    parts = split.restore_parts("storage", members, 0)
    assert [p["archives"] for p in parts] == [[a] for a in archives]
    assert split.restore_parts("storage", members, 1) == []
    assert split.restore_parts("storage", [bundle.storage_path(backup_id)], 0) == []


def test_storage_parts_need_format_version_3_and_single_part_bundles_keep_theirs():
    backup_id = "abcdefghijk"
    assert bundle.format_version_for([bundle.storage_path(backup_id), bundle.storage_manifest_path(backup_id)]) == 1
    assert bundle.format_version_for([bundle.storage_path(backup_id, 0), bundle.storage_path(backup_id, 1)]) == 3
    assert bundle.is_storage_part("jobs.storage/storage-abcdefghijk.part-0001.tgz")
    assert not bundle.is_storage_part(bundle.storage_path(backup_id))


def test_joined_restore_adds_the_parts_up():
    es = split.joined_restore("elasticsearch", [{"indices": {"a": 2}, "documents": 2}, {"indices": {"b": 3}}])
    assert es == {"indices": {"a": 2, "b": 3}, "documents": 5}
    assert split.joined_restore("storage", [{"objects": 1, "bytes": 5}, {"objects": 2, "bytes": 7}]) == {
        "objects": 3,
        "bytes": 12,
    }
    assert split.joined_restore("storage", []) is None
