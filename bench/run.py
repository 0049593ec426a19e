"""The benchmark: archivist against the baselines, per job and end to end, at one scale.

    python -m bench.run --scale 1          (make bench SCALE=1)
    python -m bench.run --quick            (tiny scale, seconds; tests/bench/test_bench_quick.py)

Steps: generate the scale's data once (cached under .local/bench/data/), load
it into the bench targets (idempotent, counts checked before every
measurement), then measure
  1. each archivist backup task in its own process (check, postgres,
     elasticsearch, storage, bundle_and_upload, rotate) and each baseline backup;
  2. a real backup DAG run on a scheduler (bench/scheduler.py) and the
     baselines one after another, as a cron script would run them;
  3. each archivist restore task (verify, restore_*) and each baseline restore,
     each into an emptied target, with the restored counts checked;
  4. a real restore DAG run on a scheduler and the baseline restores one after another;
  5. at scale 0.1, Airflow's share of backup runs a real scheduler makes (bench/dag_overhead.py);
then unload the bench data from the servers and write bench/results/<run>.json and .md.
With --no-baselines (or on its own when the disk holds the run only without the baselines'
copies of the data, bench/disk.py) the baselines and the encryption comparison are left out.
Every measurement starts once the machine is idle (measure.wait_for_idle), so what the servers
still do after a load or a wipe is not counted against the next command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import psutil

from archivist import __version__ as archivist_version
from archivist.format.bundle import BackupKey
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport.backup_bucket import BackupStore
from bench import (
    baselines,
    dag_overhead,
    disk,
    encryption,
    generate,
    load,
    measure,
    profile_summary,
    report,
    run_job,
    scheduler,
    targets,
)
from bench.baselines import Step
from bench.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / ".local" / "bench" / "work"
PROFILES = ROOT / "bench" / "results" / "profiles"
RAW_PROFILES = ROOT / ".local" / "bench" / "profiles"
QUICK_SCALE = 0.001
JOBS = ("postgres", "elasticsearch", "storage")
# The Elasticsearch and PostgreSQL comparisons run in interleaved rounds and keep each one's median
# round: one measurement moves by more than their targets' margins (bench/README.md#run-to-run-noise).
ROUNDS = 5
QUICK_ROUNDS = 2  # enough to run the rounds' code in the test suite
OVERHEAD_SCALE = 0.1  # Airflow's share of a backup run is measured at this scale (bench/dag_overhead.py)
OVERHEAD_RUNS = 5
# Rounds of the bundle without and with encryption (bench/encryption.py); one in quick mode,
# where the code path is what counts.
ENCRYPTION_ROUNDS = 3


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def other_pytest_running() -> list[str]:
    """Test runs of other engineers (they wipe indices and buckets the bench would measure)."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] not in mine and "pytest" in cmd:
            found.append(f"{proc.info['pid']} {cmd[:120]}")
    return found


def wait_for_quiet(minutes: float) -> None:
    deadline = time.monotonic() + minutes * 60
    while running := other_pytest_running():
        if time.monotonic() > deadline:
            raise SystemExit(f"other test runs are still going after {minutes:g} minutes: {running}")
        log(f"waiting for other test runs to finish: {running[0]}")
        time.sleep(20)


