"""The `archivist` command: the original tool's commands, over the library the DAGs use."""

from archivist.cli.commands import cli, main

__all__ = ["cli", "main"]
