"""How a job is split into parts and joined again: the pure logic of runner/split.py."""

from __future__ import annotations

import datetime as dt
import fnmatch
import io
import json

import pytest

from archivist.errors import ConfigurationError
from archivist.format import bundle
from archivist.runner import slicing, split
from archivist.sources.base import DumpOptions, PitSlices, RestoreOptions


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


def _listing(keys, weights=None):
    """A bucket listing as plan_storage reads it: a generator, walked once."""
    yield from zip(keys, weights or [1] * len(keys), strict=True)


def _inside(key, after, last):
    return (after is None or key > after) and (last is None or key <= last)


def test_key_ranges_cover_every_key_once_and_run_to_both_ends():
    keys = [f"k{i:03d}" for i in range(100)]
    ranges = split.key_ranges(_listing(keys), 100, 4)
    assert len(ranges) == 4
    assert ranges[0][0] is None and ranges[-1][1] is None
    for key in [*keys, "a-before-all", "z-after-all"]:
        assert sum(_inside(key, *r) for r in ranges) == 1, key
    sizes = [sum(_inside(k, *r) for k in keys) for r in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_key_ranges_follow_the_weight_not_the_count():
    ranges = split.key_ranges(_listing(["a", "b", "c", "d"], [300, 100, 100, 100]), 600, 2)
    assert ranges == [(None, "a"), ("a", None)]


def test_key_ranges_of_one_key_or_one_part_are_the_whole_space():
    assert split.key_ranges(_listing(["only"], [5]), 5, 3) == [(None, None)]
    assert split.key_ranges(_listing(["a", "b"]), 2, 1) == [(None, None)]
    assert split.key_ranges(_listing([]), 0, 4) == [(None, None)]


@pytest.mark.parametrize("second", ["grew", "shrank"])
def test_key_ranges_of_a_bucket_that_changed_between_the_listings_still_cover_it_once(second):
    first = [f"k{i:04d}" for i in range(1000)]
    now = [*first, *(f"z{i:04d}" for i in range(500))] if second == "grew" else first[::3]
    ranges = split.key_ranges(_listing(now), len(first), 4)
    assert 1 <= len(ranges) <= 4
    assert ranges[0][0] is None and ranges[-1][1] is None
    for key in [*first, *now]:
        assert sum(_inside(key, *r) for r in ranges) == 1, key


def test_key_ranges_hold_the_bounds_alone_not_the_listing():
    """A million keys from a generator: the planning keeps n bounds, whatever the bucket holds."""
    n, count = 8, 1_000_000
    ranges = split.key_ranges(((f"key-{i:07d}", 1) for i in range(count)), count, n)
    assert [r[1] for r in ranges[:-1]] == [f"key-{count * i // n - 1:07d}" for i in range(1, n)]


def test_slice_counts_cut_an_index_large_against_a_share_and_leave_room_for_the_rest():
    # one index of 90% of the store, split 4: three slices of it, one part for the others
    assert slicing.slice_counts({"big": 900, "a": 50, "b": 50}, 4, ["big", "a", "b"], 0) == {"big": 3}
    # alone, an index takes every part
    assert slicing.slice_counts({"only": 10}, 4, ["only"], 0) == {"only": 4}
    # indices of about equal size are left whole
    assert slicing.slice_counts({"a": 100, "b": 100, "c": 90}, 3, ["a", "b", "c"], 0) == {}
    # two parts cannot hold two slices and the others: the index stays whole
    assert slicing.slice_counts({"big": 800, "a": 200}, 2, ["big", "a"], 0) == {}
    # never what the planning may not slice (closed, mappings only, no sliced point in time), nor a small index
    assert slicing.slice_counts({"big": 900, "a": 100}, 4, ["a"], 0) == {}
    assert slicing.slice_counts({"big": 900, "a": 100}, 4, ["big", "a"], 1000) == {}
    assert slicing.slice_counts({"big": 900}, 1, ["big"], 0) == {}


@pytest.mark.parametrize("n", range(2, 17))
def test_slices_and_whole_parts_never_pass_the_parts_asked(n):
    for weights in ({"x": 5000, "y": 4000, "z": 1}, {f"i{k}": 2**k for k in range(12)}, {"a": 1, "b": 1000}):
        counts = slicing.slice_counts(weights, n, list(weights), 0)
        whole = len(weights) > len(counts)
        assert sum(counts.values()) + whole <= n, (weights, counts)
        assert all(k >= 2 for k in counts.values())


def test_slice_min_mb_is_read_from_the_environment():
    assert slicing.slice_min_bytes({}) == slicing.DEFAULT_SLICE_MIN_MB * 1024 * 1024
    assert slicing.slice_min_bytes({"ARCHIVIST_SLICE_MIN_MB": "0.5"}) == 512 * 1024
    with pytest.raises(ConfigurationError, match="ARCHIVIST_SLICE_MIN_MB must be a number"):
        slicing.slice_min_bytes({"ARCHIVIST_SLICE_MIN_MB": "lots"})


def test_the_point_in_time_lives_as_long_as_the_run_within_the_server_limit(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_RUN_TIMEOUT_HOURS", "3")
    assert slicing.keep_alive() == "10800s"
    monkeypatch.setenv("ARCHIVIST_RUN_TIMEOUT_HOURS", "72")
    assert slicing.keep_alive() == f"{slicing.MAX_KEEP_ALIVE_SECONDS}s"


def test_concatenated_reads_whole_chunks_across_the_objects():
    bodies = [b"a" * 5, b"", b"b" * 7, b"c" * 3]
    opened = []

    def opener(body):
        def open_():
            stream = io.BytesIO(body)
            opened.append(stream)
            return stream

        return open_

    stream = slicing.Concatenated([opener(b) for b in bodies])
    assert [stream.read(4) for _ in range(5)] == [b"aaaa", b"abbb", b"bbbb", b"ccc", b""]
    assert all(s.closed for s in opened)
    assert slicing.Concatenated([opener(b) for b in bodies]).read() == b"".join(bodies)


def test_part_options_narrow_the_run_to_the_part():
    options = DumpOptions(index_pattern="logs-*", mappings_only=("x",))
    es = split.part_options(options, "elasticsearch", {"part": 2, "indices": ["logs-1", "logs-2"]})
    assert (es.index_pattern, es.indices, es.part, es.mappings_only) == ("logs-*", ("logs-1", "logs-2"), 2, ("x",))
    assert es.pit_slices is None
    storage = split.part_options(options, "storage", {"part": 0, "after": None, "last": "m"})
    assert (storage.key_range, storage.part) == ((None, "m"), 0)


def test_part_options_of_a_slice_part_name_its_slices_of_the_point_in_time():
    share = {"index": "logs-1", "pit": "p1t", "ids": [2, 3], "of": 6, "total": 99, "keep_alive": "60s"}
    got = split.part_options(DumpOptions(index_pattern="logs-*"), "elasticsearch", {"part": 1, "slices": share})
    assert (got.index_pattern, got.indices, got.part) == ("logs-*", ("logs-1",), 1)
    assert got.pit_slices == PitSlices("logs-1", "p1t", (2, 3), 6, "60s", 99)
    assert got.pit_slices.as_dict() == {k: v for k, v in share.items() if k != "keep_alive"}


def test_a_slice_part_result_keeps_its_slices_through_xcom_but_not_in_meta():
    result = bundle.JobResult("elasticsearch", [], {"indices": {"a": 1}}, 1.0, "8.19.0", 1, {"index": "a"})
    assert bundle.JobResult.from_dict(result.as_dict()) == result
    meta = bundle.build_meta(bundle.BackupKey.new(), [result], dt.datetime.now(dt.UTC))
    assert "slices" not in json.dumps(meta)


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
