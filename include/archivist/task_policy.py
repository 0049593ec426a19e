"""What both archivist DAGs apply to their tasks: which failures are worth a retry, and what a
task does when another backup or restore holds the lock.

Airflow is imported only when a task fails, so the library stays usable without it."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from archivist.errors import (
    BackupNotFoundError,
    ConfigurationError,
    LockHeldError,
    LockLostError,
    TargetNotEmptyError,
    VerificationError,
)

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
