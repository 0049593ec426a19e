"""Which indices a backup takes, and how: closed ones, and ones whose documents cannot be read back.

Elasticsearch gives documents back only from `_source`. An index whose mapping disables `_source`,
or keeps only some fields in it (includes/excludes), cannot be restored from what the server holds:
such an index fails the backup, naming it, unless the run accepts its definition alone
(DumpOptions.mappings_only) or leaves it out with the index pattern. A closed index cannot be
read at all: it fails the backup unless the run asks to open it for reading (closed_indices="open").
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from archivist.errors import ConfigurationError
from archivist.sources.base import DumpOptions

# Keys archivist adds to an index's definition in indices-<id>.json (docs/FORMAT.md#elasticsearch).
STATE = "state"  # "close" for an index restored closed, as the cluster state names it
DOCUMENTS_OMITTED = "documents_omitted"  # why the bundle holds the index's definition alone

DISABLED = "its mapping disables _source, so Elasticsearch keeps no copy of its documents to read back"
FILTERED = (
    "its mapping keeps only some fields in _source (includes/excludes), so the fields left out "
    "are in no document Elasticsearch can give back"
)


@dataclass(frozen=True)
class Selection:
    indices: list[str]
    closed: list[str] = field(default_factory=list)  # opened for reading, then closed again
    mappings_only: dict[str, str] = field(default_factory=dict)  # index: why its documents are left out


def source_problem(definition: dict[str, Any]) -> str | None:
    """Why the index's documents cannot be read back whole, or None when they can."""
    source = (definition.get("mappings") or {}).get("_source") or {}
    index_settings = (definition.get("settings") or {}).get("index") or {}
    mode = ((index_settings.get("mapping") or {}).get("source") or {}).get("mode")
    if source.get("enabled") is False or source.get("mode") == "disabled" or mode == "disabled":
        return DISABLED
    if source.get("includes") or source.get("excludes"):
        return FILTERED
    return None


def matches(index: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(index, p) for p in patterns)


def select(states: dict[str, str], definitions: dict[str, Any], options: DumpOptions, where: str) -> Selection:
    """The indices of `states` (name: "open" or "close") to back up, or ConfigurationError naming
    each index the run's options do not let it back up, with the ways out."""
    closed = [index for index, state in states.items() if state == "close"]
    if closed and options.closed_indices != "open":
        raise ConfigurationError(
            f"{len(closed)} index(es) of {where} are closed and cannot be read: {', '.join(closed)}. "
            "Back them up with the param closed_indices='open' (each is opened for reading, closed "
            "again, and restored closed), or leave them out with index_pattern (e.g. '*,-name')"
        )
    accepted = {index for index in states if matches(index, options.mappings_only)}
    problems = {index: why for index in states if (why := source_problem(definitions.get(index) or {}))}
    refused = [f"{index}: {why}" for index, why in problems.items() if index not in accepted]
    if refused:
        raise ConfigurationError(
            f"the documents of {len(refused)} index(es) of {where} cannot be restored from "
            f"Elasticsearch's own data: {'; '.join(refused)}. Leave them out with index_pattern "
            "(e.g. '*,-name'), or back up their settings and mappings alone with the param "
            "mappings_only (their names or patterns)"
        )
    mappings_only = {index: problems.get(index, "the run's mappings_only names it") for index in sorted(accepted)}
    return Selection(list(states), closed, mappings_only)
