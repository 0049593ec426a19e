"""Every data source by its job name: the one place that knows which sources exist."""

from __future__ import annotations

from archivist.errors import ConfigurationError
from archivist.sources.base import Source
from archivist.sources.elasticsearch.source import ElasticsearchSource
from archivist.sources.postgres.source import PostgresSource
from archivist.sources.storage.source import StorageSource

SOURCES: dict[str, Source] = {s.name: s for s in (PostgresSource(), ElasticsearchSource(), StorageSource())}


def source(job: str) -> Source:
    try:
        return SOURCES[job]
    except KeyError:
        raise ConfigurationError(f"unknown job {job!r}: choose from {', '.join(SOURCES)}") from None
