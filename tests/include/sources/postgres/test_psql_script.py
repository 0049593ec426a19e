"""psql's input: the restrict line first, pg_dump's own restrict lines out, everything else in."""

from __future__ import annotations

import io

import pytest

from archivist.sources.postgres import psql_script

DUMP = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict dumpKey123\n\n-- Dumped from database version 15\n"
    b"SET x = 1;\nCREATE TABLE public.t (id int);\n\n--\n-- PostgreSQL database dump complete\n--\n\n"
    b"\\unrestrict dumpKey123\n\n"
)


def _run(dump: bytes, chunk: int = psql_script.CHUNK, **kw) -> bytes:
    class Chunked(io.BytesIO):
        def read(self, n=-1):
            return super().read(min(n, chunk) if n and n > 0 else chunk)

    return b"".join(psql_script.script(Chunked(dump), "K", **kw))


@pytest.mark.parametrize("chunk", [1, 7, 64, psql_script.CHUNK])
def test_own_restrict_lines_are_removed_and_ours_comes_first(chunk):
    out = _run(DUMP, chunk, prologue=b"PRO;\n", epilogue=b"EPI;\n")
    assert out.startswith(b"\\restrict K\nPRO;\n--\n-- PostgreSQL database dump\n")
    assert b"dumpKey123" not in out
    assert b"CREATE TABLE public.t (id int);\n" in out
    assert out.endswith(b"-- PostgreSQL database dump complete\n--\n\n\nEPI;\n")


@pytest.mark.parametrize(
    "hostile",
    [
        b"\\! touch marker\n",
        b"SELECT 1; \\! touch marker\n",
        b"\\o |touch marker\n",
        b"\\unrestrict guessed\n\\! touch marker\n",
        b"\\restrict second\n",
    ],
)
@pytest.mark.parametrize("chunk", [3, psql_script.CHUNK])
def test_any_other_backslash_line_stays_for_psql_to_refuse(hostile, chunk):
    dump = DUMP.replace(b"SET x = 1;\n", b"SET x = 1;\n" + hostile)
    assert hostile in _run(dump, chunk)


def test_an_unrestrict_that_is_not_last_stays():
    dump = DUMP + b"\\! touch marker\n"
    out = _run(dump, 5)
    assert b"\\unrestrict dumpKey123\n" in out and out.endswith(b"\\! touch marker\n")


def test_a_dump_without_restrict_lines_passes_unchanged():
    plain = b"SET x = 1;\nCOPY t FROM stdin;\n\\.\n"
    assert _run(plain, 4) == b"\\restrict K\n" + plain


def test_keys_are_letters_and_digits_and_fresh():
    a, b = psql_script.new_key(), psql_script.new_key()
    assert a != b and a.isalnum() and len(a) >= 32
