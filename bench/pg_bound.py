"""PostgreSQL restore at one scale: archivist against `gunzip | psql` and against the server's own bound.

    python -m bench.pg_bound --scale 1 [--rounds 2] [--jobs N]

Loads the scale's PostgreSQL rows (bench.load), backs the database up once with archivist (the
postgres job alone, a bundle in the bench backup bucket) and once with `pg_dump | gzip`, then
runs rounds, each method into a freshly emptied database, in turn:

- archivist: `bench.run_job restore_postgres` in its own process (peak RSS measured), which
  restores over `--jobs` connections (default: archivist's own default);
- baseline: `gunzip -c dump.sql.gz | psql --single-transaction`;
- bound: the server alone. The dump is cut beforehand (untimed) into its schema, one file per
  table's rows and its later statements; the timed part runs the schema through psql, has the
  server read each table's file itself (`COPY … FROM '<file>'`) over the same number of
  sessions at once, builds each table's indexes and constraints as soon as it is loaded and
  the rest after, then the foreign keys in parallel, and runs the rest, scheduled as archivist
  schedules them. No client reads, decompresses or sends a row, so on this
  machine no client can restore faster.

The one-minute load average is recorded before each step (the machine may be shared). Results
go to bench/results/pg-restore-scale-<s>-<time>.json and are shown by bench.report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.base import DumpOptions
from archivist.sources.postgres import job as postgres
from archivist.sources.postgres import parallel_restore
from archivist.sources.postgres.dump_sections import ATTACH, FOREIGN_KEYS, INDEXES, SERIAL, CopyBlock, DumpSections
from archivist.sources.postgres.spool import SpoolBudget
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from bench import baselines, generate, load, measure, report, run_job, targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(f"[pg_bound {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Cut:
    """The dump cut for the bound: schema file, one rows file per table, later statements by phase."""

    def __init__(self, dump: Path, directory: Path):
        self.schema = directory / "schema.sql"
        self.rest = directory / "rest.sql"
        self.copies: list[tuple[bytes, Path, tuple[bytes, ...], str]] = []
        self.later: dict[str, list] = {INDEXES: [], ATTACH: [], FOREIGN_KEYS: []}
        with gzip.open(dump, "rb") as sql, open(self.schema, "wb") as schema, open(self.rest, "wb") as rest:
            sections = DumpSections(sql)  # type: ignore[arg-type]
            sections.pre_data(schema)
            wrote_settings = False
            for item in sections.items():
                if isinstance(item, CopyBlock):
                    rows = directory / f"{len(self.copies)}.copy"
                    with open(rows, "wb") as out:
                        for data in item.rows:
                            out.write(data)
                    os.chmod(rows, 0o644)
                    statement = item.statement.removesuffix(b";").replace(b"FROM stdin", b"FROM '" + bytes(rows) + b"'")
                    self.copies.append((statement, rows, item.settings, item.table))
                elif item.phase != SERIAL:
                    self.later[item.phase].append(item)
                else:
                    if not wrote_settings:
                        rest.write(b"".join(item.settings))
                        wrote_settings = True
                    rest.write(item.text)

    def restore(self, settings, jobs: int) -> dict[str, float]:
        """The timed part: what the server does of a parallel restore, with no client in the way."""
        phases, started = {}, time.monotonic()

        def phase(name: str) -> None:
            nonlocal started
            now = time.monotonic()
            phases[name] = round(now - started, 3)
            started = now

        with open(self.schema, "rb") as schema:
            postgres._run_psql(settings, schema, b"", b"", _quiet())
        phase("schema")
        connections = parallel_restore._Connections(settings, jobs)
        try:
            with ThreadPoolExecutor(jobs) as pool:

                def copy(statement: bytes, settings_: tuple[bytes, ...]) -> None:
                    with connections.take(settings_) as conn:
                        conn.execute(statement)

                # each table's indexes as soon as it is loaded, scheduled as archivist's restore does
                loads = {pool.submit(copy, s, st): table for s, _, st, table in self.copies}
                early: list = []
                unloaded = parallel_restore._after_each_load(
                    self.later[INDEXES], loads, pool, connections, SpoolBudget(0), early
                )
                for future in [*loads, *early]:
                    future.result()
                phase("rows, and the indexes of tables loaded meanwhile")
                run_all = parallel_restore._execute
                for future in [pool.submit(run_all, connections, s) for s in unloaded]:
                    future.result()
                for statement in self.later[ATTACH]:
                    parallel_restore._execute(connections, statement)
                phase("indexes and constraints")
                for future in [pool.submit(run_all, connections, s) for s in self.later[FOREIGN_KEYS]]:
                    future.result()
                phase("foreign keys")
                with open(self.rest, "rb") as rest:
                    postgres._run_psql(settings, rest, b"", b"", _quiet())
                phase("the rest of the dump")
                with postgres.connect(settings) as conn:
                    tables = [row[0] for row in conn.execute(parallel_restore.TABLES)]
                for future in [pool.submit(copy, f"ANALYZE {t}".encode(), ()) for t in tables]:
                    future.result()
                phase("analyze")
        finally:
            connections.close()
        return phases


def _quiet():
    from archivist.progress import Progress

    return Progress("bound", every=3600)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None, help="connections (default: archivist's default)")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    t = targets.load(targets.PREFIX)
    pg = t.postgres
    jobs = args.jobs or parallel_restore.default_jobs(pg)
    work = Path(tempfile.mkdtemp(prefix="archivist-pg-bound-", dir=ROOT / ".local"))
    os.chmod(work, 0o755)  # the server reads the bound's rows files itself
    (work / "pg").mkdir()
    base_env = pg.libpq_env()
    env = run_job.targets_to_env(t)
    try:
        out = generate.data_dir(args.scale) / "postgres"
        if generate.marker(out) is None:
            log(f"generating PostgreSQL data at scale {args.scale:g}")
            generate.generate_postgres(args.scale, out)
        load.ensure_postgres(t, args.scale)
        want = load.expected(t, args.scale, "postgres")
        store = BackupStore(t.backups)
        s3 = s3io.client(t.backups)
        load.ensure_bucket(s3, t.backups.bucket)
        key = BackupKey.new()
        log("archivist backup of the postgres job")
        result = backup.run_job("postgres", key, store.staging(key), pg, DumpOptions())
        backup.upload(store, key, [result], "", "bench", "pg_bound")
        log("pg_dump | gzip")
        for step in baselines.pg_backup(work):
            measure.run(step.label, baselines.bash(step.command), env=base_env, cwd=str(work), log=log).check()
        cut = Cut(work / "pg" / "dump.sql.gz", work)
        rounds: list[dict] = []
        for number in range(1, args.rounds + 1):
            done: dict = {}
            load.wipe(t, "postgres")
            done["archivist_load"] = os.getloadavg()[0]
            m = measure.run(
                "archivist restore_postgres",
                [sys.executable, "-m", "bench.run_job", "restore_postgres", "--key", key.name,
                 "--out", str(work / "restore.json"), "--postgres-jobs", str(jobs)],
                env=env, cwd=str(ROOT), log=log,
            ).check()  # fmt: skip
            (ROOT / ".local" / f"pg-bound-archivist-{number}.log").write_text(m.stderr + m.stdout)
            _expect(t, want, "archivist")
            done["archivist"], done["archivist_rss_mb"] = round(m.seconds, 3), m.peak_rss_mb
            load.wipe(t, "postgres")
            done["psql_load"] = os.getloadavg()[0]
            (step,) = baselines.pg_restore(work)
            m = measure.run(step.label, baselines.bash(step.command), env=base_env, cwd=str(work), log=log).check()
            _expect(t, want, "gunzip | psql")
            done["psql"] = round(m.seconds, 3)
            load.wipe(t, "postgres")
            done["bound_load"] = os.getloadavg()[0]
            started = time.monotonic()
            done["bound_phases"] = cut.restore(pg, jobs)
            done["bound"] = round(time.monotonic() - started, 3)
            _expect(t, want, "bound")
            log(f"round {number}: {json.dumps(done)}")
            rounds.append(done)
    finally:
        load.unload(t)
        shutil.rmtree(work, ignore_errors=True)
    median = {k: statistics.median(r[k] for r in rounds) for k in ("archivist", "psql", "bound")}
    results = {
        "kind": "pg_restore_bound",
        "scale": args.scale,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "jobs": jobs,
        "rows": want,
        "rounds": rounds,
        "median": median,
        "speedup_vs_psql": round(median["psql"] / median["archivist"], 2),
        "bound_vs_psql": round(median["psql"] / median["bound"], 2),
        "archivist_over_bound": round(median["archivist"] / median["bound"] - 1, 3),
    }
    path = Path(args.results_dir) / f"pg-restore-scale-{args.scale:g}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(report.pg_bound_markdown(results))
    log(f"wrote {path}")
    print(json.dumps(results, indent=2))
    return results


def _expect(t, want: dict, what: str) -> None:
    got = load.counts(t, "postgres")
    if got != want:
        raise RuntimeError(f"{what}: the database holds {got} after the restore, expected {want}")


if __name__ == "__main__":
    main()
