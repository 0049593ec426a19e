"""Where a drill restores: a fresh database, prefixed indices and a key prefix, all named after
one random token, so that nothing of the live stack can bear those names and the cleanup can
find everything the drill made by its name alone."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from archivist.errors import ConfigurationError
from archivist.sources.base import RestoreOptions

_TOKEN = re.compile(r"^[a-z0-9]{10}$")
DATABASE_PREFIX = "archivist_drill_"
INDEX_PREFIX = "archivist-drill-"
OBJECT_PREFIX = "archivist-drill-"


@dataclass(frozen=True)
class ScratchTargets:
    """The scratch targets of one drill; `storage_bucket` None is the storage connection's bucket."""

    token: str
    storage_bucket: str | None = None

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.token):  # every name below, and what the cleanup deletes, rests on it
            raise ConfigurationError(
                f"a drill's scratch token must be 10 lower-case letters or digits, got {self.token!r}"
            )

    @classmethod
    def new(cls, storage_bucket: str | None = None) -> ScratchTargets:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return cls("".join(secrets.choice(alphabet) for _ in range(10)), storage_bucket or None)

    @property
    def database(self) -> str:
        """The database the connection's own dump is restored into; extra ones are named after it."""
        return f"{DATABASE_PREFIX}{self.token}"

    def extra_database(self, position: int) -> str:
        return f"{self.database}_{position}"

    @property
    def index_prefix(self) -> str:
        return f"{INDEX_PREFIX}{self.token}-"

    @property
    def storage_prefix(self) -> str:
        return f"{OBJECT_PREFIX}{self.token}/"

    def database_map(self, extra: list[str]) -> tuple[tuple[str, str], ...]:
        """The bundle's extra databases, each to a scratch database of its own."""
        return tuple((name, self.extra_database(n)) for n, name in enumerate(sorted(extra), start=1))

    def restore_options(self, extra_databases: list[str]) -> RestoreOptions:
        """A restore into these targets only: no roles (they are the cluster's, shared with the
        live databases) and no templates (a template is the cluster's too, and would apply to live
        indices made meanwhile); aliases are renamed with the indices. Data streams are left out:
        without their templates nothing could make them."""
        return RestoreOptions(
            postgres_database=self.database,
            postgres_database_map=self.database_map(extra_databases),
            index_prefix=self.index_prefix,
            skip_templates=True,
            skip_data_streams=True,
            storage_bucket=self.storage_bucket,
            storage_prefix=self.storage_prefix,
        )

    def as_dict(self) -> dict[str, Any]:
        return {"token": self.token, "storage_bucket": self.storage_bucket}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScratchTargets:
        return cls(data["token"], data.get("storage_bucket"))

    def describe(self) -> str:
        return f"database {self.database}*, indices {self.index_prefix}*, objects under {self.storage_prefix}"
