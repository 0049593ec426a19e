"""What a hostile bundle could change in Elasticsearch, read so that a test can compare before
and after: every index (with its uuid, so a deleted and recreated one shows), its document count,
every alias, and every template of the three kinds."""

from __future__ import annotations

from typing import Any

import orjson


def snapshot(es) -> dict[str, Any]:
    es.indices.refresh(index="*", allow_no_indices=True)
    indices = es.cat.indices(format="json", h="index,uuid,docs.count")
    return {
        "indices": sorted((i["index"], i["uuid"], i["docs.count"]) for i in indices),
        "aliases": {index: sorted(body["aliases"]) for index, body in es.indices.get_alias().items()},
        "index_templates": _by_name(es.indices.get_index_template().get("index_templates", []), "index_template"),
        "component_templates": _by_name(
            es.cluster.get_component_template().get("component_templates", []), "component_template"
        ),
        "legacy_templates": orjson.loads(orjson.dumps(dict(es.indices.get_template()), option=orjson.OPT_SORT_KEYS)),
    }


def _by_name(templates: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {t["name"]: orjson.loads(orjson.dumps(t[key], option=orjson.OPT_SORT_KEYS)) for t in templates}
