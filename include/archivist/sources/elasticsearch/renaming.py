"""The names an Elasticsearch restore elsewhere writes instead of the bundle's.

One rule for every name the bundle brings (index, alias, template, a template's index pattern and
the component templates it is composed of): the name `index_rename` maps it to, else
`index_prefix` and the name, else the name itself. So a prefixed restore's templates match the
prefixed indices and none of the originals, and its aliases point at its own indices alone.
`skip_aliases` and `skip_templates` leave those out instead. The result is checked against
Elasticsearch's naming rules (names.py) like a bundle's own names, and errors name the option.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from archivist.errors import ConfigurationError
from archivist.sources.base import RestoreOptions
from archivist.sources.elasticsearch import names
from archivist.sources.elasticsearch.names import BundleNames

OPTIONS = "index_prefix / index_rename"


def check_options(options: RestoreOptions) -> None:
    """Refuses a prefix or a rename that could not make a name Elasticsearch accepts."""
    if options.index_prefix and (why := names.problem(options.index_prefix + "x", "index")):
        raise ConfigurationError(
            f"index_prefix {options.index_prefix!r} cannot begin an index name: the name it makes {why}"
        )
    seen = set()
    for old, new in options.index_rename:
        if old in seen:
            raise ConfigurationError(f"index_rename names {old!r} twice")
        seen.add(old)
        if why := names.problem(old.replace("*", "x"), "alias"):
            raise ConfigurationError(f"index_rename: the bundle's name {old!r} {why}")
        # a pattern (logs-*) may become a pattern; any other name must become a name
        if why := names.problem(new.replace("*", "x") if "*" in old else new, "alias"):
            raise ConfigurationError(f"index_rename: the new name {new!r} for {old!r} {why}")
    targets = [new for _, new in options.index_rename]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ConfigurationError(f"index_rename gives two names the same new name: {', '.join(twice)}")


@dataclass(frozen=True)
class Renaming:
    prefix: str = ""
    rename: dict[str, str] = field(default_factory=dict)
    skip_aliases: bool = False
    skip_templates: bool = False

    @classmethod
    def of(cls, options: RestoreOptions) -> Renaming:
        return cls(options.index_prefix, dict(options.index_rename), options.skip_aliases, options.skip_templates)

    @property
    def changes_anything(self) -> bool:
        return bool(self.prefix or self.rename or self.skip_aliases or self.skip_templates)

    def name(self, name: str) -> str:
        return self.rename.get(name) or self.prefix + name

    def names(self, bundle: BundleNames) -> BundleNames:
        """The names the restore writes, for the checks of what is in their way (targets.py)."""
        return BundleNames(
            indices=[self.name(i) for i in bundle.indices],
            aliases={}
            if self.skip_aliases
            else {self.name(a): [self.name(i) for i in on] for a, on in bundle.aliases.items()},
            templates={}
            if self.skip_templates
            else {k: [self.name(t) for t in ts] for k, ts in bundle.templates.items()},
            data_streams=[self.name(d) for d in bundle.data_streams],
        )

    def definition(self, definition: dict[str, Any] | None) -> dict[str, Any] | None:
        """An index's definition with its aliases renamed, or without them."""
        if not definition or not self.changes_anything:
            return definition
        return {**definition, "aliases": self._aliases(definition.get("aliases"))}

    def _aliases(self, aliases: Any) -> dict[str, Any]:
        if self.skip_aliases or not isinstance(aliases, dict):
            return {}
        return {self.name(alias): spec for alias, spec in aliases.items()}

    def templates(self, data: dict[str, Any]) -> dict[str, Any]:
        """The templates file as the restore puts it: every name, index pattern, composed_of and
        alias renamed (a legacy-only file of the original tool read as such); none when skipped."""
        if self.skip_templates:
            return {}
        if not self.changes_anything:
            return data
        if data and not set(names.TEMPLATE_KINDS) & set(data):
            data = {"legacy_templates": data}
        data = copy.deepcopy(data)
        out: dict[str, Any] = {}
        for kind in ("component_templates", "index_templates"):
            out[kind] = [
                {**entry, "name": self.name(entry["name"]), kind[:-1]: self._template(entry[kind[:-1]], nested=True)}
                for entry in data.get(kind) or []
            ]
        out["legacy_templates"] = {
            self.name(name): self._template(body, nested=False)
            for name, body in (data.get("legacy_templates") or {}).items()
        }
        return out

    def _template(self, body: dict[str, Any], nested: bool) -> dict[str, Any]:
        if "index_patterns" in body:
            patterns = body["index_patterns"]
            body["index_patterns"] = [self.name(p) for p in ([patterns] if isinstance(patterns, str) else patterns)]
        if "composed_of" in body:
            body["composed_of"] = [self.name(c) for c in body["composed_of"]]
        holder = body.get("template") if nested else body
        if isinstance(holder, dict) and "aliases" in holder:
            holder["aliases"] = self._aliases(holder["aliases"])
        return body


def checked(renaming: Renaming, indices: list[str], definitions: dict[str, Any], templates: dict[str, Any]) -> None:
    """Refuses a renamed index, alias or template name that Elasticsearch would not accept, or one
    that two of the bundle's names would share, naming the options."""
    renamed = [renaming.name(i) for i in indices]
    twice = sorted({n for n in renamed if renamed.count(n) > 1})
    problems = [f"index {n!r} would be restored from two of the bundle's indices" for n in twice]
    _, naming = names.collect(
        renamed,
        {renaming.name(i): renaming.definition(d) for i, d in definitions.items()},
        renaming.templates(templates),
    )
    problems += naming
    if problems:
        raise ConfigurationError(f"{OPTIONS} make names Elasticsearch cannot take: {'; '.join(problems[:10])}")
