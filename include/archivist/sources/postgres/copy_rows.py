"""The rows of each table in a plain pg_dump: its `COPY ... FROM stdin;` blocks, one line a row.

A backup counts them as the dump streams past (`CopyRowCounter`, searching bytes rather than
splitting lines: docs/PERFORMANCE.md#counting-each-tables-rows-during-the-backup); the drill
reads a block's header again to read the same columns back from the database it restored
(`parse_copy_header`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from archivist.format.streams import Readable

# An identifier as pg_dump prints one: bare (lower case) or double-quoted with "" for a quote.
_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
COPY_HEADER = re.compile(
    rf"^COPY (?P<table>{_IDENT}\.{_IDENT}) (?:\((?P<columns>{_IDENT}(?:, {_IDENT})*)\))? FROM stdin;$"
)
_HEADER_START = b"\nCOPY "
_TERMINATOR = b"\n\\.\n"
_TERMINATOR_LINE = re.compile(re.escape(_TERMINATOR))
MAX_HEADER_BYTES = 1024 * 1024  # 1,600 columns of 63-byte names fit many times over


@dataclass(frozen=True)
class CopyTable:
    """A table as a COPY header names it: `schema.table` as printed, and its column list."""

    name: str
    columns: tuple[str, ...]


def parse_copy_header(line: str) -> CopyTable | None:
    """The table and columns of a `COPY <schema>.<table> (<columns>) FROM stdin;` line, or None
    for any other line: nothing else of a dump is ever read back as a table's name."""
    match = COPY_HEADER.match(line)
    if match is None:
        return None
    columns = tuple(re.findall(_IDENT, match["columns"])) if match["columns"] else ()
    return CopyTable(match["table"], columns)


def unquote(ident: str) -> str:
    """An identifier's name: a quoted one without its quotes and with `""` as `"`."""
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def split_name(name: str) -> tuple[str, str]:
    """`schema.table` (as a COPY header prints it) as the schema's and the table's names."""
    match = re.fullmatch(rf"({_IDENT})\.({_IDENT})", name)
    if match is None:
        raise ValueError(f"not a qualified table name: {name!r}")
    return unquote(match[1]), unquote(match[2])


class CopyRowCounter:
    """A readable that passes a plain dump through and counts the rows of each COPY block:
    `rows` maps `schema.table` (as the header prints it) to its row count, once `complete`
    (every block ended as pg_dump ends one, and the dump with a newline)."""

    def __init__(self, raw: Readable):
        self._raw = raw
        self.rows: dict[str, int] = {}
        self._table: str | None = None  # inside this table's block
        self._head = b""  # the first bytes of the line not yet whole
        self._length = 0  # and its length so far

    @property
    def complete(self) -> bool:
        return self._table is None and self._length == 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._scan(data)
        return data

    def _scan(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        if first < 0:
            self._partial(chunk)
            return
        self._partial(chunk[:first])
        self._end_line()
        start = first + 1  # always at a line's start, with chunk[start - 1] a newline
        while start < len(chunk):
            if self._table is not None:
                end = self._terminator(chunk, start)
                if end < 0:
                    last = chunk.rfind(b"\n", start - 1)
                    self.rows[self._table] += chunk.count(b"\n", start)
                    self._partial(chunk[last + 1 :])
                    return
                self.rows[self._table] += chunk.count(b"\n", start, end + 1)
                self._table, start = None, end + len(_TERMINATOR)
                continue
            found = chunk.find(_HEADER_START, start - 1)
            end = chunk.find(b"\n", found + 1) if found >= 0 else -1
            if end < 0:  # no header, or one not yet whole: keep the last line's start
                last = chunk.rfind(b"\n", start - 1) if found < 0 else found
                self._partial(chunk[last + 1 :])
                return
            self._open(chunk[found + 1 : end])
            start = end + 1

    @staticmethod
    def _terminator(chunk: bytes, start: int) -> int:
        """Where the line `\\.` ends a block in `chunk` (at the newline before it), or -1. A
        compiled pattern finds it several times faster than bytes.find, whose search stops at
        every row's newline (docs/PERFORMANCE.md#counting-each-tables-rows-during-the-backup)."""
        found = _TERMINATOR_LINE.search(chunk, start - 1)  # chunk[start - 1] is a newline
        return found.start() if found else -1

    def _partial(self, piece: bytes) -> None:
        if len(self._head) < MAX_HEADER_BYTES:
            self._head += piece[: MAX_HEADER_BYTES - len(self._head)]
        self._length += len(piece)

    def _end_line(self) -> None:
        line, whole = self._head, self._length <= MAX_HEADER_BYTES
        self._head, self._length = b"", 0
        if self._table is not None:
            if line == b"\\." and whole:
                self._table = None
            else:
                self.rows[self._table] += 1
        elif whole and line.startswith(b"COPY "):
            self._open(line)

    def _open(self, header: bytes) -> None:
        table = parse_copy_header(header.decode("utf-8", "replace"))
        if table is not None:
            self._table = table.name
            self.rows.setdefault(table.name, 0)
