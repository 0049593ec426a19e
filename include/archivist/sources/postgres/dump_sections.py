"""A plain-SQL dump cut the way a parallel restore runs it, in one sequential read.

pg_dump writes the schema first (pre-data), then each table's rows as a `COPY … FROM stdin`
block, then indexes, constraints, triggers and the rest (post-data). This reads the dump once:
`pre_data` copies everything before the first COPY, and `items` then yields each COPY block
(its rows streamed, never held whole) and every later statement, sorted into the phase that may
run it: indexes and non-foreign-key constraints in parallel, partition index attachments in
order, foreign keys in parallel, and everything else (sequence values, triggers, comments,
grants, large objects, refreshes) in order in one psql transaction.

Statements are found by dump_plan's lexer, which knows SQL quoting, so text inside a string or
function body never starts or ends one. A line psql would take as a backslash command is glued
to the statement after it, which then matches no phase pattern and goes to psql, whose
restricted mode refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from archivist.errors import VerificationError
from archivist.format.streams import Readable
from archivist.sources.postgres.dump_plan import _IDENT, DumpPlan, _Scanner, identifier

CHUNK = 1024 * 1024
# A line starting `\.`: a compiled pattern finds it several times faster than bytearray.find, which
# stops at every row's newline (docs/PERFORMANCE.md#counting-each-tables-rows-during-the-backup).
_END_LINE_START = re.compile(rb"\n\\\.")

_NAME = _IDENT + rb"(?:\." + _IDENT + rb")?"
_COPY = re.compile(rb"COPY\s+(" + _NAME + rb")\s*(?:\([^;]*\))?\s+FROM\s+stdin\s*;", re.I)
_SETTING = re.compile(rb"(?:SET\s+(?:SESSION\s+)?([A-Za-z_][A-Za-z0-9_.]*)|SELECT\s+pg_catalog\.set_config\s*\()", re.I)
_ADD_CONSTRAINT = rb"ALTER\s+TABLE\s+(?:ONLY\s+)?" + _NAME + rb"\s+ADD\s+CONSTRAINT\s+" + _IDENT + rb"\s+"
_INDEX_PHASE = re.compile(
    rb"(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s|" + _ADD_CONSTRAINT + rb"(?:PRIMARY\s+KEY|UNIQUE|CHECK|EXCLUDE)\b)", re.I
)
# The table an index-phase statement builds on: `CREATE INDEX i ON [ONLY] t` or `ALTER TABLE [ONLY] t`.
_BUILDS_ON = re.compile(
    rb"(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s+" + _IDENT + rb"\s+ON\s+(?:ONLY\s+)?|ALTER\s+TABLE\s+(?:ONLY\s+)?)"
    rb"(" + _NAME + rb")\s",
    re.I,
)
_ATTACH = re.compile(rb"ALTER\s+INDEX\s+" + _NAME + rb"\s+ATTACH\s+PARTITION\s", re.I)
_FOREIGN_KEY = re.compile(_ADD_CONSTRAINT + rb"FOREIGN\s+KEY\b", re.I)

INDEXES, ATTACH, FOREIGN_KEYS, SERIAL = "indexes", "attach", "foreign_keys", "serial"
PHASES = (INDEXES, ATTACH, FOREIGN_KEYS, SERIAL)  # the order they run in


@dataclass
class Statement:
    text: bytes
    phase: str
    settings: tuple[bytes, ...]  # the session's SET statements in force where it stands


@dataclass
class CopyBlock:
    statement: bytes  # `COPY schema.table (columns) FROM stdin;`
    table: str
    settings: tuple[bytes, ...]
    rows: Iterator[bytes]  # the data lines, without the `\.` line; read it whole before the next item


def builds_on(statement: Statement) -> str | None:
    """The table (`schema.table`, as CopyBlock.table names it) whose rows an index-phase statement
    reads, so that it may run as soon as that table is loaded; None for any other statement."""
    if statement.phase != INDEXES:
        return None
    match = _BUILDS_ON.match(_body(statement.text).strip())
    return _table(match.group(1)) if match else None


def _table(name: bytes) -> str:
    return ".".join(identifier(part) for part in re.findall(_IDENT, name))


def phase_of(head: bytes) -> str:
    """Which phase runs a statement that comes after the first COPY, from its top-level text."""
    if _INDEX_PHASE.match(head):
        return INDEXES
    if _ATTACH.match(head):
        return ATTACH
    if _FOREIGN_KEY.match(head):
        return FOREIGN_KEYS
    return SERIAL


class _Input:
    """The dump as lines, or as a COPY block's raw data, from one forward read."""

    def __init__(self, dump: Readable):
        self.dump, self.buf, self.pos, self.eof = dump, bytearray(), 0, False

    def _fill(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        data = self.dump.read(CHUNK)
        if data:
            self.buf += data
        else:
            self.eof = True

    def readline(self) -> bytes:
        while (end := self.buf.find(b"\n", self.pos)) < 0 and not self.eof:
            self._fill()
        stop = end + 1 if end >= 0 else len(self.buf)
        line = bytes(self.buf[self.pos : stop])
        self.pos = stop
        return line

    def copy_rows(self, table: str) -> Iterator[bytes]:
        """The data lines up to the `\\.` line that ends the block, which is read but not yielded."""
        while True:
            if len(self.buf) - self.pos < CHUNK and not self.eof:
                self._fill()
            end = self._end_line()
            if end >= 0:
                if end > self.pos:
                    yield self._take(end)
                newline = self.buf.find(b"\n", end)
                self.pos = newline + 1 if newline >= 0 else len(self.buf)
                return
            if self.eof:
                raise VerificationError(f"the dump's rows of {table} stop without the `\\.` line that ends them")
            whole = self.buf.rfind(b"\n", self.pos) + 1  # the last line may be the start of `\.`
            if whole > self.pos:
                yield self._take(whole)
                self.pos = whole
            self._fill()

    def _take(self, end: int) -> bytes:
        """The buffer from `pos` to `end`, copied once (a bytearray slice would copy it twice)."""
        with memoryview(self.buf) as view:
            return bytes(view[self.pos : end])

    def _end_line(self) -> int:
        """Where the complete `\\.` line at or after `pos` starts, or -1."""
        start = self.pos if self.buf.startswith(b"\\.", self.pos) else self._next_end_line(self.pos)
        while start > 0 or (start == self.pos and self.buf.startswith(b"\\.", start)):
            newline = self.buf.find(b"\n", start)
            if newline < 0 and not self.eof:
                return -1
            line = self.buf[start : newline if newline >= 0 else len(self.buf)]
            if line.rstrip(b"\r") == b"\\.":
                return start
            start = self._next_end_line(start)
        return -1

    def _next_end_line(self, start: int) -> int:
        """Where the next line starting `\\.` after `start` starts, or 0 if none."""
        found = _END_LINE_START.search(self.buf, start)
        return found.start() + 1 if found else 0


class DumpSections:
    """One pass over a plain dump: `pre_data` first, then `items`."""

    def __init__(self, dump: Readable):
        self._input = _Input(dump)
        self._scanner = _Scanner()
        self._settings: dict[bytes, bytes] = {}
        self._pending = b""  # the statement being read, from the end of the one before
        self._first_copy: bytes | None = None

    @property
    def settings(self) -> tuple[bytes, ...]:
        return tuple(self._settings.values())

    @property
    def plan(self) -> DumpPlan:
        """What the statements read so far create (dump_plan.scan's answer, once all are read)."""
        return self._scanner.plan

    def pre_data(self, out: IO[bytes]) -> None:
        """Writes to `out` everything before the first COPY statement (the whole dump if none)."""
        for text, head in self._statements():
            if self._scanner.in_copy:
                self._first_copy = text
                return
            out.write(text)
            self._note_setting(text, head)
        out.write(self._pending)
        self._pending = b""

    def items(self) -> Iterator[CopyBlock | Statement]:
        """The COPY blocks and every statement after the first COPY, in the dump's order. Text
        left after the last statement (pg_dump's closing `\\unrestrict`) is a SERIAL statement."""
        if self._first_copy is not None:
            yield self._copy(self._first_copy)
        for text, head in self._statements():
            if self._scanner.in_copy:
                yield self._copy(text)
                continue
            setting = self._note_setting(text, head)
            yield Statement(text, SERIAL if setting else phase_of(head), self.settings)
        if self._pending.strip():
            yield Statement(self._pending, SERIAL, self.settings)
        self._pending = b""

    def _statements(self) -> Iterator[tuple[bytes, bytes]]:
        """Each top-level statement's full text (with the comments before it) and its head."""
        while line := self._input.readline():
            self._scanner.feed(line)
            start = 0
            for end in self._scanner.ends:
                text, self._pending = self._pending + line[start:end], b""
                start = end
                if self._scanner.in_copy and line[end:].strip():
                    raise VerificationError(f"the dump's COPY statement has more on its line: {text[-200:]!r}")
                yield text, self._scanner.last_head
            self._pending += line[start:]

    def _copy(self, text: bytes) -> CopyBlock:
        self._scanner.in_copy = False  # the rows are read here, not by the lexer
        body = _body(text).strip()
        match = _COPY.fullmatch(body)
        if not match:
            raise VerificationError(f"the dump has a COPY statement of an unexpected shape: {body[:200]!r}")
        table = _table(match.group(1))
        self._pending = b""
        return CopyBlock(body, table, self.settings, self._input.copy_rows(table))

    def _note_setting(self, text: bytes, head: bytes) -> bool:
        """Keeps a SET statement, to replay on the loading connections. The dump's first one comes
        after pg_dump's own `\\restrict` line, which its head begins with."""
        body = _body(text).strip()
        match = _SETTING.match(body)
        if match and (_SETTING.match(head) or head.startswith(b"\\restrict")):
            self._settings[(match.group(1) or b"set_config").lower()] = body + b"\n"
            return True
        return False


def _body(text: bytes) -> bytes:
    """A statement's text without the blank, comment and backslash lines before it."""
    start = 0
    while start < len(text):
        end = text.find(b"\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end].strip()
        if line and not line.startswith((b"--", b"\\")):
            break
        start = end
    return text[start:]
