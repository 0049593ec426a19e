"""What `replace` mode would drop in the database, read from its catalog before anything is written.

The restore drops what the dump's plan lists (dump_plan): each schema the dump creates with
everything in it, and in `public` only the objects the dump creates there. This lists, of
those, what the database holds now, so a user can see it before agreeing.
"""

from __future__ import annotations

from archivist.config import PostgresSettings
from archivist.sources.postgres import job
from archivist.sources.postgres.dump_plan import DumpPlan

SHOWN = 10  # names listed per schema; the rest are counted

_RELKINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence", "f": "foreign table"}
_IN_SCHEMAS = """
    SELECT n.nspname, c.relkind, c.relname
    FROM pg_catalog.pg_namespace n
    LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    WHERE n.nspname = ANY(%s)
    ORDER BY 1, 3
"""
_FUNCTIONS_IN_SCHEMAS = """
    SELECT n.nspname, count(p.oid) FROM pg_catalog.pg_namespace n
    LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid
    WHERE n.nspname = ANY(%s) GROUP BY 1
"""
_PUBLIC_RELATIONS = """
    SELECT c.relname FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relname = ANY(%s) AND c.relkind::text = ANY(%s)
"""
_PUBLIC_TYPES = """
    SELECT t.typname FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'public'::pg_catalog.regnamespace AND t.typname = ANY(%s) AND t.typtype::text = ANY(%s)
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = t.typrelid AND r.relkind <> 'c')
"""
# The signature text the restore's drop matches (job._DROP_PUBLIC_OBJECTS): `name(type, type)`.
_PUBLIC_ROUTINES = """
    SELECT sig FROM (
      SELECT p.proname || '(' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.format_type(t, NULL), ', '
                ORDER BY i) FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i)), '')
             || ')' AS sig
      FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'public'::pg_catalog.regnamespace
    ) s WHERE sig = ANY(%s)
"""
_PUBLIC_KINDS = {  # the plan's kind -> (query, catalog kinds)
    "table": (_PUBLIC_RELATIONS, ["r", "p"]),
    "view": (_PUBLIC_RELATIONS, ["v"]),
    "materialized view": (_PUBLIC_RELATIONS, ["m"]),
    "sequence": (_PUBLIC_RELATIONS, ["S"]),
    "type": (_PUBLIC_TYPES, ["c", "e", "r", "m", "b"]),
    "domain": (_PUBLIC_TYPES, ["d"]),
}


def in_database(settings: PostgresSettings, plan: DumpPlan) -> list[str]:
    """One line per schema or `public` object the restore would drop that the database holds now."""
    where = f"database '{settings.dbname}'"
    lines = []
    with job.connect(settings) as conn:
        found: dict[str, dict[str, list[str]]] = {}
        for schema, relkind, name in conn.execute(_IN_SCHEMAS, [plan.schemas]).fetchall():
            kinds = found.setdefault(schema, {})
            if relkind:
                kinds.setdefault(_RELKINDS[relkind], []).append(f"{schema}.{name}")
        routines: dict[str, int] = dict(conn.execute(_FUNCTIONS_IN_SCHEMAS, [plan.schemas]).fetchall())
        for schema in plan.schemas:
            if schema in found:
                lines.append(f"schema {schema} of {where}, with {_contents(found[schema], routines.get(schema, 0))}")
        if "public" in plan.schemas:
            return lines
        for kind, names in sorted(plan.public.items()):
            if kind in ("function", "procedure"):
                rows = conn.execute(_PUBLIC_ROUTINES, [names]).fetchall()
            else:
                query, catalog_kinds = _PUBLIC_KINDS[kind]
                rows = conn.execute(query, [names, catalog_kinds]).fetchall()
            lines += [f"{kind} public.{name} of {where}" for (name,) in sorted(rows)]
    return lines


def _contents(kinds: dict[str, list[str]], routines: int) -> str:
    """`3 tables (app.a, app.b, app.c), 1 view, 2 functions`, or `nothing in it`."""
    parts = []
    tables = kinds.pop("table", [])
    if tables:
        shown = ", ".join(tables[:SHOWN]) + (f" and {len(tables) - SHOWN} more" if len(tables) > SHOWN else "")
        parts.append(f"{len(tables)} table(s) ({shown})")
    parts += [f"{len(names)} {kind}(s)" for kind, names in sorted(kinds.items())]
    if routines:
        parts.append(f"{routines} function(s)")
    return ", ".join(parts) if parts else "nothing in it"
