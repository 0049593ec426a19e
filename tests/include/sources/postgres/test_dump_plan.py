"""What `replace` drops is read from a dump's top-level statements only."""

from __future__ import annotations

import io

from archivist.sources.postgres import dump_plan

HEADER = b"--\n-- PostgreSQL database dump\n--\n\nSET standard_conforming_strings = on;\n"


def _scan(sql: bytes) -> dump_plan.DumpPlan:
    return dump_plan.scan(io.BytesIO(HEADER + sql))


def test_schemas_and_public_objects_of_a_plain_dump():
    plan = _scan(
        b'CREATE SCHEMA app;\nCREATE SCHEMA "Mixed Case";\n'
        b"CREATE TABLE app.orders (id integer);\nCREATE TABLE public.countries (\n    code text\n);\n"
        b"CREATE VIEW public.v AS\n SELECT 1;\nCREATE SEQUENCE public.s\n    START WITH 1;\n"
        b"CREATE MATERIALIZED VIEW public.mv AS\n SELECT 1\n  WITH NO DATA;\n"
    )
    assert plan.schemas == ["app", "Mixed Case"]
    assert plan.public == {"table": ["countries"], "view": ["v"], "sequence": ["s"], "materialized view": ["mv"]}


def test_a_function_body_does_not_count():
    plan = _scan(
        b"CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE plpgsql\n    AS $_$\nBEGIN\n"
        b"CREATE TABLE reporting.x (id int);\nCREATE SCHEMA hidden;\nEND\n$_$;\n"
    )
    assert plan.schemas == []
    assert plan.public == {}  # no pg_dump header: the signature is unknown, so nothing is dropped


def test_a_string_literal_does_not_count():
    plan = _scan(
        b"INSERT INTO public.notes VALUES ('a note\nCREATE SCHEMA billing;\nstill the note');\n"
        b"COMMENT ON TABLE public.notes IS E'it\\'s\nCREATE SCHEMA billing2;\n';\n"
        b'CREATE TABLE public."odd;name" (id int);\n'
    )
    assert plan.schemas == []
    assert plan.public == {"table": ["odd;name"]}


def test_comments_do_not_count():
    plan = _scan(b"/* outer /* nested */\nCREATE SCHEMA a;\n*/\n-- CREATE SCHEMA b;\nCREATE SCHEMA c;\n")
    assert plan.schemas == ["c"]


def test_copy_data_does_not_count():
    plan = _scan(b"COPY public.t (line) FROM stdin;\nCREATE SCHEMA not_sql;\n'unbalanced\n\\.\nCREATE SCHEMA real;\n")
    assert plan.schemas == ["real"]


def test_functions_are_named_by_pg_dumps_own_header():
    plan = _scan(
        b"--\n-- Name: add_em(integer, text); Type: FUNCTION; Schema: public; Owner: -\n--\n\n"
        b"CREATE FUNCTION public.add_em(a integer, b text) RETURNS integer\n    LANGUAGE sql\n"
        b"    AS $$ select 1 $$;\n"
    )
    assert plan.public == {"function": ["add_em(integer, text)"]}


def test_a_header_inside_a_string_names_nothing():
    plan = _scan(
        b"SELECT '\n-- Name: evil(integer); Type: FUNCTION; Schema: public; Owner: -\n';\n"
        b"CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $$ select 1 $$;\n"
    )
    assert plan.public == {}


def test_dollar_signs_inside_identifiers_are_not_quotes():
    plan = _scan(b"CREATE TABLE public.a$b$ (id int);\nCREATE SCHEMA after;\n")
    assert plan.public == {"table": ["a$b$"]} and plan.schemas == ["after"]


def test_describe_says_exactly_what_is_dropped():
    plan = dump_plan.DumpPlan(schemas=["app"], public={"table": ["countries"]})
    assert plan.describe() == "schema app, table public.countries"
    assert dump_plan.DumpPlan().describe() == "nothing"


def test_large_objects_are_the_oids_pg_dump_creates_at_the_top_level():
    plan = _scan(
        b"SELECT pg_catalog.lo_create('19222');\n"
        b"SELECT pg_catalog.lo_open('19222', 131072);\n"
        b"SELECT pg_catalog.lo_create('7');\n"
        b"COMMENT ON TABLE t IS 'SELECT pg_catalog.lo_create(''5'');';\n"
        b"CREATE FUNCTION public.f() RETURNS void AS $$ SELECT pg_catalog.lo_create('6'); $$ LANGUAGE sql;\n"
        b"SELECT pg_catalog.lo_create('not a number');\n"
        b"SELECT pg_catalog.lo_create('99999999999');\n"
    )
    assert plan.large_objects == [19222, 7]
    assert plan.describe().endswith("2 large object(s)")


def test_what_a_plan_adds_to_another():
    early = dump_plan.DumpPlan(schemas=["app"], public={"table": ["countries"]}, large_objects=[7])
    full = dump_plan.DumpPlan(
        schemas=["app", "late"], public={"table": ["countries", "cities"], "view": ["v"]}, large_objects=[7, 8]
    )
    late = full.without(early)
    assert (late.schemas, late.public, late.large_objects) == (["late"], {"table": ["cities"], "view": ["v"]}, [8])
    assert full.without(full).empty
    assert not early.empty and dump_plan.DumpPlan().empty


def test_a_copy_does_not_grow_with_the_plan():
    plan = dump_plan.DumpPlan(schemas=["app"], public={"table": ["countries"]})
    copy = plan.copy()
    plan.schemas.append("late")
    plan.public["table"].append("cities")
    assert (copy.schemas, copy.public) == (["app"], {"table": ["countries"]})
