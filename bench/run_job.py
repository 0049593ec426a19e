"""One archivist task in its own process, so its wall time and peak RSS are the task's alone.

    python -m bench.run_job TASK --key BUNDLE_KEY [--out result.json] [--results job.json ...]

TASK is one of the DAG's task names: check, postgres, elasticsearch, storage,
bundle_and_upload, rotate (backup), verify, restore_postgres,
restore_elasticsearch, restore_storage (restore); or bundle_plain and bundle_encrypted, the
bundle made from staging as bundle_and_upload makes it, without and with age encryption, staging
kept for the next (bench/encryption.py). The bench targets come in
BENCH_TARGETS (JSON, from the parent) so this process does not import Airflow:
what is measured is archivist's own work, as an Airflow worker would run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

from pyrage import x25519

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.encryption_settings import encryption_from_env
from archivist.format.bundle import BackupKey, JobResult
from archivist.runner import backup, restore
from archivist.sources import registry
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.transport.backup_bucket import BackupStore
from bench import encryption
from bench.targets import Targets

BACKUP_TASKS = ("check", "postgres", "elasticsearch", "storage", "bundle_and_upload", "rotate")
RESTORE_TASKS = ("verify", "restore_postgres", "restore_elasticsearch", "restore_storage")
TASKS = BACKUP_TASKS + RESTORE_TASKS + encryption.TASKS


def targets_to_env(t: Targets) -> dict[str, str]:
    data = {name: dataclasses.asdict(getattr(t, name)) for name in ("postgres", "elasticsearch", "storage", "backups")}
    return {"BENCH_TARGETS": json.dumps({**data, "prefix": t.prefix})}


def targets_from_env() -> Targets:
    """The parent's targets, the buckets signed by their keys rather than through their Airflow
    connection: an Airflow worker's task process has Airflow imported by its supervisor before the
    task starts, so loading Airflow here (about 1.5 s, bench/README.md) would be measured as
    archivist's work."""
    data = json.loads(os.environ["BENCH_TARGETS"])
    return Targets(
        postgres=PostgresSettings(**data["postgres"]),
        elasticsearch=ElasticsearchSettings(**data["elasticsearch"]),
        storage=S3Settings(**{**data["storage"], "conn_id": None}),
        backups=S3Settings(**{**data["backups"], "conn_id": None}),
        prefix=data["prefix"],
    )


def run(task: str, key: BackupKey, t: Targets, results: list[str], mode: str, postgres_jobs: int | None = None) -> dict:
    store = BackupStore(t.backups)
    opener = store.bundle_source(key)
    if task == "check":
        for job in registry.NAMES:
            registry.source(job).check(t.for_job(job))
        store.check()
        return {"ok": True}
    if task in ("postgres", "elasticsearch", "storage"):
        return backup.run_job(task, key, store.staging(key), t.for_job(task), DumpOptions(t.index_pattern)).as_dict()
    if task == "bundle_and_upload":
        # Encryption from the ENCRYPTION_* variables alone (unset: off), so this process does not
        # import Airflow to look up the connection; a worker has Airflow loaded already.
        return backup.upload(
            store, key, _loaded(results), "", "bench", "per-task", encryption=encryption_from_env(os.environ)
        )
    if task in encryption.TASKS:
        return _bundle(store, key, _loaded(results), task == "bundle_encrypted")
    if task == "rotate":
        return {"deleted": [b.key.name for b in store.rotate(7, protect={key.name})]}
    if task == "verify":
        return restore.summary(restore.verify(opener), key.name)
    if task.startswith("restore_"):
        job = task.removeprefix("restore_")
        options = RestoreOptions([t.index_pattern], postgres_jobs=postgres_jobs)
        return restore.restore_job(job, opener, t.for_job(job), mode, options)
    raise SystemExit(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def _loaded(results: list[str]) -> list[JobResult]:
    loaded = []
    for path in results:
        with open(path) as f:
            loaded.append(JobResult.from_dict(json.load(f)))
    return loaded


def _bundle(store: BackupStore, key: BackupKey, results: list[JobResult], encrypted: bool) -> dict:
    """The bundle as `backup.upload` makes it, to a fresh recipient when `encrypted`, staging kept."""
    recipients = [x25519.Identity.generate().to_public()] if encrypted else None
    with store.bundle_writer(key, encrypted) as out:
        backup.assemble(out, key, results, store.staging(key).open, "", "bench", "per-task", recipients)
    return {"key": key.name, "encrypted": encrypted, "size": out.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out")
    parser.add_argument("--results", nargs="*", default=[])
    parser.add_argument("--mode", default="empty")
    parser.add_argument("--postgres-jobs", type=int, default=None, help="connections of restore_postgres")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("elastic_transport", "urllib3", "botocore", "boto3", "s3transfer", "elasticsearch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run(args.task, BackupKey.parse(args.key), targets_from_env(), args.results, args.mode, args.postgres_jobs)
    text = json.dumps(result, default=str)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