class Bench:
    def __init__(
        self,
        scale: float,
        t: Targets,
        dags: bool,
        profile: bool,
        settle: bool = True,
        rounds: int = 1,
        with_baselines: bool = True,
    ):
        self.scale, self.t, self.dags, self.profile, self.settle = scale, t, dags, profile, settle
        self.rounds = rounds
        self.with_baselines = with_baselines  # False: archivist's tasks and DAG runs alone (no ratios, less disk)
        self.work = WORK / f"{t.prefix}-{generate.scale_name(scale)}"
        self.es_version = es_cluster.check_login(t.elasticsearch)
        self.env = run_job.targets_to_env(t)
        self.base_env = baselines.env(t, self.es_version)
        self.tasks: dict[str, dict] = {}  # archivist task -> seconds, peak RSS, result
        self.baseline: dict[str, list] = {}  # baseline -> its steps' measurements
        self.baseline_rounds: dict[str, list[float]] = {}  # baseline -> each round's seconds
        self.e2e: dict[str, dict] = {}
        self.checks: list[str] = []
        self.busy_starts: list[str] = []  # measurements the idle wait gave up before
        self.sizes: dict[str, int] = {}  # baseline artifact -> bytes, taken before it is deleted
        self.store = BackupStore(t.backups)
        self.encryption: dict | None = None  # bench/encryption.py's row

    # --- helpers -------------------------------------------------------------------------------------

    def idle(self, what: str) -> None:
        """Every measurement starts on an idle machine (measure.wait_for_idle); one that could not
        is named in the report, since it counts other work too."""
        if self.settle and measure.wait_for_idle(log=log).gave_up:
            self.busy_starts.append(what)

    def ensure(self, *jobs: str) -> None:
        load.ensure(self.t, self.scale, jobs)

    def expect_restored(self, job: str, what: str) -> None:
        got, want = load.counts(self.t, job), load.expected(self.t, self.scale, job)
        if got != want:
            raise RuntimeError(f"{what}: {job} holds {got} after the restore, expected {want}")
        self.checks.append(f"{what}: {job} restored exactly ({json.dumps(want, sort_keys=True)})")

    def task(self, name: str, key: str, *extra: str) -> dict:
        out = self.work / f"task-{name}.json"
        args = [sys.executable, "-m", "bench.run_job", name, "--key", key, "--out", str(out), *extra]
        raw = RAW_PROFILES / f"{generate.scale_name(self.scale)}-{name}.txt"
        if self.profile:
            RAW_PROFILES.mkdir(parents=True, exist_ok=True)
            args = [
                baselines.tool("py-spy"),
                "record",
                "--rate",
                "100",
                "--threads",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--",
                *args,
            ]
        self.idle(f"archivist {name}")
        m = measure.run(f"archivist {name}", args, env=self.env, cwd=str(ROOT), log=log).check()
        if self.profile:  # the collapsed stacks stay under .local/; the summary goes with the results
            PROFILES.mkdir(parents=True, exist_ok=True)
            (PROFILES / raw.name).write_text(profile_summary.summarise(str(raw), top=30).replace(f"{ROOT}/", "") + "\n")
        result = json.loads(out.read_text())
        self.tasks[name] = {"seconds": round(m.seconds, 3), "peak_rss_mb": m.peak_rss_mb, "result": result}
        if name == "restore_elasticsearch":
            self.tasks[name]["merging_after"] = self.merges_settled(name)
        return result

    def steps(self, name: str, steps: list[Step]) -> list[dict]:
        done = []
        for step in steps:
            self.idle(f"baseline {step.label}")
            m = measure.run(
                f"baseline {step.label}", baselines.bash(step.command), env=self.base_env, cwd=str(self.work), log=log
            ).check()
            done.append({"step": step.label, "seconds": round(m.seconds, 3), "peak_rss_mb": m.peak_rss_mb})
        self.baseline[name] = done
        return done

    def more_rounds(self, job: str, task: str, archivist: Callable[[], object], baseline: Callable[[], object]) -> None:
        """Rounds 2 to `rounds` of one comparison (the first was measured in the main sequence),
        archivist's task and the baseline in turn; each keeps its median round. A task's peak RSS is
        the highest of its rounds."""
        if self.rounds < 2:
            return
        tasks, bases = [self.tasks[task]], [self.baseline[job]]
        for _ in range(self.rounds - 1):
            archivist()
            tasks.append(self.tasks[task])
            baseline()
            bases.append(self.baseline[job])
        kept = measure.median_round(tasks, "seconds")
        self.tasks[task] = {
            **kept,
            "peak_rss_mb": max(m["peak_rss_mb"] for m in tasks),
            "rounds_seconds": [m["seconds"] for m in tasks],
        }
        totals = [round(sum(st["seconds"] for st in steps), 3) for steps in bases]
        self.baseline[job] = bases[sorted(range(len(bases)), key=totals.__getitem__)[(len(bases) - 1) // 2]]
        self.baseline_rounds[job] = totals

    def compare_encryption(self, store: BackupStore, key: str, staged: list[str]) -> None:
        """The bundle from the staged artifacts without and with age encryption (bench/encryption.py);
        the encrypted object is deleted after, the plain one is made again by bundle_and_upload."""
        self.encryption = encryption.compare(
            lambda name: self.task(name, key, "--results", *staged), self.tasks, ENCRYPTION_ROUNDS if self.settle else 1
        )
        store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(BackupKey.parse(key).object_key_for(True)))

    def encryption_only(self) -> dict:
        """The encryption comparison alone: the three jobs into staging, then the two bundles."""
        self.ensure(*JOBS)
        store = BackupStore(self.t.backups)
        key = BackupKey.new().name
        staged = []
        for job in JOBS:
            self.ensure(job)
            self.task(job, key)
            staged.append(str(self.work / f"task-{job}.json"))
        try:
            self.compare_encryption(store, key, staged)
        finally:
            store.staging(BackupKey.parse(key)).cleanup()
            store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(BackupKey.parse(key).object_key))
        return self.encryption or {}

    def scheduled_run(self, dag_id: str, conf: dict) -> dict:
        """A real DAG run on a scheduler (bench/scheduler.py), its connections pointed at the bench
        targets, its jobs in parallel as a deployment runs them."""
        if self.settle:  # before Airflow starts; the run's own wait (timed_run) is the one reported
            measure.wait_for_idle(log=log)
        with scheduler.running(self.t, (dag_id,)) as api:
            run = scheduler.timed_run(api, dag_id, conf, log=log)
        if run["started_busy"]:
            self.busy_starts.append(f"{dag_id} run")
        return run

    def merges_settled(self, after: str) -> dict[str, float]:
        """Waits out the merges Elasticsearch runs after a restore has ended, so that they are
        counted apart rather than against whatever runs next."""
        merging = load.es_merges_settled(self.t.elasticsearch)
        if merging["seconds"] >= 1:
            log(f"Elasticsearch merged for {merging['seconds']:.0f}s after {after}")
        return merging

    def drop(self, *paths: Path) -> None:
        """Deletes work files no later step reads: at scale 5 keeping every copy would not fit the
        disk (bench/disk.py)."""
        for path in paths:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

    def drop_object(self, key: str) -> None:
        self.store.s3.delete_object(Bucket=self.store.bucket, Key=key)

    # --- the run -------------------------------------------------------------------------------------

    def run(self) -> dict:
        baselines.prepare(self.work, self.t.elasticsearch)
        started = time.monotonic()
        self.ensure(*JOBS)
        loaded_seconds = time.monotonic() - started
        indices = sorted(load.expected(self.t, self.scale, "elasticsearch"))
        store = self.store
        key = BackupKey.new().name

        # 1. backup, per task and per baseline
        self.task("check", key)
        staged = []
        for job in JOBS:
            self.ensure(job)
            self.task(job, key)
            staged.append(str(self.work / f"task-{job}.json"))
        if self.with_baselines:
            self.compare_encryption(store, key, staged)
        self.task("bundle_and_upload", key, "--results", *staged)
        self.task("rotate", key)
        if self.with_baselines:
            self.baseline_backups(key, indices)

        # 2. backup end to end
        e2e_key = None
        if self.dags:  # step 3 reads the DAG run's bundle, so the per-task one need not stay beside it
            self.drop_object(store.object_key(BackupKey.parse(key).object_key))
            self.ensure(*JOBS)
            before = {b.key.name for b in store.list_bundles()}
            self.e2e["archivist_backup"] = self.scheduled_run(
                "archivist_backup", {"index_pattern": self.t.index_pattern, "keep": 7}
            )
            made = [b for b in store.list_bundles() if b.key.name not in before]
            if len(made) != 1:
                raise RuntimeError(f"the backup DAG run made {len(made)} bundles in {self.t.backups.bucket}")
            e2e_key = made[0].key.name
            self.e2e["archivist_backup"].update(bundle=e2e_key, bundle_bytes=made[0].size)
            key = e2e_key
        if self.with_baselines:
            self.steps(
                "backup_e2e_extra",
                [
                    baselines.archive_everything(self.work),
                    baselines.upload_archive(self.work, self.t.backups.bucket, "baseline.tgz"),
                ],
            )
            self.sizes["backup_tgz"] = baselines.size_of(self.work / "backup.tgz")
            self.drop(self.work / "backup.tgz", self.work / "storage")  # uploaded; storage.tgz holds the objects

        # 3. restore, per task and per baseline, each into an emptied target
        self.task("verify", key)
        for job in JOBS:
            load.wipe(self.t, job)
            self.task(f"restore_{job}", key)
            self.expect_restored(job, f"archivist restore_{job}")
        if self.with_baselines:
            self.baseline_restores(key, indices)
        if not self.dags:  # the per-task runs' bundle; a DAG run's stays for step 4
            self.drop_object(store.object_key(BackupKey.parse(key).object_key))

        # 4. restore end to end
        if self.dags and e2e_key:
            for job in JOBS:
                load.wipe(self.t, job)
            self.e2e["archivist_restore"] = self.scheduled_run(
                "archivist_restore", {"key": e2e_key, "mode": "empty", "indices": [self.t.index_pattern]}
            )
            self.e2e["archivist_restore"]["merging_after"] = self.merges_settled("the restore DAG run")
            for job in JOBS:
                self.expect_restored(job, "archivist_restore DAG run")
        if self.with_baselines:
            self.steps(
                "restore_e2e_extra",
                [
                    baselines.download_archive(self.work, self.t.backups.bucket, "baseline.tgz"),
                    baselines.extract_everything(self.work),
                ],
            )
            self.drop(self.work / "restore")
            self.drop_object("baseline.tgz")

        # 5. Airflow's share of a backup run, from real scheduler runs (the restore put the data back)
        if self.dags and self.scale == OVERHEAD_SCALE:
            self.idle("Airflow's share of a backup run")
            try:
                warm_ups, measured = dag_overhead.scheduler_runs(self.t, OVERHEAD_RUNS, log=log)
                self.e2e["dag_overhead"] = dag_overhead.summary(measured, warm_ups)
            except Exception as exc:  # the run's other measurements stand without this one
                log(f"Airflow's share of a backup run was not measured: {exc}")
                self.checks.append(f"Airflow's share of a backup run: NOT measured ({type(exc).__name__}: {exc})")

        return {"loaded_seconds": round(loaded_seconds, 1), "baseline_sizes": self.sizes, "indices": indices}

    def baseline_backups(self, key: str, indices: list[str]) -> None:
        """Each job's baseline backup, the Elasticsearch export in rounds against archivist's."""
        url = self.t.elasticsearch.url
        self.ensure("postgres")
        self.steps("pg_backup", baselines.pg_backup(self.work))
        self.more_rounds(
            "pg_backup",
            "postgres",
            lambda: self.another_backup("postgres"),
            lambda: self.steps("pg_backup", baselines.pg_backup(self.work)),
        )
        self.ensure("elasticsearch")
        self.steps("es_export", baselines.es_export(self.work, url, indices))

        def elasticdump_export() -> None:
            for previous in (self.work / "es").glob("*.json"):  # elasticdump will not overwrite a file
                previous.unlink()
            self.steps("es_export", baselines.es_export(self.work, url, indices))

        self.more_rounds("es_export", "elasticsearch", lambda: self.another_backup("elasticsearch"), elasticdump_export)
        self.ensure("storage")
        self.steps("storage_backup", baselines.storage_backup(self.work, self.t.storage.bucket))

    def restore_rounds(self, job: str, name: str, key: str, steps: Callable[[], list[Step]], what: str) -> None:
        """The baseline's restore of `job`, then rounds of archivist's task and the baseline in
        turn, each into an emptied target and counted."""

        def baseline(label: str) -> None:
            load.wipe(self.t, job)
            self.steps(name, steps())
            self.expect_restored(job, label)

        def archivist() -> None:
            load.wipe(self.t, job)
            self.task(f"restore_{job}", key)
            self.expect_restored(job, f"archivist restore_{job} (another round)")

        baseline(what)
        self.more_rounds(name, f"restore_{job}", archivist, lambda: baseline(f"{what} (another round)"))

    def another_backup(self, job: str) -> None:
        """One more round of a backup job's task, under a key of its own whose staging goes after
        it: every round's dump or export kept beside the bundle would not fit the disk at scale 5."""
        key = BackupKey.new()
        self.task(job, key.name)
        self.store.staging(key).cleanup()

    def baseline_restores(self, key: str, indices: list[str]) -> None:
        """Each job's baseline restore into an emptied target, the PostgreSQL and Elasticsearch ones
        in rounds against archivist's restore of bundle `key`."""
        url = self.t.elasticsearch.url
        self.restore_rounds(
            "postgres", "pg_restore", key, lambda: baselines.pg_restore(self.work), "baseline pg restore"
        )
        self.restore_rounds(
            "elasticsearch",
            "es_restore",
            key,
            lambda: baselines.es_import(self.work, url, indices),
            "baseline elasticdump import",
        )
        load.wipe(self.t, "storage")
        self.steps("storage_restore", baselines.storage_restore(self.work, self.t.storage.bucket))
        self.expect_restored("storage", "baseline rclone restore")
        self.sizes["storage_tgz"] = baselines.size_of(self.work / "storage.tgz")
        self.sizes["pg_dump_gz"] = baselines.size_of(self.work / "pg" / "dump.sql.gz")
        self.sizes["elasticdump_files"] = baselines.size_of(self.work / "es")
        self.drop(self.work / "storage-restore", self.work / "storage.tgz", self.work / "pg", self.work / "es")


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions(t: Targets, es_version: str) -> dict:
    import awscrt
    import boto3
    import elasticsearch as es_client
    import isal
    import orjson

    pg_num, pg_text = postgres.server_version(t.postgres)
    minio = "unknown"
    try:
        import urllib.request

        with urllib.request.urlopen(f"{t.storage.endpoint_url}/minio/health/live", timeout=5) as resp:
            minio = resp.headers.get("Server", "MinIO")
    except Exception:
        pass
    airflow = (
        subprocess.run(
            [sys.executable, "-c", "import airflow; print(airflow.__version__)"], capture_output=True, text=True
        ).stdout.strip()
        or "not installed"
    )
    return {
        "archivist": archivist_version,
        "commit": code_commit(),
        "apache-airflow": airflow,
        "python": platform.python_version(),
        "elasticsearch-py": es_client.__versionstr__,
        "boto3": boto3.__version__,
        "awscrt": awscrt.__version__,
        "isal": isal.__version__,
        "pyrage": importlib.metadata.version("pyrage"),
        "orjson": orjson.__version__,
        "PostgreSQL server": pg_text,
        "Elasticsearch server": es_version,
        "MinIO server": minio,
        **baselines.versions(),
    }


