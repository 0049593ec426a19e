"""A plain dump is cut into its schema, its COPY blocks and its later statements by phase, in one read."""

from __future__ import annotations

import io

import pytest

from archivist.errors import VerificationError
from archivist.sources.postgres import dump_sections
from archivist.sources.postgres.dump_sections import CopyBlock, DumpSections, Statement

HEADER = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\nSET statement_timeout = 0;\n"
    b"SET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\n"
)
SCHEMA = (
    b"CREATE TABLE public.t (\n    id integer,\n    body text\n);\n\n"
    b"CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$\nCOPY public.t (id) FROM stdin;\n$$;\n\n"
)
DATA = (
    b"--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: -\n--\n\n"
    b"COPY public.t (id, body) FROM stdin;\n1\tline one\n2\ta \\\\. that is data\n3\t\\.x\n\\.\n\n"
    b'COPY public."Odd ""name""" (id) FROM stdin;\n\\.\n\n'
    b"SELECT pg_catalog.setval('public.s', 3, true);\n\n"
)
POST = (
    b"ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\n"
    b"CREATE INDEX t_body ON public.t USING btree (body);\n\n"
    b"COMMENT ON INDEX public.t_body IS 'CREATE INDEX x; COPY y FROM stdin;';\n\n"
    b"ALTER INDEX public.p_pkey ATTACH PARTITION public.p1_pkey;\n\n"
    b"SET default_tablespace = fast;\n\n"
    b"ALTER TABLE ONLY public.u\n    ADD CONSTRAINT u_t FOREIGN KEY (t) REFERENCES public.t(id);\n\n"
    b"\\! echo hostile\nCREATE INDEX sneaky ON public.t (id);\n\n"
    b"--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc123\n\n"
)


def _split(dump: bytes, chunk: int | None = None, monkeypatch=None) -> tuple[bytes, list]:
    if chunk and monkeypatch:
        monkeypatch.setattr(dump_sections, "CHUNK", chunk)
    sections = DumpSections(io.BytesIO(dump))
    pre = io.BytesIO()
    sections.pre_data(pre)
    items = []
    for item in sections.items():
        if isinstance(item, CopyBlock):
            items.append((item.table, b"".join(item.rows), item.statement))
        else:
            items.append((item.phase, item.text.strip().splitlines()[-1].strip(), item.settings))
    return pre.getvalue(), items


@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_schema_rows_and_phases(chunk, monkeypatch):
    pre, items = _split(HEADER + SCHEMA + DATA + POST, chunk, monkeypatch)
    assert pre == HEADER + SCHEMA.rstrip(b"\n")  # up to the end of the last statement before the first COPY
    header_settings = (
        b"SET statement_timeout = 0;\n",
        b"SET client_encoding = 'UTF8';\n",
        b"SELECT pg_catalog.set_config('search_path', '', false);\n",
    )
    rows = b"1\tline one\n2\ta \\\\. that is data\n3\t\\.x\n"
    assert items[0] == ("public.t", rows, b"COPY public.t (id, body) FROM stdin;")
    assert items[1] == ('public.Odd "name"', b"", b'COPY public."Odd ""name""" (id) FROM stdin;')
    phases = [(phase, last) for phase, last, _ in items[2:]]
    assert phases == [
        ("serial", b"SELECT pg_catalog.setval('public.s', 3, true);"),
        ("indexes", b"ADD CONSTRAINT t_pkey PRIMARY KEY (id);"),
        ("indexes", b"CREATE INDEX t_body ON public.t USING btree (body);"),
        ("serial", b"COMMENT ON INDEX public.t_body IS 'CREATE INDEX x; COPY y FROM stdin;';"),
        ("attach", b"ALTER INDEX public.p_pkey ATTACH PARTITION public.p1_pkey;"),
        ("serial", b"SET default_tablespace = fast;"),
        ("foreign_keys", b"ADD CONSTRAINT u_t FOREIGN KEY (t) REFERENCES public.t(id);"),
        # a backslash line psql would run is glued to the statement after it, which goes to psql
        ("serial", b"CREATE INDEX sneaky ON public.t (id);"),
        ("serial", b"\\unrestrict abc123"),
    ]
    assert items[3][2] == header_settings  # the index before the SET runs with the header's settings
    assert items[8][2] == (*header_settings, b"SET default_tablespace = fast;\n")


def test_a_dump_without_rows_is_all_schema():
    pre, items = _split(HEADER + SCHEMA)
    assert pre == HEADER + SCHEMA
    assert items == []


def test_rows_without_their_end_line_are_refused():
    with pytest.raises(VerificationError, match=r"rows of public.t stop without"):
        _split(HEADER + b"COPY public.t (id) FROM stdin;\n1\n2\n")


def test_a_copy_of_another_shape_is_refused():
    with pytest.raises(VerificationError, match="COPY statement of an unexpected shape"):
        _split(HEADER + b"COPY db.public.t (id) FROM stdin;\n\\.\n")


def test_phase_of():
    assert dump_sections.phase_of(b"CREATE UNIQUE INDEX i ON public.t USING btree (a)") == "indexes"
    assert dump_sections.phase_of(b'ALTER TABLE public."T" ADD CONSTRAINT c CHECK ((a > 0)) NOT VALID') == "indexes"
    assert dump_sections.phase_of(b"ALTER TABLE ONLY public.t ADD CONSTRAINT c EXCLUDE USING gist (a WITH &&)") == (
        "indexes"
    )
    assert dump_sections.phase_of(b"CREATE TRIGGER tr BEFORE INSERT ON public.t") == "serial"
    assert isinstance(Statement(b"", "serial", ()), Statement)


@pytest.mark.parametrize(
    "text, table",
    [
        (b"--\n-- Name: t_body\n--\n\nCREATE INDEX t_body ON public.t USING btree (body);\n", "public.t"),
        (b'CREATE UNIQUE INDEX "I" ON "My Schema"."Odd ""t""" USING btree (a);', 'My Schema.Odd "t"'),
        (b"CREATE INDEX p_a ON ONLY public.p USING btree (a);", "public.p"),
        (b"ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);", "public.t"),
        (b"ALTER TABLE public.T ADD CONSTRAINT c CHECK ((a > 0)) NOT VALID;", "public.t"),
    ],
)
def test_the_table_an_index_phase_statement_builds_on(text, table):
    statement = Statement(text, dump_sections.phase_of(dump_sections._body(text).strip()), ())
    assert statement.phase == "indexes"
    assert dump_sections.builds_on(statement) == table


def test_statements_of_other_phases_build_on_no_table():
    for text in (
        b"ALTER TABLE ONLY public.u ADD CONSTRAINT u_t FOREIGN KEY (t) REFERENCES public.t(id);",
        b"ALTER INDEX public.p_pkey ATTACH PARTITION public.p1_pkey;",
        b"SELECT pg_catalog.setval('public.s', 3, true);",
    ):
        statement = Statement(text, dump_sections.phase_of(text), ())
        assert dump_sections.builds_on(statement) is None
