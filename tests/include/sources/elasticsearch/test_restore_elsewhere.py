"""An Elasticsearch restore under other names than the ones backed up, against the real server:
indices with a prefix or a rename map, their aliases and the cluster's templates (component,
composable, legacy) renamed the same way or left out, and the originals, fingerprinted before and
after, never touched."""

from __future__ import annotations

import secrets

import orjson
import pytest

from archivist.errors import ConfigurationError, JobFailedError, TargetNotEmptyError
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, restore
from archivist.sources.base import RestoreOptions
from archivist.sources.elasticsearch import export as es_export
from demo import seed
from demo.fingerprint import es_snapshot

TEMPLATES = (seed.COMPONENT_TEMPLATE, seed.INDEX_TEMPLATE, seed.LEGACY_TEMPLATE)
INDICES = ("customers", seed.LEGACY_INDEX, seed.LOGS_INDEX, "products")


@pytest.fixture
def bundle(seeded, es_settings, tmp_path):
    """A local bundle of the seeded Elasticsearch job: (its path, its key)."""
    made = backup.run_simple_backup(str(tmp_path / "bundle.tgz"), ("elasticsearch",))
    return made["path"], made["key"]


@pytest.fixture
def made_names(es_client):
    """The prefixes and names this test restores into; their indices and templates deleted after."""
    prefixes = [f"t{secrets.token_hex(3)}-" for _ in range(3)]
    extra: list[str] = []
    yield prefixes, extra
    quiet = es_client.options(ignore_status=404)
    for name in [*prefixes, *extra]:
        quiet.indices.delete(index=f"{name}*", expand_wildcards="all")
    for name in [p + t for p in prefixes for t in TEMPLATES] + extra:
        quiet.indices.delete_index_template(name=name)
        quiet.indices.delete_template(name=name)
    for name in [p + t for p in prefixes for t in TEMPLATES] + extra:
        quiet.cluster.delete_component_template(name=name)


def _originals(es_settings) -> dict:
    """The fingerprint of the seeded indices and templates alone."""
    snapshot = es_snapshot(es_settings)
    return {
        "indices": {i: v for i, v in snapshot["indices"].items() if i in INDICES},
        "templates": _templates(snapshot["templates"], TEMPLATES),
    }


def _templates(data: dict, wanted) -> dict:
    return {
        "component": {t["name"]: t["component_template"] for t in data["component_templates"] if t["name"] in wanted},
        "composable": {t["name"]: t["index_template"] for t in data["index_templates"] if t["name"] in wanted},
        "legacy": {n: b for n, b in data["legacy_templates"].items() if n in wanted},
    }


def _docs(lines: list[bytes]) -> list[dict]:
    """Documents without the index name their lines carry."""
    return sorted((d for d in map(orjson.loads, lines) if d.pop("_index")), key=lambda d: d["_id"])


def _restore(path: str, key: str, es_settings, mode: str = "empty", dry_run: bool = False, **options):
    return restore.run_restore(
        BundleSource.file(path), key, ("elasticsearch",), mode, RestoreOptions(**options), dry_run,
        settings={"elasticsearch": es_settings},
    )  # fmt: skip


def test_a_prefixed_restore_renames_everything_and_leaves_the_originals(bundle, made_names, es_settings, es_client):
    (prefix, _, _), _ = made_names
    path, key = bundle
    before = _originals(es_settings)

    dry = _restore(path, key, es_settings, index_prefix=prefix, dry_run=True)
    assert sorted(dry["restored"]["elasticsearch"]["indices"]) == sorted(prefix + i for i in INDICES)
    assert not es_client.indices.exists(index=f"{prefix}*", allow_no_indices=False), "a dry run wrote"

    result = _restore(path, key, es_settings, index_prefix=prefix)
    assert result["problems"] == []
    assert result["restored"]["elasticsearch"]["indices"] == {
        prefix + i: n for i, n in result["counts"]["jobs.elasticsearch"]["indices"].items()
    }
    after = es_snapshot(es_settings)
    for index in INDICES:
        original, copy = before["indices"][index], after["indices"][prefix + index]
        assert _docs(copy["docs"]) == _docs(original["docs"]), f"documents of {index} differ"
        assert copy["count"] == original["count"] and copy["shards"] == original["shards"]
        assert copy["mappings"] == original["mappings"], f"mappings of {index} differ"
        assert copy["aliases"] == {prefix + a: spec for a, spec in original["aliases"].items()}
    assert after["indices"][prefix + "products"]["aliases"][prefix + "catalog"]["filter"]
    assert after["indices"][prefix + seed.LOGS_INDEX]["aliases"].keys() == {
        prefix + "logs-demo",  # from the renamed composable template
        prefix + "logs-demo-write",
    }

    renamed = _templates(after["templates"], [prefix + t for t in TEMPLATES])
    component = before["templates"]["component"][seed.COMPONENT_TEMPLATE]
    assert renamed["component"] == {prefix + seed.COMPONENT_TEMPLATE: component}
    composable = renamed["composable"][prefix + seed.INDEX_TEMPLATE]
    assert composable["index_patterns"] == [prefix + "logs-demo-*"]
    assert composable["composed_of"] == [prefix + seed.COMPONENT_TEMPLATE]
    assert composable["template"]["aliases"] == {prefix + "logs-demo": {}}
    original = before["templates"]["composable"][seed.INDEX_TEMPLATE]
    assert {k: v for k, v in composable.items() if k not in ("index_patterns", "composed_of", "template")} == {
        k: v for k, v in original.items() if k not in ("index_patterns", "composed_of", "template")
    }
    legacy = renamed["legacy"][prefix + seed.LEGACY_TEMPLATE]
    assert legacy["index_patterns"] == [prefix + "legacy-*"] and legacy["aliases"] == {prefix + "legacy": {}}
    assert legacy["mappings"] == before["templates"]["legacy"][seed.LEGACY_TEMPLATE]["mappings"]
    assert _originals(es_settings) == before, "an original index or template was touched"

    # the prefixed names are taken now: empty mode refuses them; replace mode recreates them alone
    with pytest.raises(TargetNotEmptyError, match=f"already has index\\(es\\) {prefix}"):
        _restore(path, key, es_settings, index_prefix=prefix)
    es_client.delete(index=prefix + "products", id="SKU-00001", refresh=True)
    drops: dict = {}
    replaced = restore.run_restore(
        BundleSource.file(path), key, ("elasticsearch",), "replace", RestoreOptions(index_prefix=prefix),
        settings={"elasticsearch": es_settings}, confirm=drops.update,
    )  # fmt: skip
    assert replaced["problems"] == []
    assert drops["elasticsearch"] and all(prefix in line for line in drops["elasticsearch"]), drops
    assert es_client.count(index=prefix + "products")["count"] == before["indices"]["products"]["count"]
    assert _originals(es_settings) == before, "an original index or template was touched"


