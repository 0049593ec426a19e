"""Elasticsearch's naming rules for a bundle's index, alias and template names, and the agreement
of those names with the bundle's members. Pure: no server."""

from __future__ import annotations

import pytest

from archivist.sources.elasticsearch import names as es_names

ALLOWED = ["users", "logs-demo-2026.11", "a", "a.b", "x_y", "é日本", "a" * 255, "a+b", "a-"]
REFUSED = {
    "a,b": "','",
    "*": "'*'",
    "users*": "'*'",
    "a b": "' '",
    "a/b": "'/'",
    "a\\b": "'\\\\'",
    "a?b": "'?'",
    'a"b': "'\"'",
    "a<b": "'<'",
    "a>b": "'>'",
    "a|b": "'|'",
    "a#b": "'#'",
    "remote:idx": "':'",
    "a\nb": "'\\n'",
    "Users": "lowercase",
    "-a": "starts with '-'",
    "_all": "starts with '_'",
    "+a": "starts with '+'",
    ".": "'.' or '..'",
    "..": "'.' or '..'",
    ".security": "starts with '.'",
    "": "empty",
    "a" * 256: "longer than 255 bytes",
    "é" * 128: "longer than 255 bytes",
}


@pytest.mark.parametrize("name", ALLOWED)
def test_names_elasticsearch_allows_pass(name):
    assert es_names.problem(name) is None
    assert es_names.problem(name, "alias") is None


@pytest.mark.parametrize("name,why", REFUSED.items(), ids=[repr(n)[:20] for n in REFUSED])
def test_names_elasticsearch_refuses_are_refused_saying_why(name, why):
    assert why in es_names.problem(name)


def test_an_alias_may_hold_capitals_as_elasticsearch_allows_but_nothing_else():
    assert es_names.problem("Catalog", "alias") is None
    assert "','" in es_names.problem("A,B", "alias")
    assert es_names.problem(7) == "is not a string"


def _check(members=(), counts=None, definitions=None, templates=None):
    return es_names.check_bundle(members, counts, definitions or {}, templates or {})


def test_a_bundle_archivist_makes_passes_with_its_names():
    names, problems = _check(
        ["customers", "products"],
        {"customers": 4, "products": 2, "empty": 0},
        {
            "customers": {"aliases": {"clients": {}, "Clients-Read": {"filter": {}}}},
            "products": {"aliases": {}},
            "empty": {"aliases": {"nothing-yet": {}}},
        },
        {
            "component_templates": [{"name": "base", "component_template": {"template": {"aliases": {"b": {}}}}}],
            "index_templates": [{"name": "logs", "index_template": {"index_patterns": ["logs-*"]}}],
            "legacy_templates": {"legacy-events": {"index_patterns": ["legacy-*"], "aliases": {"legacy": {}}}},
        },
    )
    assert problems == []
    assert names.indices == ["customers", "empty", "products"]
    assert names.aliases == {"clients": ["customers"], "Clients-Read": ["customers"], "nothing-yet": ["empty"]}
    assert names.templates == {
        "component_templates": ["base"],
        "index_templates": ["logs"],
        "legacy_templates": ["legacy-events"],
    }


def test_the_original_tools_bundle_passes_with_its_legacy_templates():
    names, problems = _check(["old"], None, None, {"old-template": {"index_patterns": ["old*"]}})
    assert problems == [] and names.templates["legacy_templates"] == ["old-template"]


@pytest.mark.parametrize("where", ["members", "counts", "definitions"])
def test_a_bad_index_name_is_named_wherever_it_is(where):
    bad = "users,orders"
    bundles = {
        "members": ([bad], None, {}),
        "counts": ([], {bad: 0}, {bad: {}}),
        "definitions": ([bad], {bad: 1}, {bad: {}}),
    }
    members, counts, definitions = bundles[where]
    _, problems = _check(members, counts, definitions)
    assert any("index 'users,orders' contains ','" in p for p in problems), problems


def test_bad_template_and_alias_names_are_each_named():
    _, problems = _check(
        ["a"],
        {"a": 1},
        {"a": {"aliases": {"*": {}, "a": {}}}},
        {
            "component_templates": [{"name": "_c"}],
            "index_templates": [{"name": "x,y"}],
            "legacy_templates": {".hidden": {"aliases": {"t y": {}}}},
        },
    )
    assert set(problems) == {
        "alias '*' contains '*', which names may not hold",
        "alias 'a' of index 'a' is also the name of an index in the bundle",
        "component template '_c' starts with '_'",
        "index template 'x,y' contains ',', which names may not hold",
        "legacy template '.hidden' starts with '.' (hidden and system names are never backed up)",
        "alias 't y' contains ' ', which names may not hold",
    }


def test_names_must_agree_with_the_members():
    _, problems = _check(
        ["held", "uncounted"],
        {"held": 1, "ghost": 3, "empty": 0, "undefined": 0, "minus": -1},
        {"held": {}, "empty": {}, "only-defined": {}},
    )
    assert problems == [
        "index 'minus' has the count -1 in meta.json, not a number of documents",
        "index 'ghost' is listed in meta.json or indices-<id>.json but the bundle holds no "
        "elasticsearch-ghost-<id>.ndjson (only an index counted with 0 documents and defined may have none)",
        "index 'minus' is listed in meta.json or indices-<id>.json but the bundle holds no "
        "elasticsearch-minus-<id>.ndjson (only an index counted with 0 documents and defined may have none)",
        "index 'only-defined' is listed in meta.json or indices-<id>.json but the bundle holds no "
        "elasticsearch-only-defined-<id>.ndjson (only an index counted with 0 documents and defined may have none)",
        "index 'undefined' is listed in meta.json or indices-<id>.json but the bundle holds no "
        "elasticsearch-undefined-<id>.ndjson (only an index counted with 0 documents and defined may have none)",
        "index 'uncounted' has an ndjson member but no count in meta.json",
    ]


def test_files_of_the_wrong_shape_are_refused():
    _, problems = es_names.check_bundle(["a"], ["a"], [], "x")
    assert problems == [
        "meta.json's counts.jobs.elasticsearch.indices is not an object of index counts",
        "indices-<id>.json is not a JSON object of index definitions",
        "templates-<id>.json is not a JSON object",
        "index 'a' has an ndjson member but no count in meta.json",
    ]
    _, problems = _check(["a"], {"a": 1}, {"a": {"aliases": ["x"]}}, {"index_templates": [{"name": 3}]})
    assert problems == [
        "index 'a' has a definition that is not a JSON object of settings, mappings and aliases",
        "index template 3 (int) is not a string",
    ]


def test_a_data_streams_definition_marks_it_and_its_template_name_is_checked():
    stream = {"aliases": {}, "data_stream": {"template": "logs-tpl", "timestamp_field": "@timestamp"}}
    names, problems = _check(["logs-app", "plain"], {"logs-app": 3, "plain": 1}, {"logs-app": stream, "plain": {}})
    assert problems == [] and names.indices == ["logs-app", "plain"] and names.data_streams == ["logs-app"]
    bad = {"logs-app": {"aliases": {}, "data_stream": {"template": "a,b"}}, "other": {"data_stream": "yes"}}
    names, problems = _check(["logs-app", "other"], {"logs-app": 3, "other": 1}, bad)
    assert names.data_streams == []
    assert any("index template 'a,b'" in p for p in problems)
    assert any("'other' has a data_stream entry that is not an object" in p for p in problems)
