"""Data streams: found by the backup's index pattern, kept as their documents and a definition
marked as a data stream, and restored into a data stream the target makes from its composable
template (docs/FORMAT.md#54-jobselasticsearchindices-idjson-v1).

Only APIs every server with data streams has are used: `_resolve/index` lists them with their
backing indices (Elasticsearch 7.9+ and OpenSearch), and a bulk `create` into the data stream's
name makes it from the template. The `_data_stream` API lives in a module the minimal
distributions leave out, so it is asked for only where nothing else can do the work: deleting a
data stream in `replace` mode and making one that had no documents.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from archivist.errors import ConfigurationError, JobFailedError, elasticsearch_reason
from archivist.format import bundle
from archivist.sources.elasticsearch import names
from archivist.sources.elasticsearch.cluster import server_of
from archivist.sources.elasticsearch.server import OPENSEARCH, Server

log = logging.getLogger(__name__)

DATA_STREAM = names.DATA_STREAM  # the key marking a definition of indices-<id>.json as a data stream's
COUNTS_KEY = bundle.DATA_STREAMS_COUNT  # meta.json's counts.jobs.elasticsearch: the data streams' names


@dataclass(frozen=True)
class Found:
    """The data streams a backup takes: name -> backing indices (oldest first), and what it leaves out."""

    streams: dict[str, list[str]] = field(default_factory=dict)
    timestamp_fields: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # one line each, for the backup's warnings


def find(es: Elasticsearch, pattern: str) -> Found:
    """The open data streams matching `pattern` (a backup's index pattern), none on a server
    without data streams; hidden ones (name starting with `.`) and aliases of data streams are
    left out, each named in `left_out`."""
    if not server_of(es).has_data_streams:
        return Found()
    # a missing exact name answers 404, as `GET <name>` would: nothing of it to back up
    answer = es.options(ignore_status=404).indices.resolve_index(name=pattern, expand_wildcards="open")
    streams: dict[str, list[str]] = {}
    fields: dict[str, str] = {}
    left_out: list[str] = []
    for stream in answer.get("data_streams", []):
        name = stream["name"]
        if name.startswith("."):
            left_out.append(f"data stream {name}: its name starts with '.' (the cluster's own)")
            continue
        streams[name] = list(stream.get("backing_indices") or [])
        fields[name] = stream.get("timestamp_field") or "@timestamp"
    for alias in answer.get("aliases", []):
        on = sorted(set(alias.get("indices") or []) & set(streams))
        if on:
            left_out.append(f"alias {alias['name']} of data stream(s) {', '.join(on)} (aliases of data streams)")
    return Found(streams, fields, left_out)


def template_for(name: str, index_templates: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """The composable template a server would make index or data stream `name` from (the matching
    one of highest priority, as servers choose) and whether it makes a data stream; (None, False)
    when none matches. `index_templates`: entries of `GET _index_template`."""
    best: tuple[int, str | None, bool] | None = None
    for entry in index_templates:
        body = entry.get("index_template") if isinstance(entry, dict) else None
        if not isinstance(body, dict):
            continue
        patterns = body.get("index_patterns") or []
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not any(isinstance(p, str) and fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        priority = body.get("priority") or 0
        if best is None or priority > best[0]:
            best = (priority, entry.get("name"), DATA_STREAM in body)
    return (best[1], best[2]) if best else (None, False)


def definition(
    name: str, found: Found, write_index: dict[str, Any], index_templates: list[dict[str, Any]]
) -> dict[str, Any]:
    """The data stream's entry of indices-<id>.json: its write index's settings and mappings (what
    the target's data stream gets from the template, kept for readers and comparison), no
    aliases, and what marks it as a data stream."""
    template, _ = template_for(name, index_templates)
    return {
        "settings": write_index.get("settings", {}),
        "mappings": write_index.get("mappings", {}),
        "aliases": {},
        DATA_STREAM: {
            "template": template,
            "timestamp_field": found.timestamp_fields.get(name, "@timestamp"),
            "backing_indices": len(found.streams.get(name, [])),
        },
    }


def for_server(body: dict[str, Any], server: Server) -> dict[str, Any]:
    """A composable template's body with its `data_stream` in the words of `server`: Elasticsearch
    knows `hidden` and `allow_custom_routing`, OpenSearch only `timestamp_field`, and each refuses
    the other's. What is dropped is logged when it changes anything."""
    stream = body.get(DATA_STREAM)
    if not isinstance(stream, dict):
        return body
    theirs = {"timestamp_field"} if server.family == OPENSEARCH else {"hidden", "allow_custom_routing"}
    kept = {k: v for k, v in stream.items() if k in theirs}
    dropped = {k: v for k, v in stream.items() if k not in theirs and v not in (False, None, {"name": "@timestamp"})}
    if dropped:
        log.warning("data stream template: %s dropped, %s does not know it", ", ".join(sorted(dropped)), server)
    return {**body, DATA_STREAM: kept}


def is_stream(definition: Any) -> bool:
    """Whether an entry of indices-<id>.json is a data stream's."""
    return isinstance(definition, dict) and isinstance(definition.get(DATA_STREAM), dict)


# --- restore ------------------------------------------------------------------------------------


def refusals(
    server: Server,
    into: dict[str, str],
    restored_templates: dict[str, Any],
    target_templates: list[dict[str, Any]],
    without: str | None = None,
) -> list[str]:
    """Why each data stream of `into` (the bundle's name -> the name it is restored as) cannot be
    restored as a data stream on `server`, one line each (none when all can). The target makes the
    data stream from the composable template that matches the name there: one the restore puts
    (`restored_templates`, renamed, after skip_templates), else one the target has already.
    `without`: why the server takes no data stream at all (`stream_templates_refused`), or None."""
    if not into:
        return []
    if not server.has_data_streams or without:
        why = f" ({without})" if without else ""
        return [f"data stream {name}: {server} has no data streams{why}" for name in sorted(into)]
    restoring = {t.get("name"): t for t in restored_templates.get("index_templates") or []}
    candidates = list(restoring.values()) + [t for t in target_templates if t.get("name") not in restoring]
    problems = []
    for name, target in sorted(into.items()):
        template, makes_stream = template_for(target, candidates)
        if makes_stream:
            continue
        shown = name if target == name else f"{name} (restored as {target})"
        if template is None:
            why = "no composable index template of the restore or the target matches that name"
        else:
            why = f"the template that matches it, {template}, makes no data stream (it has no `data_stream`)"
        problems.append(f"data stream {shown}: {why}")
    return problems


def check_target(es: Elasticsearch, into: dict[str, str], restored_templates: dict[str, Any]) -> None:
    """Raises ConfigurationError naming each data stream of `into` the target cannot make (refusals)."""
    if not into:
        return
    server = server_of(es)
    without = stream_templates_refused(es) if server.has_data_streams else None
    target_templates = es.indices.get_index_template().get("index_templates", []) if server.has_data_streams else []
    problems = refusals(server, into, restored_templates, target_templates, without)
    if problems:
        raise ConfigurationError(refused_message(problems))


def stream_templates_refused(es: Elasticsearch) -> str | None:
    """The server's reason for refusing any data-stream template, or None when it takes them: a
    distribution can lack what parses them (Elasticsearch 7's integ-test-zip: `unknown field
    [data_stream]`). Asked of the simulate API, which writes nothing."""
    probe = for_server({"index_patterns": ["archivist-probe-*"], DATA_STREAM: {}}, server_of(es))
    try:
        es.indices.simulate_template(body=probe)
    except ApiError as exc:
        cause = (exc.body.get("error") or {}).get("caused_by") if isinstance(exc.body, dict) else None
        return str(cause.get("reason")) if isinstance(cause, dict) else elasticsearch_reason(exc)
    return None


def refused_message(problems: list[str]) -> str:
    return (
        "the bundle's data streams cannot be restored as data streams, nothing was written: "
        + "; ".join(problems)
        + ". A data stream is made by its composable template: restore without skip_templates, rename "
        "the template's index pattern with the data stream (index_prefix does both; with index_rename, "
        "rename the pattern too, e.g. 'logs-*=copy-logs-*'), or leave the data stream out with the "
        "param indices"
    )


def delete(es: Elasticsearch, names: list[str]) -> None:
    """Deletes each data stream by its exact name, with its backing indices (replace mode)."""
    for name in names:
        log.info("replace mode: deleting data stream %s", name)
        _asked(
            es,
            "DELETE",
            name,
            f"data stream {name} cannot be deleted",
            "; nothing was written. Delete it on the server, or restore the bundle under other names with index_prefix",
        )


def create_empty(es: Elasticsearch, name: str) -> None:
    """Makes a data stream that was backed up without documents (no bulk request would make it)."""
    _asked(es, "PUT", name, f"data stream {name} had no documents and cannot be made", "")


def _asked(es: Elasticsearch, method: str, name: str, what: str, fix: str) -> None:
    """`method _data_stream/<name>`; what the server refuses fails the restore naming the API, which
    the minimal distributions lack."""
    call = es.indices.delete_data_stream if method == "DELETE" else es.indices.create_data_stream
    try:
        call(name=name)
    except ApiError as exc:
        raise JobFailedError(
            f"{what} on {server_of(es)} ({method} _data_stream/{name}: {elasticsearch_reason(exc)}){fix}"
        ) from None
