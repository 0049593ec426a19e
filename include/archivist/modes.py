"""The restore modes and their one wording, for the DAG's params, the command and the Backups page.

Plain constants, so a DAG file can name them without importing any client.
"""

from __future__ import annotations

from archivist.errors import ConfigurationError

MODES = ("empty", "replace")
# One wording of what each mode does, for the DAG's params, the command's help and the Backups page.
MODE_HELP = (
    "'empty' refuses any target that already holds data, naming it. 'replace' first drops exactly "
    "what the bundle recreates: the PostgreSQL schemas its dump creates, with everything in them, "
    "and in schema public only the tables, views, sequences, types and functions the dump creates "
    "there (public itself is kept); the Elasticsearch indices, templates and aliases the bundle "
    "holds, by exact name; and it overwrites the objects the bundle holds. Nothing else is touched, "
    "all in one transaction for PostgreSQL."
)
UNCHECKED_HELP = (
    "Restore a bundle without checksums (the original tool's format). Nothing in such a bundle "
    "can be verified: a damaged or altered one restores as it is. Off by default."
)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigurationError(f"unknown restore mode {mode!r}: choose 'empty' (the default) or 'replace'")
    return mode
