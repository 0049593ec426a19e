"""Runs jobs side by side in threads and gathers every failure, not just the first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from archivist.errors import ArchivistError, JobFailedError

T = TypeVar("T")


def run_parallel(work: Mapping[str, Callable[[], T]], thread_name: str) -> tuple[dict[str, T], dict[str, Exception]]:
    """Runs each of `work`'s callables in its own thread; returns the results and the failures by job."""
    results: dict[str, T] = {}
    failures: dict[str, Exception] = {}
    if not work:
        return results, failures
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix=thread_name) as pool:
        futures = {job: pool.submit(call) for job, call in work.items()}
        for job, future in futures.items():
            try:
                results[job] = future.result()
            except Exception as exc:  # keep the other jobs' messages too
                failures[job] = exc
    return results, failures


def failed(prefix: str, failures: dict[str, Exception]) -> JobFailedError:
    """One error naming every failed job; its exit code is theirs when they agree."""
    message = "; ".join(
        f"{job}: {exc if isinstance(exc, ArchivistError) else f'{type(exc).__name__}: {exc}'}"
        for job, exc in failures.items()
    )
    codes = {getattr(exc, "exit_code", JobFailedError.exit_code) for exc in failures.values()}
    error = JobFailedError(f"{prefix}: {message}")
    error.exit_code = codes.pop() if len(codes) == 1 else JobFailedError.exit_code
    return error
