"""What every data source provides, so the runner never dispatches on a job's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from archivist.format.bundle import JobResult, VerifyReport
from archivist.format.members import BundleOpener
from archivist.transport.staging import Staging

# Elasticsearch index patterns a restore is limited to (None: all).
Patterns = list[str] | None


@dataclass(frozen=True)
class PitSlices:
    """One part's share of an index read by several parts (runner/split.py): slices `ids` of `of`
    of the point in time `pit`, which the planning task opened and keeps alive `keep_alive`, and
    which held `total` documents in all."""

    index: str
    pit: str
    ids: tuple[int, ...]
    of: int
    keep_alive: str
    total: int

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "pit": self.pit, "ids": list(self.ids), "of": self.of, "total": self.total}


@dataclass(frozen=True)
class DumpOptions:
    """What one backup takes beyond its connections, chosen per run (DAG params, command options).
    Each source reads the fields of its own and ignores the others."""

    index_pattern: str = "*"
    # What to do with a closed index matching the pattern: "refuse" (fail naming it) or "open"
    # (open it for reading, close it again, restore it closed); config.parse_closed_indices.
    closed_indices: str = "refuse"
    # Index patterns backed up as their definition alone, without documents: the way to back up
    # an index whose _source is disabled or filtered, whose documents cannot be read back.
    mappings_only: tuple[str, ...] = ()
    # PostgreSQL: keep owners and privileges (ownership, GRANTs, default privileges) in the dump,
    # for restores into a cluster where the same roles exist; off, the dump is role-neutral.
    postgres_privileges: bool = False
    # PostgreSQL: databases of the same server backed up beside the connection's own, each its own dump.
    postgres_databases: tuple[str, ...] = ()
    # PostgreSQL: the cluster's role definitions, without passwords, as an artifact of their own.
    postgres_roles: bool = False
    # One part of a split job (runner/split.py): the part's number, and for storage the keys it
    # takes, those after `key_range[0]` up to and including `key_range[1]` (None: no bound).
    part: int | None = None
    key_range: tuple[str | None, str | None] = (None, None)
    # Elasticsearch's parts: the indices of index_pattern's that the part takes (None: all), and,
    # for a part that reads slices of one large index, which slices.
    indices: tuple[str, ...] | None = None
    pit_slices: PitSlices | None = None


@dataclass(frozen=True)
class RestoreOptions:
    """What one restore takes beyond the bundle and its targets, chosen per run (DAG params,
    command options). Each source reads the fields of its own and ignores the others."""

    indices: Patterns = None  # Elasticsearch index patterns to restore (None: all)
    # PostgreSQL: which of the bundle's extra databases to restore (None: all; the connection's
    # own database is restored whenever the postgres job is).
    postgres_databases: tuple[str, ...] | None = None
    # PostgreSQL: create the roles the bundle defines that the target cluster lacks (never alters one).
    postgres_roles: bool = False
    # Restoring elsewhere: each target named here is written instead of the one backed up, which
    # is never touched. PostgreSQL: the database the connection's own dump goes into (created if
    # missing; None: the connection's database), and bundle database -> target for extra ones.
    postgres_database: str | None = None
    postgres_database_map: tuple[tuple[str, str], ...] = ()
    # Elasticsearch: index -> target index (wins over the prefix), else the prefix before each
    # index; aliases, templates and template index_patterns are renamed the same way, or skipped.
    index_prefix: str = ""
    index_rename: tuple[tuple[str, str], ...] = ()
    skip_aliases: bool = False
    skip_templates: bool = False
    # Elasticsearch: leave the bundle's data streams out (a drill's scratch names have no template to make them).
    skip_data_streams: bool = False
    # Storage: the bucket objects go into (None: the connection's), and a prefix before each key.
    storage_bucket: str | None = None
    storage_prefix: str = ""
    # Storage: the archives of a split bundle this restore takes (None: all); one part's task takes one.
    archives: tuple[str, ...] | None = None
    # PostgreSQL: connections a restore loads over (None: from the server's and worker's cores; 1:
    # one psql transaction, with no scratch database).
    postgres_jobs: int | None = None


class Source(Protocol):
    """One kind of server a backup covers (a "job" in the bundle: jobs.<name>/)."""

    name: str  # the job's name in meta.json, the DAGs' task ids and the command's --jobs
    check_item: str  # how the pre-flight check names it

    def load_settings(self, conn_id: str | None = None) -> Any:
        """The connection's settings (an Airflow connection, or the spec's environment variables)."""

    def check_options(self, options: RestoreOptions) -> None:
        """Refuses, before anything is read or written, a target name of `options` that the server
        would not accept; the error names the option."""

    def check(self, settings: Any) -> str:
        """Logs in and checks what a backup and a restore need; one line on what was found."""

    def dump(self, settings: Any, staging: Staging, backup_id: str, options: DumpOptions) -> JobResult:
        """Streams the source's data into `staging` as the bundle's artifacts of this job."""

    def check_bundle(self, open_bundle: BundleOpener, report: VerifyReport) -> None:
        """Refuses, at verification, what this job could not restore safely from the bundle."""

    def occupied(
        self, settings: Any, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        """What in the target already holds data the bundle would restore (empty mode's refusal)."""

    def replaced(
        self, settings: Any, report: VerifyReport, options: RestoreOptions, open_bundle: BundleOpener | None
    ) -> list[str]:
        """What a `replace` restore would drop or overwrite in the target, one line each, found the
        way the restore decides it; raises what the restore would raise where it must refuse."""

    def restore(
        self, open_bundle: BundleOpener, settings: Any, mode: str, options: RestoreOptions, dry_run: bool
    ) -> dict[str, Any]:
        """Restores the bundle's members of this job into the target; returns what was restored."""

    def count_problems(self, want: dict[str, Any], got: dict[str, Any], options: RestoreOptions) -> list[str]:
        """Differences between meta.json's counts of this job and what its restore reported."""
