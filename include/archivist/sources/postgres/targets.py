"""Which database each PostgreSQL dump of a bundle is restored into.

By default each goes into the database it came from: the connection's own dump into the
connection's database, an extra database's dump into the database of its name. A restore
elsewhere names other targets (RestoreOptions.postgres_database, postgres_database_map); a
target name is user input, so it is checked against PostgreSQL's rules before it is used.
"""

from __future__ import annotations

from archivist.errors import ConfigurationError
from archivist.sources.base import RestoreOptions

MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts a longer name short without saying so
# template0 accepts no connections; anything restored into template1 lands in every new database.
RESERVED = ("template0", "template1")


def name_problem(name: object) -> str | None:
    """Why PostgreSQL (or archivist) refuses `name` as a target database, or None."""
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if "\0" in name:
        return "holds a NUL character"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes, which PostgreSQL would cut short"
    if name in RESERVED:
        return "is a template database"
    return None


def check_options(options: RestoreOptions) -> None:
    """Refuses a target database that PostgreSQL would not take, and two dumps into one database."""
    if options.postgres_database is not None and (why := name_problem(options.postgres_database)):
        raise ConfigurationError(f"postgres_database {options.postgres_database!r} {why}: name another database")
    seen: dict[str, str] = {}
    for source, target in options.postgres_database_map:
        for what, name in (("a database of the bundle", source), ("a target database", target)):
            if why := name_problem(name):
                raise ConfigurationError(f"postgres_database_map: {what} {name!r} {why}")
        if source in seen:
            raise ConfigurationError(f"postgres_database_map names database {source!r} twice")
        seen[source] = target
    targets = [t for _, t in options.postgres_database_map]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ConfigurationError(f"postgres_database_map restores two databases into {', '.join(twice)}")
    if options.postgres_database is not None and options.postgres_database in targets:
        raise ConfigurationError(
            f"postgres_database {options.postgres_database!r} is also a target of postgres_database_map: "
            "each dump needs a database of its own"
        )


def main_target(options: RestoreOptions, connection_database: str) -> str:
    """The database the connection's own dump is restored into."""
    return options.postgres_database or connection_database


def extra_targets(extra: dict[str, str], held: list[str], options: RestoreOptions, main: str) -> dict[str, str]:
    """The target database of each extra database the restore takes (bundle name -> target).

    `extra` is what the restore takes, `held` every extra database the bundle holds: the map may
    name only those. No two dumps go into one database."""
    mapped = dict(options.postgres_database_map)
    unknown = sorted(set(mapped) - set(held))
    if unknown:
        raise ConfigurationError(
            f"postgres_database_map names database(s) {', '.join(unknown)} that the bundle does not hold; "
            f"it holds extra databases: {', '.join(sorted(held)) or 'none'}"
        )
    targets = {name: mapped.get(name, name) for name in extra}
    into = list(targets.values())
    twice = sorted({t for t in into if into.count(t) > 1})
    if twice:
        raise ConfigurationError(
            f"two of the bundle's databases would be restored into {', '.join(twice)}: map each to a database "
            "of its own with postgres_database_map"
        )
    clash = sorted(name for name, target in targets.items() if target == main)
    if clash:
        raise ConfigurationError(
            f"the bundle's database(s) {', '.join(clash)} would be restored into {main!r}, where the "
            "connection's own dump goes: name another target with postgres_database_map or postgres_database"
        )
    return targets
