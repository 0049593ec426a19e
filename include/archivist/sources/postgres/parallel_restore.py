"""Restores a plain dump over several connections at once, the way `pg_restore --jobs` does.

In a scratch copy of the target (scratch_database): the schema in one psql transaction, then
each table's COPY block on a connection of its own, fed from one sequential read of the dump
through bounded disk spools (spool), each table's indexes and constraints as soon as its rows are
in (beside the tables still loading), then the rest of them in parallel, foreign keys in
parallel, and the rest of the dump in one more psql transaction; every table is analyzed in
parallel, and the scratch database is swapped in for the target in one transaction. A failure
anywhere drops the scratch database and leaves the target as it was.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from typing import IO

import psycopg

from archivist.config import PostgresSettings
from archivist.errors import ArchivistError, JobFailedError, UnreachableError
from archivist.format.streams import Readable
from archivist.progress import Progress
from archivist.sources.postgres import job
from archivist.sources.postgres.dump_plan import DumpPlan
from archivist.sources.postgres.dump_sections import (
    ATTACH,
    FOREIGN_KEYS,
    INDEXES,
    SERIAL,
    CopyBlock,
    DumpSections,
    Statement,
    builds_on,
)
from archivist.sources.postgres.scratch_database import CannotBuildAside, ScratchDatabase
from archivist.sources.postgres.spool import Spool, SpoolBudget, SpoolCancelled

log = logging.getLogger(__name__)

APPLICATION_NAME = "archivist restore"
SPOOL_LIMIT = 1024**3  # at most this much disk for rows read ahead of the connections
TABLES = """
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
"""
DEADLOCK_RETRIES = 5  # two foreign keys between the same tables, added at once, can deadlock


def restore(
    settings: PostgresSettings,
    sql: Readable,
    mode: str = "empty",
    plan: DumpPlan | None = None,
    jobs: int = 1,
    plan_of: Callable[[], DumpPlan | None] | None = None,
) -> dict[str, int]:
    """Restores the dump over `jobs` connections built aside and swapped in, or with `jobs` 1, or
    where the server does not allow building aside, in one psql transaction (job.restore).

    `replace` mode drops what the dump recreates (`plan`). Without a `plan`, a parallel restore
    takes it from the statements it reads, so the dump is read once
    (docs/PERFORMANCE.md#replace-drops-read-with-the-dump); one transaction needs it before the
    dump's first statement and asks `plan_of`, which reads the dump once more."""
    prologue, epilogue = job.prepare_restore(settings, mode, plan)
    drops_as_read = mode == "replace" and plan is None and plan_of is not None
    if jobs > 1:
        try:
            parallel = ParallelRestore(settings, jobs, prologue, epilogue, drops_as_read)
            parallel.run(sql)
            return job.counts(settings)
        except CannotBuildAside as why:
            where = job._where(settings)
            log.warning("a parallel restore of %s cannot build aside (%s): restoring in one transaction", where, why)
    if drops_as_read and plan_of is not None and (plan := plan_of()) is not None:
        prologue, epilogue = job.replace_sql(plan)
    return job.restore_in_one_transaction(settings, sql, prologue, epilogue)


def default_jobs(settings: PostgresSettings) -> int:
    """Connections for a parallel restore: the server's cores (this machine's when the server is on
    it, else its max_worker_processes), at most twice this worker's, between 2 and 8."""
    here = os.cpu_count() or 2
    server = here
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.host.startswith("/"):
        try:
            with job.connect(settings) as conn:
                server = int(job._one(conn, "SHOW max_worker_processes"))
        except ArchivistError:
            server = here
    return max(2, min(server, 2 * here, 8))


class _Connections:
    """`jobs` connections to the scratch database, each taken by one task at a time."""

    def __init__(self, settings: PostgresSettings, jobs: int):
        self._free: queue.Queue[tuple[psycopg.Connection, list[tuple[bytes, ...]]]] = queue.Queue()
        self._all: list[psycopg.Connection] = []
        for _ in range(jobs):
            conn = job.connect(settings)
            conn.execute("SELECT pg_catalog.set_config('application_name', %s, false)", (APPLICATION_NAME,))
            self._all.append(conn)
            self._free.put((conn, [()]))

    @contextmanager
    def take(self, settings: tuple[bytes, ...]) -> Iterator[psycopg.Connection]:
        conn, applied = self._free.get()
        try:
            if applied[0] != settings:
                for statement in settings:
                    conn.execute(statement)
                applied[0] = settings
            yield conn
        finally:
            self._free.put((conn, applied))

    def close(self) -> None:
        for conn in self._all:
            conn.close()


class ParallelRestore:
    """One restore of a dump into `settings.dbname` over `jobs` connections."""

    def __init__(
        self,
        settings: PostgresSettings,
        jobs: int,
        prologue: bytes = b"",
        epilogue: bytes = b"",
        drops_as_read: bool = False,
    ):
        """`prologue` runs before the dump's schema and `epilogue` after its last statement; with
        `drops_as_read`, `replace` mode's drops come from the dump's own statements instead."""
        self.settings, self.jobs = settings, jobs
        self.prologue, self.epilogue = prologue, epilogue
        self.drops_as_read = drops_as_read
        self.scratch = ScratchDatabase(settings)
        self.timings: dict[str, float] = {}
        self.dropped = False

    def run(self, sql: Readable) -> dict[str, float]:
        """Builds the restore aside and swaps it in; raises with the target unchanged on failure.
        Returns the seconds each phase took."""
        self.scratch.create()
        try:
            self._build(sql)
        except BaseException as exc:
            self.dropped = self.scratch.drop()
            if isinstance(exc, ArchivistError) and not isinstance(exc, JobFailedError | UnreachableError):
                raise
            if isinstance(exc, psycopg.OperationalError):
                raise UnreachableError(self._failed(f"lost the server: {_reason(exc)}")) from None
            if isinstance(exc, psycopg.Error):
                raise JobFailedError(self._failed(_reason(exc))) from None
            if isinstance(exc, JobFailedError | UnreachableError):
                raise type(exc)(self._failed(str(exc))) from None
            raise
        started = time.monotonic()
        self.scratch.swap_in()
        self.timings["swap"] = time.monotonic() - started
        return self.timings

    def _failed(self, what: str) -> str:
        left = "now dropped" if self.dropped else "which the next parallel restore drops"
        return (
            f"parallel restore into {job._where(self.settings)} failed, and the database is unchanged (the restore "
            f"was built aside in '{self.scratch.name}', {left}): {what}"
        )

    def _phase(self, name: str, started: float) -> float:
        now = time.monotonic()
        self.timings[name] = round(now - started, 3)
        log.info("parallel restore: %s took %.1f s", name, now - started)
        return now

    def _build(self, sql: Readable) -> None:
        scratch = self.scratch.settings
        sections = DumpSections(sql)
        started = time.monotonic()
        with tempfile.TemporaryFile() as pre:
            sections.pre_data(pre)
            pre.seek(0)
            prologue, early = self.prologue, DumpPlan()
            if self.drops_as_read:  # pg_dump creates every schema and object before its first rows
                early = sections.plan.copy()
                log.info("replace mode: dropping %s", early.describe())
                prologue = job.replace_prologue(early)
            job._run_psql(scratch, pre, prologue, b"", Progress(f"psql schema {self.settings.dbname}"))
        started = self._phase("schema", started)
        connections = _Connections(scratch, self.jobs)
        try:
            with (
                ThreadPoolExecutor(self.jobs, thread_name_prefix="pg-restore") as pool,
                tempfile.TemporaryFile() as rest,
            ):
                later = self._load_rows(sections, connections, pool, rest)
                started = self._phase("rows, and the indexes of tables loaded meanwhile", started)
                self._all(pool, connections, later[INDEXES])
                for statement in later[ATTACH]:
                    with connections.take(statement.settings) as conn:
                        conn.execute(statement.text)
                started = self._phase("indexes and constraints", started)
                self._all(pool, connections, later[FOREIGN_KEYS])
                started = self._phase("foreign keys", started)
                rest.seek(0)
                prologue, epilogue = b"", self.epilogue
                if self.drops_as_read:  # a hand-made dump may create more after its rows: dropped before it does
                    late = sections.plan.without(early)
                    if not late.empty:
                        log.info("replace mode: dropping %s, which the dump creates after its rows", late.describe())
                        prologue = job.replace_prologue(late)
                    epilogue = job.replace_epilogue(sections.plan)
                job._run_psql(scratch, rest, prologue, epilogue, Progress(f"psql post-data {self.settings.dbname}"))
                started = self._phase("the rest of the dump", started)
                with job.connect(scratch) as conn:
                    tables = [Statement(b"ANALYZE " + row[0].encode(), SERIAL, ()) for row in conn.execute(TABLES)]
                self._all(pool, connections, tables)
                self._phase("analyze", started)
        finally:
            connections.close()

    def _load_rows(
        self, sections: DumpSections, connections: _Connections, pool: ThreadPoolExecutor, rest: IO[bytes]
    ) -> dict[str, list[Statement]]:
        """Streams every COPY block to a connection of its own, through spools, while sorting the
        statements after them by phase (the serial ones into `rest`, for psql); runs each index
        and constraint as soon as the table it reads is loaded, and returns the later statements
        left to run (indexes on tables without rows in the dump among them)."""
        later: dict[str, list[Statement]] = {INDEXES: [], ATTACH: [], FOREIGN_KEYS: []}
        directory = tempfile.mkdtemp(prefix="archivist-pg-spool-")
        budget = SpoolBudget(min(SPOOL_LIMIT, max(shutil.disk_usage(directory).free // 2, 64 * 1024 * 1024)))
        loads: list[Future[None]] = []
        loaded_table: dict[Future[None], str] = {}
        early: list[Future[None]] = []
        spools: list[Spool] = []
        wrote_settings = False
        progress = Progress(f"rows {self.settings.dbname}")
        try:
            for item in sections.items():
                if isinstance(item, CopyBlock):
                    spool = Spool(directory, str(len(spools)), budget)
                    spools.append(spool)
                    loads.append(pool.submit(_guarded(budget, self._copy), connections, item, spool))
                    loaded_table[loads[-1]] = item.table
                    for rows in item.rows:
                        spool.write(rows)
                        progress.add(len(rows))
                    spool.finish()
                    continue
                if item.phase != SERIAL:
                    later[item.phase].append(item)
                    continue
                if not wrote_settings:  # psql's session for the rest starts as the dump's header left it
                    rest.write(b"".join(item.settings))
                    wrote_settings = True
                rest.write(item.text)
            later[INDEXES] = _after_each_load(later[INDEXES], loaded_table, pool, connections, budget, early)
            _first_error(loads + early, wait(loads + early, return_when=FIRST_EXCEPTION).done)
        except SpoolCancelled:
            _cancel(early)
            _first_error(loads + early, wait(loads + early).done)
            raise
        except BaseException:
            budget.cancel()
            _cancel(early)
            wait(loads + early)
            raise
        finally:
            for spool in spools:
                spool.discard()
            shutil.rmtree(directory, ignore_errors=True)
        progress.done()
        log.info(
            "parallel restore: %d table(s) loaded, %d index(es) and constraint(s) built beside the loads; spools held "
            "at most %d MB",
            len(loads),
            len(early),
            budget.peak >> 20,
        )
        return later

    @staticmethod
    def _copy(connections: _Connections, block: CopyBlock, spool: Spool) -> None:
        with connections.take(block.settings) as conn, conn.cursor().copy(block.statement) as copy:
            for rows in spool.chunks():
                copy.write(rows)

    def _all(self, pool: ThreadPoolExecutor, connections: _Connections, statements: list[Statement]) -> None:
        """Runs the statements over every connection at once; stops at the first error."""
        futures = [pool.submit(_execute, connections, statement) for statement in statements]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        _cancel(futures)
        _first_error(futures, done)
        wait(futures)


def _after_each_load(
    statements: list[Statement],
    loaded_table: dict[Future[None], str],
    pool: ThreadPoolExecutor,
    connections: _Connections,
    budget: SpoolBudget,
    started: list[Future[None]],
) -> list[Statement]:
    """Submits each index-phase statement as soon as the load of the table it reads has ended
    (appending its future to `started`), the way pg_restore --jobs schedules by dependency, so a
    connection whose table is in does not wait idle for the largest table. Returns the statements
    on tables the dump loads no rows into, to run after every load; stops at a failed load."""
    waiting: dict[str, list[Statement]] = {}
    rest: list[Statement] = []
    tables = set(loaded_table.values())
    for statement in statements:
        table = builds_on(statement)
        (waiting.setdefault(table, []) if table in tables else rest).append(statement)
    for load in as_completed(loaded_table):
        if load.cancelled() or load.exception() is not None or budget.cancelled:
            break
        for statement in waiting.pop(loaded_table[load], []):
            started.append(pool.submit(_guarded(budget, _execute), connections, statement))
    return rest


def _cancel(futures: list[Future[None]]) -> None:
    """Cancels the statements not yet started: the restore has failed and its database goes."""
    for future in futures:
        future.cancel()


def _execute(connections: _Connections, statement: Statement) -> None:
    for attempt in range(DEADLOCK_RETRIES + 1):
        with connections.take(statement.settings) as conn:
            try:
                conn.execute(statement.text)
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == DEADLOCK_RETRIES:
                    raise
                log.info("deadlock on %r, retried", statement.text.strip()[-120:])


def _guarded(budget: SpoolBudget, work: Callable[..., None]) -> Callable[..., None]:
    """`work`, stopping every spool when it fails, so the reader does not wait for it."""

    def run(*args: object) -> None:
        try:
            work(*args)
        except BaseException:
            budget.cancel()
            raise

    return run


def _first_error(futures: list[Future[None]], done: set[Future[None]]) -> None:
    """Raises the first real error among finished futures (a cancelled spool is only its echo)."""
    errors = [f.exception() for f in futures if f in done and not f.cancelled() and f.exception()]
    real = [e for e in errors if not isinstance(e, SpoolCancelled)]
    if real or errors:
        raise (real or errors)[0]  # type: ignore[misc]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
