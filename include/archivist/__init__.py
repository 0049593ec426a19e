"""archivist: logical backups of a PostgreSQL, Elasticsearch and S3 stack, and their restore."""

__version__ = "0.1.0"