def test_a_rename_map_wins_over_the_prefix_and_aliases_and_templates_can_be_left_out(
    bundle, made_names, es_settings, es_client
):
    (_, prefix, bare), extra = made_names
    shop = f"{prefix}shop"
    extra += [shop]
    path, key = bundle
    before = _originals(es_settings)

    result = _restore(
        path, key, es_settings, indices=["products", "customers"], index_prefix=prefix,
        index_rename=(("products", shop), ("catalog", f"{shop}-catalog")),
    )  # fmt: skip
    assert result["problems"] == []
    got = result["restored"]["elasticsearch"]["indices"]
    assert got == {shop: 200, f"{prefix}customers": before["indices"]["customers"]["count"]}
    aliases = es_client.indices.get_alias(index=shop)[shop]["aliases"]
    assert aliases.keys() == {f"{shop}-catalog", f"{prefix}products-write"}
    assert _docs(es_snapshot(es_settings)["indices"][shop]["docs"]) == _docs(before["indices"]["products"]["docs"])
    # a count compared with meta.json goes by the bundle's name and names the target
    wrong = {"indices": {**got, shop: 199}}
    assert restore.compare(result["counts"], {"elasticsearch": wrong}, RestoreOptions(
        indices=["products"], index_prefix=prefix, index_rename=(("products", shop),)
    )) == [f"elasticsearch: index products (into {shop}) has 199 documents restored, bundle has 200"]  # fmt: skip

    result = _restore(path, key, es_settings, index_prefix=bare, skip_aliases=True, skip_templates=True)
    assert result["problems"] == []
    restored = [bare + i for i in INDICES]
    assert all(not body["aliases"] for body in es_client.indices.get(index=restored).values())
    templates = _templates(es_export.templates(es_client), [bare + t for t in TEMPLATES])
    assert templates == {"component": {}, "composable": {}, "legacy": {}}
    assert _originals(es_settings) == before, "an original index or template was touched"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RestoreOptions(index_prefix="Copy-"), "index_prefix 'Copy-' cannot begin an index name: .* not lowercase"),
        (RestoreOptions(index_prefix="a,b"), "index_prefix 'a,b' .* contains ','"),
        (RestoreOptions(index_prefix="_x"), "starts with '_'"),
        (RestoreOptions(index_rename=(("a", "b*"),)), "the new name 'b\\*' for 'a' contains '\\*'"),
        (RestoreOptions(index_rename=(("a", "c"), ("b", "c"))), "two names the same new name: c"),
    ],
)
def test_a_prefix_or_rename_elasticsearch_refuses_is_refused_before_the_bundle_is_read(options, message):
    with pytest.raises(ConfigurationError, match=message):
        restore.run_restore(lambda: pytest.fail("the bundle was read"), "k", ("elasticsearch",), options=options)


def test_a_rename_to_a_name_elasticsearch_refuses_for_an_index_fails_before_writing(bundle, es_settings, es_client):
    """Empty mode finds it with the other refusals, before any job starts; replace mode as the job starts."""
    path, key = bundle
    refused = "index_prefix / index_rename make names Elasticsearch cannot take: index 'Shop' is not lowercase"
    with pytest.raises(ConfigurationError, match=refused):
        _restore(path, key, es_settings, "empty", index_prefix="never-", index_rename=(("products", "Shop"),))
    with pytest.raises(JobFailedError, match=refused):
        _restore(path, key, es_settings, "replace", index_prefix="never-", index_rename=(("products", "Shop"),))
    assert not es_client.indices.exists(index="never-*", allow_no_indices=False)
    assert not es_client.indices.exists_index_template(name="never-*")
