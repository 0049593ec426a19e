"""What a plain-SQL pg_dump recreates, read from its top-level statements only.

`replace` drops exactly what the dump recreates, so the scan must not be misled by text that
only looks like a statement: a `CREATE SCHEMA billing;` inside a string literal, or a
`CREATE TABLE reporting.x` inside a function body. The scanner knows SQL's quoting (single
quotes, E'' strings, quoted identifiers, dollar quoting, line and nested block comments) and
skips COPY data, so only statements psql would run at the top level count.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from archivist.format.streams import Readable

CHUNK = 1024 * 1024
STATEMENT_HEAD = 512  # bytes of a statement's top-level text kept to classify it

# What can change the lexer's state in top-level text.
_SPECIAL = re.compile(rb"--|/\*|'|\"|\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$|;")
_IDENT_CHAR = re.compile(rb"[A-Za-z0-9_$\x80-\xff]")
_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)'
_CREATE_SCHEMA = re.compile(rb"CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?(" + _IDENT + rb")\s*;?\s*$", re.I)
_KINDS = {
    b"TABLE": "table",
    b"UNLOGGED TABLE": "table",
    b"VIEW": "view",
    b"MATERIALIZED VIEW": "materialized view",
    b"SEQUENCE": "sequence",
    b"TYPE": "type",
    b"DOMAIN": "domain",
    b"FUNCTION": "function",
    b"PROCEDURE": "procedure",
}
_CREATE_IN_SCHEMA = re.compile(
    rb"CREATE\s+(UNLOGGED\s+TABLE|TABLE|MATERIALIZED\s+VIEW|VIEW|SEQUENCE|TYPE|DOMAIN|FUNCTION|PROCEDURE)\s+"
    rb"(" + _IDENT + rb")\.(" + _IDENT + rb")",
    re.I,
)
# pg_dump creates each large object by its OID, given as a string literal (kept apart, see _Scanner).
_LO_CREATE = re.compile(rb"SELECT\s+pg_catalog\.lo_create\(\s*\)\s*;$", re.I)
_COPY_FROM_STDIN = re.compile(rb"COPY\s.*\sFROM\s+stdin\s*;?\s*$", re.I | re.S)
# pg_dump's header of the entry that follows: `-- Name: add(integer, integer); Type: FUNCTION; ...`
_TOC = re.compile(rb"^-- Name: (.*); Type: ([A-Z ]+); Schema: ")


def identifier(token: bytes) -> str:
    """An identifier as PostgreSQL stores it: quoted ones as written, others folded to lower case."""
    if token.startswith(b'"'):
        return token[1:-1].replace(b'""', b'"').decode("utf-8", "replace")
    return token.decode("utf-8", "replace").lower()


@dataclass
class DumpPlan:
    """The schemas a dump creates, and the objects it creates in `public` (which it never creates)."""

    schemas: list[str] = field(default_factory=list)
    public: dict[str, list[str]] = field(default_factory=dict)  # kind → names (functions: their signature)
    large_objects: list[int] = field(default_factory=list)  # OIDs

    @property
    def empty(self) -> bool:
        return not (self.schemas or any(self.public.values()) or self.large_objects)

    def copy(self) -> DumpPlan:
        return DumpPlan(list(self.schemas), {k: list(v) for k, v in self.public.items()}, list(self.large_objects))

    def without(self, other: DumpPlan) -> DumpPlan:
        """What this plan holds that `other` does not."""
        return DumpPlan(
            [s for s in self.schemas if s not in other.schemas],
            {
                kind: kept
                for kind, names in self.public.items()
                if (kept := [n for n in names if n not in other.public.get(kind, [])])
            },
            [oid for oid in self.large_objects if oid not in other.large_objects],
        )

    def describe(self) -> str:
        parts = [f"schema {s}" for s in self.schemas]
        parts += [f"{kind} public.{name}" for kind, names in sorted(self.public.items()) for name in names]
        if self.large_objects:
            parts.append(f"{len(self.large_objects)} large object(s)")
        return ", ".join(parts) or "nothing"


class _Scanner:
    """A small SQL lexer fed one line at a time; records each top-level statement's head."""

    def __init__(self) -> None:
        self.state = ""  # "", "'", "e'", '"', "$tag$", "/*"
        self.depth = 0
        self.head = bytearray()
        self.toc: tuple[bytes, bytes] | None = None
        self.in_copy = False
        self.literal: bytes | None = None  # the statement's first string literal, when on one line
        self.plan = DumpPlan()
        self.ends: list[int] = []  # where in the line last fed each top-level statement ended
        self.last_head = b""  # the top-level text of the statement that ended last

    def feed(self, line: bytes) -> None:
        self.ends = []
        if self.in_copy:
            self.in_copy = line.rstrip(b"\r\n") != b"\\."
            return
        pos, end = 0, len(line)
        while pos < end:
            if self.state:
                pos = self._inside(line, pos)
                continue
            match = _SPECIAL.search(line, pos)
            stop = match.start() if match else end
            self._code(line[pos:stop])
            if not match:
                return
            token = match.group()
            pos = match.end()
            if token == b"--":
                if not self.head.strip() and (toc := _TOC.match(line[match.start() :])):
                    self.toc = (toc.group(1), toc.group(2))
                return
            if token == b";":
                self._code(b";")
                self._statement_end()
                self.ends.append(pos)
            elif token == b"/*":
                self.state, self.depth = "/*", 1
            elif token == b"'":
                escaped = (
                    match.start() > 0
                    and line[match.start() - 1 : match.start()] in (b"E", b"e")
                    and not (match.start() > 1 and _IDENT_CHAR.match(line, match.start() - 2))
                )
                self.state = "e'" if escaped else "'"
            elif token == b'"':
                self.state = '"'
                self._code(b'"')
            elif token.startswith(b"$"):
                if match.start() > 0 and _IDENT_CHAR.match(line, match.start() - 1):
                    self._code(token[:1])  # `a$b$` is an identifier, not a dollar quote
                    pos = match.start() + 1
                else:
                    self.state = token.decode("latin-1")

    def _inside(self, line: bytes, pos: int) -> int:
        """Skips through the quoted text or comment the lexer is in; returns where it stopped."""
        state = self.state
        if state == "/*":
            while True:
                opened, closed = line.find(b"/*", pos), line.find(b"*/", pos)
                if closed < 0 and opened < 0:
                    return len(line)
                if opened >= 0 and (closed < 0 or opened < closed):
                    self.depth, pos = self.depth + 1, opened + 2
                    continue
                self.depth, pos = self.depth - 1, closed + 2
                if self.depth == 0:
                    self.state = ""
                    return pos
        if state.startswith("$"):
            closed = line.find(state.encode("latin-1"), pos)
            if closed < 0:
                return len(line)
            self.state = ""
            return closed + len(state)
        quote = b'"' if state == '"' else b"'"
        start = pos
        while True:
            closed = line.find(quote, pos)
            if state == "e'":
                backslash = line.find(b"\\", pos)
                if 0 <= backslash < (closed if closed >= 0 else len(line)):
                    pos = backslash + 2
                    continue
            if closed < 0:
                if state == '"':
                    self._code(line[pos:])
                return len(line)
            if line[closed + 1 : closed + 2] == quote:  # a doubled quote stays inside
                if state == '"':
                    self._code(line[pos : closed + 2])
                pos = closed + 2
                continue
            if state == '"':
                self._code(line[pos : closed + 1])
            elif self.literal is None and len(self.head) < STATEMENT_HEAD:
                self.literal = line[start:closed][:32]
            self.state = ""
            return closed + 1

    def _code(self, text: bytes) -> None:
        if len(self.head) < STATEMENT_HEAD:
            if not self.head.strip():
                text = text.lstrip()
            self.head += text[: STATEMENT_HEAD - len(self.head)]

    def _statement_end(self) -> None:
        head = self.last_head = bytes(self.head).strip()
        self.head = bytearray()
        toc, self.toc = self.toc, None
        literal, self.literal = self.literal, None
        if match := _CREATE_SCHEMA.match(head):
            if (name := identifier(match.group(1))) not in self.plan.schemas:
                self.plan.schemas.append(name)
        elif (match := _CREATE_IN_SCHEMA.match(head)) and identifier(match.group(2)) == "public":
            kind = _KINDS[re.sub(rb"\s+", b" ", match.group(1).upper())]
            name = identifier(match.group(3))
            if kind in ("function", "procedure"):
                if toc is None or toc[1].decode() != kind.upper():
                    return  # without pg_dump's header the signature is unknown: CREATE fails if it exists
                name = toc[0].decode("utf-8", "replace")
            names = self.plan.public.setdefault(kind, [])
            if name not in names:
                names.append(name)
        elif _LO_CREATE.match(head) and literal is not None and literal.isdigit() and int(literal) < 2**32:
            self.plan.large_objects.append(int(literal))
        elif _COPY_FROM_STDIN.match(head):
            self.in_copy = True


def scan(sql: Readable) -> DumpPlan:
    """The schemas and `public` objects a plain dump creates, from its top-level statements."""
    scanner = _Scanner()
    # BufferedReader reads with read() alone, which typeshed's raw type does not know
    for line in io.BufferedReader(sql, CHUNK):  # type: ignore[type-var]
        scanner.feed(line)
    return scanner.plan
