"""What both archivist DAGs apply to their tasks: which failures are worth a retry.

Airflow is imported only when a task fails, so the library stays usable without it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from archivist.errors import BackupNotFoundError, ConfigurationError, TargetNotEmptyError, VerificationError

# A retry cannot mend these: a setting, a bundle or a target has to change first. A lost server,
# throttling or a failed job may pass, so those keep the task's retries.
NOT_RETRIED = (ConfigurationError, VerificationError, TargetNotEmptyError, BackupNotFoundError)

F = TypeVar("F", bound=Callable[..., Any])


def fail_fast(func: F) -> F:
    """Fails the task at once, skipping its retries, on an error no retry can mend."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NOT_RETRIED as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return run  # type: ignore[return-value]
