"""What archivist feeds psql: a dump from a bundle, run in psql's restricted mode.

A bundle is untrusted, and psql runs backslash commands (`\\!`, `\\o |cmd`, backtick `\\set`) on
the restoring host. So the script starts with `\\restrict <key>`, with a fresh random key the dump
cannot know: from there on psql refuses every backslash command but `\\unrestrict <key>`, which
archivist never sends, and a refused command stops the restore (ON_ERROR_STOP) so the single
transaction rolls back. pg_dump (since 17.6, 16.10, 15.14) writes its own `\\restrict` line in
the dump's header and `\\unrestrict` as its last line; those two are removed, anything else stays
in and fails.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

from archivist.format.streams import Readable

CHUNK = 1024 * 1024
_OWN_RESTRICT = re.compile(rb"\\restrict [A-Za-z0-9]+[ \t\r]*\n")
_OWN_UNRESTRICT = re.compile(rb"\\unrestrict [A-Za-z0-9]+\s*")
_UNRESTRICT = b"\\unrestrict "
_LONGEST_OWN_LINE = 256
_WHITESPACE = b" \t\r\n"


def new_key() -> str:
    """A restrict key: letters and digits only, as psql requires, and unguessable."""
    return secrets.token_hex(32)


def script(dump: Readable, key: str, prologue: bytes = b"", epilogue: bytes = b"") -> Iterator[bytes]:
    """psql's input: `\\restrict key`, `prologue`, the dump without pg_dump's own restrict lines,
    then `epilogue`, in chunks of about CHUNK bytes."""
    yield b"\\restrict " + key.encode("ascii") + b"\n"
    if prologue:
        yield prologue
    held = b""
    for data in _without_own_restrict(dump):
        if held:
            data, held = held + data, b""
        cut = _final_unrestrict_at(data)
        if cut < len(data):
            data, held = data[:cut], data[cut:]
        if data:
            yield data
    if held and not _OWN_UNRESTRICT.fullmatch(held):
        yield held
    if epilogue:
        yield b"\n" + epilogue


def _without_own_restrict(dump: Readable) -> Iterator[bytes]:
    """The dump's chunks, minus a `\\restrict` line that comes before any statement."""
    head = b""
    while True:
        chunk = dump.read(CHUNK)
        head += chunk
        first = _first_statement_line(head)
        if first is not None or not chunk:
            break
    if first is not None and (own := _OWN_RESTRICT.match(head, first)):
        head = head[:first] + head[own.end() :]
    if head:
        yield head
    while chunk := dump.read(CHUNK):
        yield chunk


def _first_statement_line(head: bytes) -> int | None:
    """Where the first complete line that is neither blank nor a comment starts, or None."""
    pos = 0
    while (end := head.find(b"\n", pos)) >= 0:
        line = head[pos:end].strip()
        if line and not line.startswith(b"--"):
            return pos
        pos = end + 1
    return None


def _final_unrestrict_at(data: bytes) -> int:
    """Where a last line that may be pg_dump's `\\unrestrict` starts, to hold it back until the end
    is known; len(data) when the data's last line cannot be one."""
    last = len(data) - 1
    while last >= 0 and data[last] in _WHITESPACE:
        last -= 1
    start = data.rfind(b"\n", 0, last + 1) + 1
    length = last + 1 - start
    if length > _LONGEST_OWN_LINE:
        return len(data)
    line = data[start : last + 1]
    if line.startswith(_UNRESTRICT) or _UNRESTRICT.startswith(line):
        return start
    return len(data)
