"""The question `restore --mode replace` asks before it drops anything.

What it names is read from the targets the way the restore decides it (runner.restore.replaced):
the schemas and `public` objects of the database, the indices and templates of Elasticsearch,
the objects of the bucket. `--yes` answers for the user; with no terminal to ask on and no
`--yes`, the restore is refused before the bundle is read, with exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import click

from archivist.errors import ArchivistError, ConfigurationError

Pause = Callable[[], AbstractContextManager[None]]


class Declined(ArchivistError):
    """The user answered no: nothing was written."""

    exit_code = 1


def needed(mode: str, dry_run: bool, yes: bool) -> bool:
    """Whether to ask; refuses a replace restore that could not ask and was not told --yes."""
    if mode != "replace" or dry_run or yes:
        return False
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "restore --mode replace drops what the bundle recreates and asks first, but stdin is not a "
            "terminal to ask on: add --yes to restore without asking, or --dry-run to see what it would drop; "
            "nothing was read or written"
        )
    return True


def lines(drops: dict[str, list[str]]) -> Iterator[str]:
    for job, found in drops.items():
        for line in found:
            yield f"  {job:<14} {line}"


def asker(name: str, pause: Pause | None = None) -> Callable[[dict[str, list[str]]], None]:
    """The question for bundle `name`, given what each job would drop; `pause` takes any live
    display off the terminal while it is asked."""

    def ask(drops: dict[str, list[str]]) -> None:
        with (pause or nullcontext)():
            listed = list(lines(drops))
            if not listed:
                click.echo(f"restoring {name} in replace mode drops nothing the targets hold now", err=True)
                return
            click.echo(f"restoring {name} in replace mode first drops or overwrites:", err=True)
            for line in listed:
                click.echo(line, err=True)
            if not click.confirm("Drop these and restore?", default=False, err=True):
                raise Declined(f"restore of {name} cancelled at the question: nothing was written")

    return ask
