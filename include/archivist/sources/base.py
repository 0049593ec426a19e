"""What every data source provides, so the runner never dispatches on a job's name."""

from __future__ import annotations

from typing import Any, Protocol

from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener
from archivist.transport.staging import Staging

# Elasticsearch index patterns a restore is limited to (None: all); the other sources ignore them.
Patterns = list[str] | None


class Source(Protocol):
    """One kind of server a backup covers (a "job" in the bundle: jobs.<name>/)."""

    name: str  # the job's name in meta.json, the DAGs' task ids and the command's --jobs
    check_item: str  # how the pre-flight check names it

    def load_settings(self, conn_id: str | None = None) -> Any:
        """The connection's settings (an Airflow connection, or the spec's environment variables)."""

    def check(self, settings: Any) -> str:
        """Logs in and checks what a backup and a restore need; one line on what was found."""

    def dump(self, settings: Any, staging: Staging, backup_id: str, index_pattern: str = "*") -> JobResult:
        """Streams the source's data into `staging` as the bundle's artifacts of this job."""

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """Refuses, at verification, what this job could not restore safely from the bundle."""

    def occupied(
        self, settings: Any, report: VerifyReport, patterns: Patterns, open_bundle: BundleOpener | None
    ) -> list[str]:
        """What in the target already holds data the bundle would restore (empty mode's refusal)."""

    def replaced(
        self, settings: Any, report: VerifyReport, patterns: Patterns, open_bundle: BundleOpener | None
    ) -> list[str]:
        """What a `replace` restore would drop or overwrite in the target, one line each, found the
        way the restore decides it; raises what the restore would raise where it must refuse."""

    def restore(
        self, open_bundle: BundleOpener, settings: Any, mode: str, patterns: Patterns, dry_run: bool
    ) -> dict[str, Any]:
        """Restores the bundle's members of this job into the target; returns what was restored."""

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], patterns: Patterns) -> list[str]:
        """Differences between meta.json's counts of this job and what its restore reported."""
