"""Hostile Elasticsearch names: a bundle planted in the backup bucket, restored through the real
`archivist` command against the real server. Each must fail naming what is wrong, and leave every
index (by uuid and count), alias and template exactly as it was."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.security import forge
from tests.security.es_state import snapshot

TEMPLATE_KINDS = ("component_templates", "index_templates", "legacy_templates")


def es_bundle(
    indices: dict[str, list[dict]], aliases: dict[str, dict] | None = None, templates: dict[str, Any] | None = None
):
    """A bundle of archivist's shape holding `indices` (name -> documents), with `aliases`
    (index -> its aliases) and `templates` (templates-<id>.json)."""
    templates = {"component_templates": [], "index_templates": [], "legacy_templates": {}, **(templates or {})}
    definitions = {
        name: {
            "settings": {"index": {"number_of_shards": "1", "number_of_replicas": "0"}},
            "mappings": {},
            "aliases": (aliases or {}).get(name, {}),
        }
        for name in indices
    }
    files = {
        "jobs.elasticsearch/templates-{id}.json": orjson.dumps(templates),
        "jobs.elasticsearch/indices-{id}.json": orjson.dumps(definitions),
    }
    for name, docs in indices.items():
        files[f"jobs.elasticsearch/elasticsearch-{name}-{{id}}.ndjson"] = b"".join(
            orjson.dumps({"_index": name, "_id": str(n), "_source": doc}) + b"\n" for n, doc in enumerate(docs)
        )
    counts = {
        "elasticsearch": {
            "indices": {name: len(docs) for name, docs in indices.items()},
            "documents": sum(map(len, indices.values())),
        }
    }
    return forge.forge(files, counts=counts)


TEST_INDICES = ("a", "b", "sec-app", "sec-restored", "sec-new", "sec-own", "sec-other")


def _clean(es) -> None:
    for index in TEST_INDICES:
        es.options(ignore_status=404).indices.delete(index=index)
    for name in ("sec-catch",):
        es.options(ignore_status=404).indices.delete_index_template(name=name)
        es.options(ignore_status=404).cluster.delete_component_template(name=name)
        es.options(ignore_status=404).indices.delete_template(name=name)


@pytest.fixture
def es(es_client):
    _clean(es_client)
    yield es_client
    _clean(es_client)


def _index(es, name: str, docs: int, aliases: dict | None = None) -> None:
    es.indices.create(index=name, body={"aliases": aliases or {}})
    for n in range(docs):
        es.index(index=name, id=str(n), document={"n": n, "of": name})
    es.indices.refresh(index=name)


def restore(store, key, data, *args: str):
    store.planted.append(forge.plant(store, key, data))
    return forge.archivist("restore", key.name, "--jobs", "elasticsearch", "--yes", *args)


@pytest.mark.parametrize("name", ["a,b", "*"])
def test_an_index_name_that_lists_or_matches_others_deletes_nothing(store, es, name):
    _index(es, "a", 2)
    _index(es, "b", 3)
    before = snapshot(es)
    key, data = es_bundle({name: [{"n": 1}]})
    run = restore(store, key, data, "--mode", "replace")
    assert run.returncode == 4, run.stderr
    assert f"index {name!r} contains {name[1] if ',' in name else name!r}" in run.stderr
    assert snapshot(es) == before
    verify = forge.archivist("verify", key.name)  # refused by verify itself, before any target is reached
    assert verify.returncode == 4 and f"index {name!r}" in verify.stderr


@pytest.mark.parametrize("kind", TEMPLATE_KINDS)
def test_a_catch_all_template_does_not_overwrite_one_of_its_name_in_empty_mode(store, es, kind):
    existing = {"index_patterns": ["sec-catch-*"], "template": {"settings": {"number_of_shards": 1}}}
    catch_all = {"index_patterns": ["*"], "priority": 1000, "template": {"settings": {"number_of_shards": 3}}}
    if kind == "component_templates":
        es.cluster.put_component_template(name="sec-catch", body={"template": existing["template"]})
        bundled = [{"name": "sec-catch", "component_template": {"template": catch_all["template"]}}]
    elif kind == "index_templates":
        es.indices.put_index_template(name="sec-catch", body=existing)
        bundled = [{"name": "sec-catch", "index_template": catch_all}]
    else:
        es.indices.put_template(name="sec-catch", body={"index_patterns": ["sec-catch-*"], "order": 0})
        bundled = {"sec-catch": {"index_patterns": ["*"], "order": 1000, "settings": {"number_of_shards": 3}}}
    before = snapshot(es)
    key, data = es_bundle({"sec-new": [{"n": 1}]}, templates={kind: bundled})
    run = restore(store, key, data, "--mode", "empty")
    assert run.returncode == 6, run.stderr
    kind_name = {
        "component_templates": "component template",
        "index_templates": "index template",
        "legacy_templates": "legacy template",
    }[kind]
    assert f"Elasticsearch already has {kind_name}(s) sec-catch" in run.stderr
    assert snapshot(es) == before


@pytest.mark.parametrize("mode", ["replace", "empty"])
def test_an_alias_of_another_index_is_not_taken_over(store, es, mode):
    _index(es, "sec-app", 2, aliases={"sec-users": {"is_write_index": True}})
    before = snapshot(es)
    key, data = es_bundle({"sec-restored": [{"n": 1}]}, aliases={"sec-restored": {"sec-users": {}}})
    run = restore(store, key, data, "--mode", mode)
    assert run.returncode == 6, run.stderr
    if mode == "replace":
        assert (
            "alias 'sec-users' of the bundle now points at index(es) sec-app, which the bundle does not hold"
            in run.stderr
        )
    else:
        assert "Elasticsearch already has alias 'sec-users' (on sec-app)" in run.stderr
    assert snapshot(es) == before


def test_an_index_named_like_an_existing_alias_is_refused(store, es):
    _index(es, "sec-app", 2, aliases={"sec-restored": {}})
    before = snapshot(es)
    key, data = es_bundle({"sec-restored": [{"n": 1}]})
    run = restore(store, key, data, "--mode", "replace")
    assert run.returncode == 6, run.stderr
    assert "index 'sec-restored' of the bundle is the name of an alias of index(es) sec-app" in run.stderr
    assert snapshot(es) == before


def test_replace_mode_replaces_exactly_the_bundles_own_index_and_alias(store, es):
    _index(es, "sec-own", 5, aliases={"sec-own-read": {}})
    _index(es, "sec-other", 2)
    other = [i for i in snapshot(es)["indices"] if i[0] == "sec-other"]
    key, data = es_bundle({"sec-own": [{"n": 1}, {"n": 2}]}, aliases={"sec-own": {"sec-own-read": {}}})
    run = restore(store, key, data, "--mode", "replace")
    assert run.returncode == 0, run.stderr
    after = snapshot(es)
    assert [i for i in after["indices"] if i[0] == "sec-other"] == other
    assert [i[2] for i in after["indices"] if i[0] == "sec-own"] == ["2"]
    assert after["aliases"]["sec-own"] == ["sec-own-read"]
