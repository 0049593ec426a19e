"""What both archivist DAGs apply to their tasks: which failures are worth a retry, how long to
wait before one, and what a task does when another backup or restore holds the lock.

Airflow is imported only when a task fails, so the library stays usable without it."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from archivist.errors import (
    BackupNotFoundError,
    ConfigurationError,
    LockHeldError,
    LockLostError,
    TargetNotEmptyError,
    VerificationError,
)

RETRY_DELAY_VARIABLE = "ARCHIVIST_RETRY_DELAY_SECONDS"
DEFAULT_RETRY_DELAY_SECONDS = 30
# Doubling from 30 s, a job's second retry waits about 1 to 2 minutes; no wait grows past this.
MAX_RETRY_DELAY = dt.timedelta(minutes=10)
JOB_RETRIES = 2

# A retry cannot mend these: a setting, a bundle or a target has to change first, or the run
# lost its lock. A lost server, throttling or a failed job may pass, so those keep the retries.
NOT_RETRIED = (ConfigurationError, VerificationError, TargetNotEmptyError, BackupNotFoundError, LockLostError)
# A task that finds the lock held gives its worker slot back and is run again this much later
# (Airflow's up_for_reschedule, which spends no retry), until the lock is free, its holder goes
# stale, or the run's time limit (ARCHIVIST_RUN_TIMEOUT_HOURS) stops the run.
LOCK_RECHECK = dt.timedelta(minutes=2)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def fail_fast(func: F) -> F:
    """Fails the task at once, skipping its retries, on an error no retry can mend."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LockHeldError as exc:
            from airflow.sdk.exceptions import AirflowRescheduleException

            log.warning("%s. Trying again in %s.", exc, LOCK_RECHECK)
            raise AirflowRescheduleException(dt.datetime.now(dt.UTC) + LOCK_RECHECK) from exc
        except NOT_RETRIED as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return run  # type: ignore[return-value]


def retry_delay(env: Mapping[str, str] | None = None) -> dt.timedelta:
    """The wait before a task's first retry: ARCHIVIST_RETRY_DELAY_SECONDS, default 30."""
    env = os.environ if env is None else env
    text = env.get(RETRY_DELAY_VARIABLE, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_RETRY_DELAY_SECONDS
    except ValueError:
        raise ConfigurationError(f"{RETRY_DELAY_VARIABLE} must be a number of seconds, got {text!r}") from None
    if not 0 < seconds <= MAX_RETRY_DELAY.total_seconds():
        raise ConfigurationError(
            f"{RETRY_DELAY_VARIABLE} must be more than 0 and at most {MAX_RETRY_DELAY.total_seconds():.0f} "
            f"seconds, got {text!r}"
        )
    return dt.timedelta(seconds=seconds)


def job_retries(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A backup job's retries: a lost server often comes back, so each wait doubles the last."""
    return {
        "retries": JOB_RETRIES,
        "retry_delay": retry_delay(env),
        "retry_exponential_backoff": 2.0,  # Airflow 3.3's multiplier: each wait about twice the last
        "max_retry_delay": MAX_RETRY_DELAY,
    }