def code_commit() -> str:
    """The commit the measured code is at (`-dirty` with changes not committed), so a run's ratios
    can be set beside the code that made them (bench.history)."""
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:  # no git: a copy of the tree, not a clone
        return "unknown"
    return found.stdout.strip() or "unknown"


def without_baselines_because(scale: float, asked: bool) -> str | None:
    """Why the run leaves the baselines out, or None: asked for, or the disk holds the run only
    without the baselines' copies of the data (bench/disk.py)."""
    if asked:
        return "asked for (--no-baselines)"
    room = disk.Room.now(scale)
    more = room.shortfall()
    if more and not room.shortfall(baselines=False):
        return (
            f"with them the run needs about {more:.1f} GB more than the {room.free:.1f} GB free "
            "(bench/disk.py), so only archivist's tasks and DAG runs were measured, for the growth table"
        )
    return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="archivist's benchmark against pg_dump, elasticdump, rclone and tar")
    parser.add_argument("--scale", type=float, default=None, help="data scale: 1 is ~1 GB per server (default 0.1)")
    parser.add_argument("--quick", action="store_true", help=f"scale {QUICK_SCALE:g}, own targets, no DAG runs")
    parser.add_argument("--no-dags", action="store_true", help="skip the end-to-end DAG runs")
    parser.add_argument("--profile", action="store_true", help="record each archivist task with py-spy")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"rounds of the Elasticsearch and PostgreSQL comparisons, median kept (default {ROUNDS}; "
        f"{QUICK_ROUNDS} in quick mode)",
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument(
        "--wait-minutes",
        type=float,
        default=20,
        help="how long to wait for other test runs to finish (scale 0.1 and above)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="measure even while other test runs go on, without waiting for an idle machine first (noisy)",
    )
    parser.add_argument("--keep-loaded", action="store_true", help="leave the data on the servers afterwards")
    parser.add_argument(
        "--only-encryption", action="store_true", help="only the backup with age encryption against the same without"
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="archivist's tasks and DAG runs alone, without the baselines (no ratios); chosen on its own when "
        "the disk holds the run only without the baselines' copies (bench/disk.py)",
    )
    args = parser.parse_args(argv)
    scale = QUICK_SCALE if args.quick else (args.scale if args.scale is not None else 0.1)
    prefix = targets.QUICK_PREFIX if args.quick else targets.PREFIX
    if scale >= 0.1 and not (args.quick or args.no_wait):
        wait_for_quiet(args.wait_minutes)
    t = targets.load(prefix)
    log(
        f"bench at scale {scale:g} against database {t.postgres.dbname}, indices {t.index_pattern}, "
        f"buckets {t.storage.bucket} and {t.backups.bucket}"
    )
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    without_baselines = without_baselines_because(scale, args.no_baselines)
    if without_baselines:
        log(f"archivist alone, without the baselines: {without_baselines}")
    bench = Bench(
        scale,
        t,
        dags=not (args.quick or args.no_dags),
        profile=args.profile,
        settle=not (args.quick or args.no_wait),
        rounds=rounds,
        with_baselines=not without_baselines,
    )
    started = dt.datetime.now(dt.UTC)
    disk_before = disk.write_rate(WORK.parent)
    try:
        load.ensure(t, scale, ())
        load.ensure_postgres(t, scale)
        load.es_drop_templates(t.elasticsearch)
        found_versions = versions(t, bench.es_version)
        if args.only_encryption:
            baselines.prepare(bench.work, t.elasticsearch)
            row = bench.encryption_only()
            paths = report.write_encryption(row, scale, started, machine(), found_versions, Path(args.results_dir))
            log(f"results: {', '.join(str(p) for p in paths)}")
            return row
        extra = {**bench.run(), "without_baselines": without_baselines}
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        if not args.keep_loaded:
            load.unload(t)
        shutil.rmtree(bench.work, ignore_errors=True)
    data = {part: generate.marker(generate.data_dir(scale) / part) for part in generate.PARTS}
    results = report.build(
        scale=scale,
        started=started,
        machine={**machine(), "disk_write_mb_s": [disk_before, disk.write_rate(WORK.parent)]},
        versions=found_versions,
        data=data,
        tasks=bench.tasks,
        baseline=bench.baseline,
        baseline_rounds=bench.baseline_rounds,
        e2e=bench.e2e,
        checks=bench.checks,
        extra={**extra, "encryption": bench.encryption, "busy_starts": bench.busy_starts},
        quick=args.quick,
    )
    paths = report.write(results, Path(args.results_dir))
    log(f"results: {', '.join(str(p) for p in paths)}")
    print(report.headline(results))
    return results


if __name__ == "__main__":
    main()
