"""The `archivist` command: the original tool's commands, over the library the DAGs use."""

from archivist.cli import commands, drills, restores  # noqa: F401  (each registers its commands on the group)
from archivist.cli.group import cli, main

__all__ = ["cli", "main"]
