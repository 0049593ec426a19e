"""Elasticsearch's naming rules, applied to every index, alias and template name a bundle brings.

A name reaches the server's URL paths (`DELETE /<index>`, `PUT /_index_template/<name>`), where
a comma lists several names and `*` expands to every index: a name the server would refuse to
create could make it act on names the bundle does not hold. So a bundle's names must be ones
Elasticsearch itself allows (the rules of its create index API), and must agree with the
bundle's own members. Names starting with `.` (hidden and system indices, and aliases and
templates of that kind) are refused too: archivist never backs up such indices or templates,
and an alias of that kind could take over a system index's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DATA_STREAM = "data_stream"  # the key of a data stream's definition in indices-<id>.json (datastreams.py)
MAX_NAME_BYTES = 255
FORBIDDEN = '\\/*?"<>| ,#:'
TEMPLATE_KINDS = {
    "component_templates": "component template",
    "index_templates": "index template",
    "legacy_templates": "legacy template",
}


def problem(name: Any, kind: str = "index") -> str | None:
    """Why Elasticsearch (or archivist) refuses `name` as the name of an index, alias or template
    (`kind`); None when it is allowed. Only an alias may hold capitals, as Elasticsearch allows."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    bad = sorted({c for c in name if c in FORBIDDEN or c < " " or c == "\x7f"})
    if bad:
        return f"contains {' '.join(repr(c) for c in bad)}, which names may not hold"
    if name != name.lower() and kind != "alias":
        return "is not lowercase"
    if name[0] in "-_+":
        return f"starts with {name[0]!r}"
    if name in (".", ".."):
        return "is '.' or '..'"
    if name[0] == ".":
        return "starts with '.' (hidden and system names are never backed up)"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


def describe(kind: str, name: Any) -> str:
    """`index 'a,b'` as a message names it: repr, so control characters and spaces show."""
    shown = repr(name) if isinstance(name, str) else f"{name!r} ({type(name).__name__})"
    return f"{kind} {shown[:300]}"


@dataclass
class BundleNames:
    """The names a bundle's Elasticsearch artifacts hold, each already checked."""

    indices: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # alias -> the bundle's indices it names
    templates: dict[str, list[str]] = field(default_factory=dict)  # kind (TEMPLATE_KINDS) -> names
    data_streams: list[str] = field(default_factory=list)  # those of `indices` that are data streams


def _template_aliases(kind: str, entry: Any) -> Iterable[Any]:
    """The alias names a template would give the indices it creates."""
    body = entry
    if kind != "legacy_templates":  # {"name": …, "index_template": {"template": {"aliases": …}}}
        body = body.get(kind[:-1]) if isinstance(body, dict) else None
        body = body.get("template") if isinstance(body, dict) else None
    aliases = body.get("aliases") if isinstance(body, dict) else None
    return aliases if isinstance(aliases, dict) else ()


def _template_entries(templates: dict[str, Any]) -> dict[str, list[tuple[Any, Any]]]:
    """(name, template) pairs by kind. A templates file of the original tool is the plain
    `GET _template` answer: legacy templates by name."""
    if templates and not set(TEMPLATE_KINDS) & set(templates):
        templates = {"legacy_templates": templates}
    out: dict[str, list[tuple[Any, Any]]] = {}
    for kind in TEMPLATE_KINDS:
        found = templates.get(kind)
        if kind == "legacy_templates":
            out[kind] = list(found.items()) if isinstance(found, dict) else [] if found is None else [(found, None)]
        elif isinstance(found, list):
            out[kind] = [(t.get("name"), t) if isinstance(t, dict) else (t, None) for t in found]
        else:
            out[kind] = [] if found is None else [(found, None)]
    return out


def _checker(problems: list[str]):
    def checked(kind: str, names: Iterable[Any]) -> list[Any]:
        """The names that follow the rules; a problem for each other one."""
        good = []
        for name in names:
            why = problem(name, kind)
            if why:
                problems.append(f"{describe(kind, name)} {why}")
            else:
                good.append(name)
        return good

    return checked


def collect(indices: Iterable[Any], definitions: Any, templates: Any) -> tuple[BundleNames, list[str]]:
    """The bundle's index, alias and template names, and a problem naming each name that breaks
    the rules or each file that is not shaped as it must be (none when all may be used)."""
    problems: list[str] = []
    checked = _checker(problems)
    if not isinstance(definitions, dict):
        problems.append("indices-<id>.json is not a JSON object of index definitions")
        definitions = {}
    if not isinstance(templates, dict):
        problems.append("templates-<id>.json is not a JSON object")
        templates = {}
    names = BundleNames(indices=sorted(set(checked("index", sorted(set(indices) | set(definitions))))))
    for index in names.indices:
        definition = definitions.get(index, {})
        aliases = definition.get("aliases") if isinstance(definition, dict) else None
        if not isinstance(definition, dict) or not isinstance(aliases or {}, dict):
            problems.append(
                f"{describe('index', index)} has a definition that is not a JSON object of settings, "
                "mappings and aliases"
            )
            continue
        for alias in checked("alias", (aliases or {}).keys()):
            if alias in names.indices:
                problems.append(
                    f"{describe('alias', alias)} of index {index!r} is also the name of an index in the bundle"
                )
            names.aliases.setdefault(alias, []).append(index)
        stream = definition.get(DATA_STREAM)
        if stream is not None:
            template = stream.get("template") if isinstance(stream, dict) else None
            if not isinstance(stream, dict) or aliases:
                problems.append(f"{describe('index', index)} has a data_stream entry that is not an object, or aliases")
            elif template is None or checked("index template", [template]):
                names.data_streams.append(index)
    for kind, entries in _template_entries(templates).items():
        names.templates[kind] = checked(TEMPLATE_KINDS[kind], [name for name, _ in entries])
        for _, entry in entries:
            checked("alias", _template_aliases(kind, entry))
    return names, problems


def check_bundle(
    member_indices: Iterable[str], counts: Any, definitions: Any, templates: Any
) -> tuple[BundleNames, list[str]]:
    """Checks every name of a bundle's Elasticsearch job and that the names agree with its members.

    `member_indices`: the index of each `elasticsearch-<index>-<id>.ndjson` member; `counts`:
    meta.json's `counts.jobs.elasticsearch.indices` (None for a bundle without counts);
    `definitions`: indices-<id>.json; `templates`: templates-<id>.json. Returns the names and the
    problems found, each naming its name (none when the bundle may be restored)."""
    members = set(member_indices)
    if counts is not None and not isinstance(counts, dict):
        counts = {}
        problems = ["meta.json's counts.jobs.elasticsearch.indices is not an object of index counts"]
    else:
        problems = []
    names, naming = collect(members | set(counts or {}), definitions, templates)
    problems += naming
    valid = set(names.indices)
    defined = set(definitions) & valid if isinstance(definitions, dict) else set()
    counted = set(counts or {}) & valid
    for index in sorted(counted):
        n = counts[index]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            problems.append(f"{describe('index', index)} has the count {n!r} in meta.json, not a number of documents")
    # An index without its ndjson is one backed up with no documents: counted 0 and defined.
    for index in sorted((counted | defined) - members):
        if counts is None or counts.get(index) != 0 or index not in defined:
            problems.append(
                f"{describe('index', index)} is listed in meta.json or indices-<id>.json but the bundle "
                f"holds no elasticsearch-{index}-<id>.ndjson (only an index counted with 0 documents "
                "and defined may have none)"
            )
    if counts is not None:
        for index in sorted((members & valid) - counted):
            problems.append(f"{describe('index', index)} has an ndjson member but no count in meta.json")
    return names, problems
