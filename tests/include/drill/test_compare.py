"""What the drill calls a difference: each line names the table, index or object and both numbers."""

from __future__ import annotations

from archivist.drill import compare
from archivist.drill.digest import LineDigest
from archivist.drill.objects import Stored
from archivist.drill.tables import DumpTables


def _digest(*lines: bytes) -> LineDigest:
    digest = LineDigest()
    for line in lines:
        digest.add(line)
    return digest


def _db(meta, dumped, restored, tables=1) -> compare.Database:
    dump = DumpTables(rows=dumped)
    return compare.Database(meta, dump, tables, restored)


def test_a_database_that_matches_has_no_difference():
    rows = {"app.t": _digest(b"1", b"2")}
    assert compare.databases({"": _db({"tables": 1, "rows": {"app.t": 2}}, rows, {"app.t": _digest(b"2", b"1")})}) == []


def test_meta_json_counting_a_row_the_data_lacks_names_the_table_and_both_numbers():
    rows = {"app.t": _digest(b"1")}
    found = compare.databases({"": _db({"tables": 1, "rows": {"app.t": 2}}, rows, {"app.t": _digest(b"1")})})
    assert found == ["table app.t: 1 rows restored, meta.json says 2"]


def test_rows_that_differ_from_the_dump_and_missing_tables():
    found = compare.databases(
        {
            "crm": _db(
                {"tables": 3},
                {"a.x": _digest(b"1"), "a.y": _digest(b"1"), "a.z": _digest(b"1")},
                {"a.x": _digest(b"2"), "a.y": _digest(b"1", b"1")},
                tables=2,
            )
        }
    )
    assert found[0] == "database crm: 2 tables restored, meta.json says 3"
    assert found[1].startswith("database crm: table a.x: the rows restored are not the dump's (checksum ")
    assert found[2] == "database crm: table a.y: 2 rows restored, the dump holds 1"
    assert found[3] == "database crm: table a.z: not restored"


def test_indices_against_meta_json_and_the_ndjson():
    dumped = {"products": _digest(b"1", b"2"), "empty": _digest()}
    restored = {"products": _digest(b"1", b"2"), "empty": _digest(), "gone": None}
    meta = {"indices": {"products": 3, "empty": 0, "gone": 4}}
    assert compare.indices(meta, dumped, restored) == [
        "index gone: not restored",
        "index products: 2 documents restored, meta.json says 3",
    ]


def test_objects_against_meta_json_the_manifest_and_the_archive():
    archive = {"a": Stored(1, "aa" * 32), "b": Stored(2, "bb" * 32)}
    restored = {"a": Stored(1, "aa" * 32), "b": Stored(2, "cc" * 32), "c": Stored(1, "dd" * 32)}
    manifest = {"a": 1, "b": 3}
    found = compare.objects({"objects": 2, "bytes": 3}, archive, manifest, restored)
    assert found == [
        "storage: 3 objects restored, meta.json says 2",
        "storage: 4 bytes restored, meta.json says 3",
        "object 'b': sha256 cccccccccccc… (2 bytes) restored, the bundle holds bbbbbbbbbbbb… (2 bytes)",
        "object 'b': 2 bytes, the bundle's manifest says 3",
        "object 'c': restored, but the bundle's archive does not hold it",
        "object 'c': not in the bundle's manifest",
    ]
