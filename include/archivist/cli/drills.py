"""The drill command: a bundle restored into scratch targets and compared, the verdict kept."""

from __future__ import annotations

import click

from archivist.cli.group import backup_store, cli, output_options, showing
from archivist.cli.output import Output
from archivist.drill import record, run
from archivist.errors import JobFailedError
from archivist.transport.operation_lock import COMMAND_LEASE


@cli.command()
@click.argument("key", default="latest", metavar="[KEY]")
@click.option(
    "--storage-bucket",
    metavar="BUCKET",
    help="The bucket the scratch objects go to, under a scratch prefix (default: the storage bucket).",
)
@output_options
def drill(key: str, storage_bucket: str | None, out: Output) -> None:
    """Restores a bundle (default: the latest) into scratch targets, compares, removes them."""
    store = backup_store()
    with showing(out), store.lock().held("restore", lease=COMMAND_LEASE):
        verdict = run.run_drill(store, key, storage_bucket)
        record.write(store, verdict)
        record.prune(store, {b.key.name for b in store.list_bundles()})
    doc = verdict.as_dict()
    out.say(f"{verdict.key}: {verdict.summary()}")
    for line in (*verdict.differences, *verdict.notes):
        out.say(f"  {line}")
    if not verdict.matched:
        raise out.failed(doc, JobFailedError(f"drill of {verdict.key} {verdict.result}: {verdict.summary()}"))
    out.document(doc)
