"""What a drill restored against what the bundle says: meta.json's counts, and the drill's own
reading of the bundle's data (each table's rows, each index's ids, each object's sha256).
Each difference is one line naming the table, index or object and both numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archivist.drill.digest import LineDigest
from archivist.drill.objects import Stored
from archivist.drill.tables import DumpTables


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Database:
    """One database of the bundle: its dump read, and what the scratch database holds."""

    meta: dict[str, Any]  # meta.json's counts of it: tables, and rows per table when the backup counted them
    dump: DumpTables
    tables: int = 0
    restored: dict[str, LineDigest] = field(default_factory=dict)


def databases(found: dict[str, Database]) -> list[str]:
    """Differences in each database; `found` is keyed by how a message names the database ("" for
    the connection's own)."""
    problems = []
    for label, db in found.items():
        where = f"database {label}: " if label else ""
        want_tables = _int(db.meta.get("tables"))
        if want_tables is not None and db.tables != want_tables:
            problems.append(f"{where}{db.tables} tables restored, meta.json says {want_tables}")
        meta_rows = {k: v for k, v in _mapping(db.meta.get("rows")).items() if _int(v) is not None}
        for table in sorted(set(db.dump.rows) | set(meta_rows)):
            got = db.restored.get(table)
            if got is None:
                problems.append(f"{where}table {table}: not restored")
                continue
            if table in meta_rows and got.count != meta_rows[table]:
                problems.append(f"{where}table {table}: {got.count} rows restored, meta.json says {meta_rows[table]}")
            dumped = db.dump.rows.get(table)
            if dumped is None:
                problems.append(f"{where}table {table}: meta.json counts it, the dump holds no rows for it")
            elif got.count != dumped.count:
                problems.append(f"{where}table {table}: {got.count} rows restored, the dump holds {dumped.count}")
            elif got.total != dumped.total:
                problems.append(
                    f"{where}table {table}: the rows restored are not the dump's (checksum "
                    f"{got.hexdigest[:12]}… restored, {dumped.hexdigest[:12]}… dumped)"
                )
    return problems


def indices(meta: dict[str, Any], dumped: dict[str, LineDigest], restored: dict[str, LineDigest | None]) -> list[str]:
    """Differences per index: meta.json's `indices` counts, the ndjson's ids, the scratch index."""
    problems = []
    meta_docs = {k: v for k, v in _mapping(meta.get("indices")).items() if _int(v) is not None}
    for index in sorted(set(meta_docs) | set(dumped)):
        got = restored.get(index)
        if got is None:
            problems.append(f"index {index}: not restored")
            continue
        if index in meta_docs and got.count != meta_docs[index]:
            problems.append(f"index {index}: {got.count} documents restored, meta.json says {meta_docs[index]}")
        lines = dumped.get(index)
        if lines is None:
            if got.count:
                problems.append(f"index {index}: {got.count} documents restored, the bundle holds none")
        elif got.count != lines.count:
            problems.append(f"index {index}: {got.count} documents restored, the bundle's ndjson holds {lines.count}")
        elif got.total != lines.total:
            problems.append(
                f"index {index}: the document ids restored are not the bundle's (checksum "
                f"{got.hexdigest[:12]}… restored, {lines.hexdigest[:12]}… in the bundle)"
            )
    return problems


def objects(
    meta: dict[str, Any], archive: dict[str, Stored], manifest: dict[str, int] | None, restored: dict[str, Stored]
) -> list[str]:
    """Differences per object: meta.json's totals, the manifest's keys and sizes, the archive's
    sha256 of each object against the restored object's."""
    problems = []
    want_objects, want_bytes = _int(meta.get("objects")), _int(meta.get("bytes"))
    got_bytes = sum(s.size for s in restored.values())
    if want_objects is not None and len(restored) != want_objects:
        problems.append(f"storage: {len(restored)} objects restored, meta.json says {want_objects}")
    if want_bytes is not None and got_bytes != want_bytes:
        problems.append(f"storage: {got_bytes} bytes restored, meta.json says {want_bytes}")
    for key in sorted(set(archive) | set(restored) | set(manifest or {})):
        got, held = restored.get(key), archive.get(key)
        if got is None:
            problems.append(f"object {key!r}: not restored")
        elif held is None:
            problems.append(f"object {key!r}: restored, but the bundle's archive does not hold it")
        elif got != held:
            problems.append(
                f"object {key!r}: sha256 {got.sha256[:12]}… ({got.size} bytes) restored, the bundle holds "
                f"{held.sha256[:12]}… ({held.size} bytes)"
            )
        if manifest is not None:
            listed, known = manifest.get(key), held or got
            size = known.size if known is not None else None
            if listed is None:
                problems.append(f"object {key!r}: not in the bundle's manifest")
            elif size is not None and listed != size:
                problems.append(f"object {key!r}: {size} bytes, the bundle's manifest says {listed}")
    return problems
