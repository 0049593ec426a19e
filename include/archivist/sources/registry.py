"""Every data source by its job name: the one place that knows which sources exist.

A source's module is imported when its job is first asked for, so a task that runs one job loads
that job's client alone, not all three (docs/PERFORMANCE.md#task-start-up-imports).
"""

from __future__ import annotations

import importlib

from archivist.errors import ConfigurationError
from archivist.sources.base import Source

# Job name -> the module and class of its source, in the order jobs run and are listed.
_WHERE = {
    "postgres": ("archivist.sources.postgres.source", "PostgresSource"),
    "elasticsearch": ("archivist.sources.elasticsearch.source", "ElasticsearchSource"),
    "storage": ("archivist.sources.storage.source", "StorageSource"),
}
NAMES = tuple(_WHERE)
_loaded: dict[str, Source] = {}


def source(job: str) -> Source:
    if job not in _WHERE:
        raise ConfigurationError(f"unknown job {job!r}: choose from {', '.join(NAMES)}")
    if job not in _loaded:
        module, name = _WHERE[job]
        _loaded[job] = getattr(importlib.import_module(module), name)()
    return _loaded[job]
