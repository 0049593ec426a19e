"""What an Elasticsearch restore would change beyond the bundle's own names, found before it writes.

`empty` mode refuses any index, template or alias of a name the bundle holds. `replace` mode
deletes only the bundle's own indices, each by its one exact name, overwrites only the bundle's
own templates, and refuses an alias of the bundle that now points at an index the bundle does not
hold: putting it back would silently add the bundle's index to another application's alias.
Every name here has passed es_names, so none is a pattern or a list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import names as es_names
from archivist.sources.elasticsearch.names import BundleNames

log = logging.getLogger(__name__)


@dataclass
class Cluster:
    """What the cluster holds under the bundle's names."""

    indices: set[str] = field(default_factory=set)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # alias -> the indices it points at
    data_streams: set[str] = field(default_factory=set)
    templates: dict[str, list[str]] = field(default_factory=dict)  # kind -> names that exist


def _exact(names: list[str]) -> list[str]:
    """The names, checked once more where they reach a URL: none may be a pattern or a list."""
    for name in names:
        why = es_names.problem(name, "alias")  # the index rules but for capitals, which are no pattern
        if why:
            raise ValueError(f"{es_names.describe('name', name)} {why}")
    return names


def survey(es: Elasticsearch, names: list[str], templates: dict[str, list[str]]) -> Cluster:
    """The indices, aliases and data streams named exactly `names`, and which of `templates` exist."""
    found = Cluster()
    for batch in es_cluster.name_batches(sorted(set(_exact(names)))):
        answer = es.indices.resolve_index(
            name=batch, expand_wildcards="none", ignore_unavailable=True, allow_no_indices=True
        )
        found.indices |= {i["name"] for i in answer.get("indices", [])}
        found.aliases.update({a["name"]: sorted(a.get("indices", [])) for a in answer.get("aliases", [])})
        found.data_streams |= {d["name"] for d in answer.get("data_streams", [])}
    exists: dict[str, Callable[..., Any]] = {
        "component_templates": es.cluster.exists_component_template,
        "index_templates": es.indices.exists_index_template,
        "legacy_templates": es.indices.exists_template,
    }
    for kind, wanted in templates.items():
        found.templates[kind] = [name for name in _exact(wanted) if exists[kind](name=name)]
    return found


def refusals(es: Elasticsearch, names: BundleNames, chosen: list[str], mode: str) -> tuple[list[str], Cluster]:
    """What stops restoring the indices `chosen` (with their aliases) and every template of the
    bundle in `mode`, each naming what is in the way (empty when the restore may go ahead), and
    what the cluster holds."""
    aliases = {alias: indices for alias, indices in names.aliases.items() if set(indices) & set(chosen)}
    cluster = survey(es, [*chosen, *aliases], names.templates)
    found = []
    for index in chosen:
        if index in cluster.aliases:
            found.append(
                f"index {index!r} of the bundle is the name of an alias of index(es) "
                f"{', '.join(cluster.aliases[index])}"
            )
        elif index in cluster.data_streams and index not in names.data_streams:
            found.append(f"index {index!r} of the bundle is the name of a data stream")
    existing = [i for i in chosen if i in cluster.indices]
    if mode == "empty" and existing:
        found.append(f"Elasticsearch already has index(es) {', '.join(existing)}")
    streams = [i for i in chosen if i in cluster.data_streams and i in names.data_streams]
    if mode == "empty" and streams:
        found.append(f"Elasticsearch already has data stream(s) {', '.join(streams)}")
    for alias in sorted(aliases):
        if alias in cluster.indices or alias in cluster.data_streams:
            found.append(f"alias {alias!r} of the bundle is the name of an existing index or data stream")
        elif alias in cluster.aliases:
            foreign = [i for i in cluster.aliases[alias] if i not in chosen]
            if mode == "empty":
                found.append(f"Elasticsearch already has alias {alias!r} (on {', '.join(cluster.aliases[alias])})")
            elif foreign:
                found.append(
                    f"alias {alias!r} of the bundle now points at index(es) {', '.join(foreign)}, which the "
                    "bundle does not hold; remove the alias from them first if the bundle's index may have it"
                )
    if mode == "empty":
        for kind, existing_templates in cluster.templates.items():
            if existing_templates:
                found.append(
                    f"Elasticsearch already has {es_names.TEMPLATE_KINDS[kind]}(s) {', '.join(existing_templates)}"
                )
    return found, cluster


def delete_indices(es: Elasticsearch, indices: list[str]) -> None:
    """Deletes each index by its exact name: no wildcard is expanded and a missing one is an error."""
    for index in _exact(indices):
        log.info("replace mode: deleting index %s", index)
        es.indices.delete(index=index, expand_wildcards="none", allow_no_indices=False, ignore_unavailable=False)
