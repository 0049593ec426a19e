"""Elasticsearch as a Source: templates, then each index's definition, documents and aliases."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from archivist import config
from archivist.config import ElasticsearchSettings as EsSettings
from archivist.errors import (
    ConfigurationError,
    JobFailedError,
    TargetNotEmptyError,
    VerificationError,
    elasticsearch_where,
)
from archivist.format import bundle, limits
from archivist.format.bundle import META, JobResult, VerifyReport
from archivist.format.bundle_index import BundleSource
from archivist.format.members import BundleOpener, members, read_json
from archivist.sources.base import DumpOptions, Patterns, RestoreOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import datastreams, names, renaming, targets
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.elasticsearch import restore as es_restore
from archivist.sources.elasticsearch.renaming import Renaming
from archivist.transport.staging import Staging

log = logging.getLogger(__name__)

Metadata = tuple[dict[str, Any], dict[str, Any], list[str]]  # templates, index definitions, indices


def bundle_indices(report: VerifyReport) -> list[str]:
    """The indices whose documents the bundle holds."""
    return sorted({i for p in report.members if (i := bundle.index_of_path(p))})


def metadata(open_bundle: BundleOpener) -> Metadata:
    """Templates, index definitions and the indices with documents, read once per pinned bundle
    (verify, the empty-mode check and the job all need them)."""
    known = getattr(open_bundle, "es_metadata", None)
    if known is None:
        known = _read_metadata(open_bundle)
        if isinstance(open_bundle, BundleSource):
            open_bundle.es_metadata = known
    return known


def _read_metadata(open_bundle: BundleOpener) -> Metadata:
    """One early-stopping pass: our bundles put these before the documents."""
    templates: dict[str, Any] = {}
    definitions: dict[str, Any] | None = None
    indices: list[str] = []
    for path, fileobj in members(open_bundle, lambda p: p.startswith("jobs.elasticsearch/") or p == META):
        name = os.path.basename(path)
        if path == META:
            counted = read_json(fileobj, limits.META_BYTES, path).get("counts", {}).get("jobs.elasticsearch", {})
            if "indices" in counted:
                indices = sorted(counted["indices"])
        elif name.startswith("templates-") and name.endswith(".json"):
            templates = read_json(fileobj, limits.ES_JSON_BYTES, path)
        elif name.startswith("indices-") and name.endswith(".json"):
            definitions = read_json(fileobj, limits.ES_JSON_BYTES, path)
        elif (index := bundle.index_of_path(path)) and index not in indices:
            indices.append(index)
        if templates and definitions is not None and indices:
            break
    return templates, definitions or {}, indices


def names_refused(problems: list[str]) -> str:
    shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    return f"the bundle's Elasticsearch names cannot be restored safely: {shown}"


def _finish_index(es: Any, index: str, definition: dict[str, Any] | None, sent: int) -> int:
    """Puts back the loaded index's own settings and aliases (a data stream has its template's),
    and counts what it holds."""
    if not datastreams.is_stream(definition):
        es_restore.finish_index(es, index, definition)
    found = es_cluster.count(es, index)
    if found != sent:
        kind = "data stream" if datastreams.is_stream(definition) else "index"
        raise JobFailedError(f"{kind} {index}: sent {sent} documents but Elasticsearch holds {found}")
    return found


def _leaving_out_streams(chosen: list[str], bundle_names: names.BundleNames, options: RestoreOptions) -> list[str]:
    """`chosen` without the data streams when the restore leaves them out, saying so."""
    if not options.skip_data_streams:
        return chosen
    left = [i for i in chosen if i in bundle_names.data_streams]
    if left:
        log.warning("data stream(s) %s of the bundle left out of this restore", ", ".join(left))
    return [i for i in chosen if i not in left]


class ElasticsearchSource:
    """The indices matching a pattern (hidden and dot-indices left out), with their settings,
    mappings and aliases, and the cluster's user-made index templates."""

    name = "elasticsearch"
    check_item = "elasticsearch"

    load_settings = staticmethod(config.load_elasticsearch)

    def check_options(self, options: RestoreOptions) -> None:
        renaming.check_options(options)

    def check(self, settings: EsSettings) -> str:
        return f"{es_cluster.check_server(settings, quick=True)} at {settings.url}"

    def dump(self, settings: EsSettings, staging: Staging, backup_id: str, options: DumpOptions) -> JobResult:
        return es_export.dump(settings, staging, backup_id, options)

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """Refuses index, alias or template names that break Elasticsearch's rules or do not agree
        with the bundle's members: such a name could reach indices the bundle does not hold."""
        templates, definitions, _ = metadata(open_bundle)
        counts = report.meta.get("counts")
        counts = counts.get(bundle.JOB_DIRS[self.name]) if isinstance(counts, dict) else None
        counted = counts.get("indices") if isinstance(counts, dict) else None
        held = [index for path in report.members if (index := bundle.index_of_path(path))]
        _, problems = names.check_bundle(held, counted, definitions, templates)
        if problems:
            raise VerificationError(names_refused(problems))

    def occupied(
        self, settings: EsSettings, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        """With `open_bundle`, the templates and aliases of the bundle's names are checked too
        (the job checks them again before it writes)."""
        es_cluster.check_login(settings, quick=True)  # a refused login names what to fix
        es = es_cluster.client(settings)
        bundle_names = names.BundleNames(indices=bundle_indices(report))
        if open_bundle is not None:
            templates, definitions, _ = metadata(open_bundle)
            bundle_names, _ = names.collect(bundle_names.indices, definitions, templates)
        wanted = [i for i in bundle_names.indices if es_restore.matches_any(i, options.indices)]
        wanted = _leaving_out_streams(wanted, bundle_names, options)
        rename = Renaming.of(options)
        if open_bundle is not None:  # before any job writes, when the renamed names cannot be used
            renaming.checked(rename, wanted, {i: d for i, d in definitions.items() if i in wanted}, templates)
            streams = {i: rename.name(i) for i in wanted if i in bundle_names.data_streams}
            datastreams.check_target(es, streams, rename.templates(templates))
        return targets.refusals(es, rename.names(bundle_names), [rename.name(i) for i in wanted], "empty")[0]

    @staticmethod
    def _chosen(open_bundle: BundleOpener, patterns: Patterns) -> tuple[names.BundleNames, list[str]]:
        """The bundle's names and the indices `patterns` choose of it (all when None)."""
        templates, definitions, indices = metadata(open_bundle)
        bundle_names, problems = names.collect(indices, definitions, templates)
        if problems:  # verify refused these already; checked again where they are used
            raise VerificationError(names_refused(problems))
        chosen = [i for i in indices if es_restore.matches_any(i, patterns)]
        if patterns and not chosen:
            raise ConfigurationError(
                f"no index in the bundle matches {', '.join(patterns)}; it holds {', '.join(indices)}"
            )
        return bundle_names, chosen

    @staticmethod
    def _survey(settings: EsSettings, bundle_names: names.BundleNames, chosen: list[str], mode: str) -> Any:
        """What the cluster holds under the bundle's names; raises when the restore must refuse."""
        es_cluster.check_login(settings)
        es = es_cluster.client(settings)
        refused, cluster = targets.refusals(es, bundle_names, chosen, mode)
        if refused:
            hint = (
                ". Restore with mode 'replace' to drop and recreate what the bundle holds, or remove them first"
                if mode == "empty"
                else ""
            )
            raise TargetNotEmptyError(
                f"restore refused, nothing was written to {elasticsearch_where(settings)}: " + "; ".join(refused) + hint
            )
        return es, cluster

    def replaced(
        self, settings: EsSettings, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        if open_bundle is None:
            return []
        bundle_names, chosen = self._chosen(open_bundle, options.indices)
        chosen = _leaving_out_streams(chosen, bundle_names, options)
        rename = Renaming.of(options)
        es, cluster = self._survey(settings, rename.names(bundle_names), [rename.name(i) for i in chosen], "replace")
        where = f"Elasticsearch at {settings.url}"
        lines = []
        for index in (rename.name(i) for i in chosen):
            if index in cluster.data_streams:
                documents = es.count(index=index)["count"]
                lines.append(f"data stream {index} ({documents:,} documents) of {where}")
            elif index in cluster.indices:
                aliases = sorted(a for a, on in cluster.aliases.items() if index in on)
                also = f", aliases {', '.join(aliases)}" if aliases else ""
                documents = es.count(index=index)["count"]
                lines.append(f"index {index} ({documents:,} documents{also}) of {where}")
        for kind, existing in sorted(cluster.templates.items()):
            lines += [f"{names.TEMPLATE_KINDS[kind]} {name} of {where}, overwritten" for name in existing]
        return lines

    def restore(
        self, open_bundle: BundleOpener, settings: EsSettings, mode: str, options: RestoreOptions, dry_run: bool
    ) -> dict[str, Any]:
        templates, definitions, _ = metadata(open_bundle)
        bundle_names, chosen = self._chosen(open_bundle, options.indices)
        chosen = _leaving_out_streams(chosen, bundle_names, options)
        rename = Renaming.of(options)
        renaming.checked(rename, chosen, {i: d for i, d in definitions.items() if i in chosen}, templates)
        into = {index: rename.name(index) for index in chosen}
        streams = {i: into[i] for i in chosen if i in bundle_names.data_streams}
        if dry_run:
            plain = [into[i] for i in chosen if i not in streams]
            log.info(
                "dry run: would restore templates, indices %s and data streams %s",
                ", ".join(plain) or "none",
                ", ".join(streams.values()) or "none",
            )
            return {"dry_run": True, "indices": list(into.values()), "data_streams": list(streams.values())}
        es, cluster = self._survey(settings, rename.names(bundle_names), list(into.values()), mode)
        datastreams.check_target(es, streams, rename.templates(templates))  # before anything is written
        raw = es_cluster.raw_client(settings)
        datastreams.delete(es, [i for i in streams.values() if i in cluster.data_streams])
        targets.delete_indices(es, [i for i in into.values() if i in cluster.indices])
        es_restore.put_templates(es, rename.templates(templates))
        renamed = {into[i]: rename.definition(definitions.get(i)) for i in chosen}
        loaded = self._load(open_bundle, es, raw, into, renamed)
        for index in chosen:  # an index with no documents has no ndjson worth streaming, but exists
            target = into[index]
            if target not in loaded and index in streams:
                datastreams.create_empty(es, target)
                loaded[target] = 0
            elif target not in loaded and index in definitions:
                es_restore.create_index(es, target, renamed[target])
                es_restore.finish_index(es, target, renamed[target])
                loaded[target] = 0
        for target in loaded:
            es_restore.close_if_backed_up_closed(es, target, renamed.get(target))
        return {"indices": loaded, "documents": sum(loaded.values())}

    @staticmethod
    def _load(
        open_bundle: BundleOpener, es: Any, raw: Any, into: dict[str, str], definitions: dict[str, Any]
    ) -> dict[str, int]:
        """Each index is finished (settings put back, flushed, counted) while the next one loads:
        the server would otherwise sit idle through every flush. `into`: the bundle's index -> the
        index it is restored into; `definitions` by the latter."""
        with ThreadPoolExecutor(1, thread_name_prefix="finish") as finisher:
            finishing: dict[str, Future] = {}
            for path, lines in members(open_bundle, lambda p: bundle.index_of_path(p) in into):
                index = into[bundle.index_of_path(path) or ""]  # never missing: the filter chose it by its index
                if datastreams.is_stream(definitions.get(index)):  # made by its template at the first document
                    sent = es_restore.load_documents(raw, index, lines, op="create")
                else:
                    es_restore.create_index(es, index, definitions.get(index))
                    sent = es_restore.load_documents(raw, index, lines)
                finishing[index] = finisher.submit(_finish_index, es, index, definitions.get(index), sent)
            return {index: finished.result() for index, finished in finishing.items()}

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], options: RestoreOptions) -> list[str]:
        restored, rename = got.get("indices", {}), Renaming.of(options)
        left_out = set(want.get(datastreams.COUNTS_KEY) or []) if options.skip_data_streams else set()
        problems = []
        for index, docs in want.get("indices", {}).items():  # meta.json counts the bundle's own names
            target = rename.name(index)
            if index in left_out:
                continue
            if es_restore.matches_any(index, options.indices) and restored.get(target) != docs:
                into = "" if target == index else f" (into {target})"
                problems.append(
                    f"elasticsearch: index {index}{into} has {restored.get(target)} documents restored, "
                    f"bundle has {docs}"
                )
        return problems
