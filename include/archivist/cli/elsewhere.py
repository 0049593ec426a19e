"""The options of `restore` and `simple-restore` that restore into other targets than the ones
backed up: other databases, index names, bucket and key prefix, and other connections."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from archivist import config

CONN_OPTIONS = {
    "postgres": "--postgres-conn-id",
    "elasticsearch": "--elasticsearch-conn-id",
    "storage": "--storage-conn-id",
}


@dataclass(frozen=True)
class Elsewhere:
    """The RestoreOptions fields of a restore elsewhere, and the connection id named for each job."""

    fields: dict[str, Any] = field(default_factory=dict)
    conn_ids: dict[str, str] = field(default_factory=dict)


def elsewhere_options(func: Callable) -> Callable:
    """Adds the options; the command gets them as one `elsewhere` argument."""

    @click.option(
        "--postgres-database",
        metavar="NAME",
        help="Restore the connection's own database dump into this database (created if missing).",
    )
    @click.option(
        "--postgres-database-map",
        metavar="OLD=NEW,...",
        help="Restore each named extra database of the bundle into another database (created if missing).",
    )
    @click.option(
        "--index-prefix",
        default="",
        metavar="PREFIX",
        help="Restore each index, alias and template under PREFIX+name; templates' index patterns too.",
    )
    @click.option(
        "--index-rename",
        metavar="OLD=NEW,...",
        help="New names for indices, aliases, templates or index patterns; wins over --index-prefix.",
    )
    @click.option("--skip-aliases", is_flag=True, help="Restore no aliases (of indices or templates).")
    @click.option("--skip-templates", is_flag=True, help="Restore no index, component or legacy templates.")
    @click.option("--storage-bucket", metavar="BUCKET", help="Restore the objects into this bucket (it must exist).")
    @click.option("--storage-prefix", default="", metavar="PREFIX", help="Put PREFIX before each restored key.")
    @click.option(CONN_OPTIONS["postgres"], metavar="ID", help="Restore PostgreSQL through this Airflow connection.")
    @click.option(
        CONN_OPTIONS["elasticsearch"], metavar="ID", help="Restore Elasticsearch through this Airflow connection."
    )
    @click.option(CONN_OPTIONS["storage"], metavar="ID", help="Restore storage through this Airflow connection.")
    @functools.wraps(func)
    def wrapper(
        *args,
        postgres_database: str | None,
        postgres_database_map: str | None,
        index_prefix: str,
        index_rename: str | None,
        skip_aliases: bool,
        skip_templates: bool,
        storage_bucket: str | None,
        storage_prefix: str,
        postgres_conn_id: str | None,
        elasticsearch_conn_id: str | None,
        storage_conn_id: str | None,
        **kwargs,
    ):
        fields = {
            "postgres_database": postgres_database,
            "postgres_database_map": config.parse_rename_map(postgres_database_map, "--postgres-database-map"),
            "index_prefix": index_prefix,
            "index_rename": config.parse_rename_map(index_rename, "--index-rename"),
            "skip_aliases": skip_aliases,
            "skip_templates": skip_templates,
            "storage_bucket": storage_bucket,
            "storage_prefix": storage_prefix,
        }
        named = {"postgres": postgres_conn_id, "elasticsearch": elasticsearch_conn_id, "storage": storage_conn_id}
        conn_ids = {job: conn_id for job, conn_id in named.items() if conn_id}
        return func(*args, elsewhere=Elsewhere(fields, conn_ids), **kwargs)

    return wrapper
