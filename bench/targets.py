"""The bench's own targets on the local servers, apart from everything the tests use.

Tests wipe the demo database, every non-hidden index and the application
bucket, so the bench works in the database `archivist_bench`, indices named
`bench-*` and the buckets `archivist-bench` (application objects) and
`archivist-bench-backups` (bundles); the quick mode of the test suite uses the
same names with `benchquick` in place of `bench`. The settings are the configured ones
(connections or environment variables) with only those names replaced.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from archivist import config
from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings

PREFIX = "bench"  # database archivist_bench, indices bench-*, buckets archivist-bench(-backups)
QUICK_PREFIX = "benchquick"  # the quick mode's own targets, so a test run never touches a bench run's


@dataclass(frozen=True)
class Targets:
    postgres: PostgresSettings
    elasticsearch: ElasticsearchSettings
    storage: S3Settings
    backups: S3Settings
    prefix: str = PREFIX

    @property
    def index_pattern(self) -> str:
        return f"{self.prefix}-*"

    def index(self, name: str) -> str:
        """The index a generated index name (products, logs-2026.11, ...) is loaded into."""
        return f"{self.prefix}-{name}"

    def for_job(self, job: str):
        return {"postgres": self.postgres, "elasticsearch": self.elasticsearch, "storage": self.storage}[job]

    def airflow_env(self) -> dict[str, str]:
        """The four AIRFLOW_CONN_ARCHIVIST_* variables pointing at the bench targets, for `airflow dags test`."""
        pg, es = self.postgres, self.elasticsearch
        scheme, _, hostport = es.url.partition("://")
        host, _, port = hostport.rpartition(":")

        def s3(settings: S3Settings) -> str:
            extra = {
                "region_name": settings.region_name or "us-east-1",
                "service_config": {"s3": {"bucket_name": settings.bucket}},
            }
            if settings.endpoint_url:
                extra["endpoint_url"] = settings.endpoint_url
            return json.dumps(
                {
                    "conn_type": "aws",
                    "login": settings.access_key_id,
                    "password": settings.secret_access_key,
                    "extra": extra,
                }
            )

        return {
            "AIRFLOW_CONN_ARCHIVIST_POSTGRES": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": pg.host,
                    "port": pg.port,
                    "login": pg.user,
                    "password": pg.password,
                    "schema": pg.dbname,
                }
            ),
            "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": json.dumps(
                {
                    "conn_type": "elasticsearch",
                    "host": host,
                    "port": int(port),
                    "login": es.user,
                    "password": es.password,
                    "extra": {"scheme": scheme},
                }
            ),
            "AIRFLOW_CONN_ARCHIVIST_STORAGE": s3(self.storage),
            "AIRFLOW_CONN_ARCHIVIST_BACKUPS": s3(self.backups),
        }


# The environment variables that would take precedence over the connections in a DAG run.
SHADOWING_PREFIXES = (
    "DATABASE_",
    "ELASTICSEARCH_",
    "S3_",
    "BACKUP_",
    "ARCHIVIST_POSTGRES_CONN_ID",
    "ARCHIVIST_ELASTICSEARCH_CONN_ID",
    "ARCHIVIST_STORAGE_CONN_ID",
    "ARCHIVIST_BACKUPS_CONN_ID",
)


def load(prefix: str = PREFIX) -> Targets:
    """The configured servers with the bench's database, buckets and index names."""
    return Targets(
        postgres=dataclasses.replace(config.load_postgres(), dbname=f"archivist_{prefix}", source="bench database"),
        elasticsearch=dataclasses.replace(config.load_elasticsearch(), source="bench cluster"),
        storage=dataclasses.replace(config.load_storage(), bucket=f"archivist-{prefix}", source="bench bucket"),
        backups=dataclasses.replace(
            config.load_backups(), bucket=f"archivist-{prefix}-backups", source="bench backup bucket"
        ),
        prefix=prefix,
    )
