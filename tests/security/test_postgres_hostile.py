"""A bundle's PostgreSQL dump cannot run commands on the restoring host, and `replace` drops only
what the dump recreates. Each bundle is forged here and restored with the real `archivist`
command into the real database; nothing outside the dump may change."""

from __future__ import annotations

import pytest

from archivist.sources.postgres import job as postgres
from demo.fingerprint import pg_dump_text, wipe_postgres
from tests.security.forge import archivist, forge

DUMP_PATH = "jobs.postgres/postgres-{id}.sql"
HEAD = (
    b"--\n-- PostgreSQL database dump\n--\n\n\\restrict AttackerKnowsThisKey1\n\n"
    b"SET statement_timeout = 0;\nSET standard_conforming_strings = on;\n\n"
    b"CREATE SCHEMA app;\n\nCREATE TABLE app.t (id integer);\n\n"
)
TAIL = b"\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict AttackerKnowsThisKey1\n\n"


@pytest.fixture
def victim(pg_settings):
    """A database holding what a hostile dump must not touch: schemas billing and reporting and a
    table in public, each with a row."""
    wipe_postgres(pg_settings)
    with postgres.connect(pg_settings) as conn:
        for sql in (
            "CREATE SCHEMA billing",
            "CREATE TABLE billing.invoices (id int)",
            "INSERT INTO billing.invoices VALUES (1)",
            "CREATE SCHEMA reporting",
            "CREATE TABLE reporting.daily (id int)",
            "INSERT INTO reporting.daily VALUES (2)",
            "CREATE TABLE public.keep (id int)",
            "INSERT INTO public.keep VALUES (3)",
        ):
            conn.execute(sql)
    return pg_dump_text(pg_settings)


def _restore(tmp_path, dump: bytes, *args: str):
    key, data = forge({DUMP_PATH: dump})  # no counts: the target keeps tables the dump does not hold
    path = tmp_path / f"{key.name}.tgz"
    path.write_bytes(data)
    return archivist("simple-restore", str(path), "--jobs", "postgres", "--yes", *args)


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(b"\\! touch {marker}\n", id="shell-at-the-top"),
        pytest.param(b"SELECT 1; \\! touch {marker}\n", id="shell-mid-line"),
        pytest.param(b"\\o |touch {marker}\n", id="output-to-a-pipe"),
        pytest.param(b"\\unrestrict guessedKey123\n\\! touch {marker}\n", id="guessed-unrestrict"),
        pytest.param(b"\\copy (SELECT 1) TO PROGRAM 'touch {marker}'\n", id="copy-to-program"),
        pytest.param(b"\\set x `touch {marker}`\n", id="backtick-set"),
    ],
)
@pytest.mark.parametrize("mode", ["replace", "empty"])
def test_a_backslash_command_in_the_dump_fails_the_restore_and_runs_nothing(
    hostile, mode, victim, pg_settings, tmp_path
):
    marker = tmp_path / "ran"
    line = hostile.replace(b"{marker}", str(marker).encode())
    at_top = line.startswith(b"\\!") and b"SELECT" not in line
    dump = (line + HEAD + TAIL) if at_top else (HEAD + line + b"CREATE TABLE app.u (id int);\n" + TAIL)
    if mode == "empty":
        wipe_postgres(pg_settings)
        victim = pg_dump_text(pg_settings)
    run = _restore(tmp_path, dump, "--mode", mode)
    assert run.returncode == 7, run.stderr
    assert "rolled back" in run.stderr
    assert "backslash commands are restricted" in run.stderr or "wrong key" in run.stderr, run.stderr
    assert not marker.exists(), "a command smuggled into the dump ran on the restoring host"
    assert pg_dump_text(pg_settings) == victim


def test_an_honest_dump_restores_in_restricted_mode(victim, pg_settings, tmp_path):
    run = _restore(tmp_path, HEAD + b"INSERT INTO app.t VALUES (42);\n" + TAIL, "--mode", "replace")
    assert run.returncode == 0, run.stderr
    with postgres.connect(pg_settings) as conn:
        assert conn.execute("SELECT id FROM app.t").fetchall() == [(42,)]


FUNCTION_BODY = (
    b"--\n-- Name: refresh(); Type: FUNCTION; Schema: app; Owner: -\n--\n\n"
    b"CREATE FUNCTION app.refresh() RETURNS void\n    LANGUAGE plpgsql\n    AS $_$\nBEGIN\n"
    b"CREATE TABLE reporting.x (id int);\nEND\n$_$;\n\n"
)
STRING_LITERAL = (
    b"CREATE TABLE app.notes (body text);\n"
    b"INSERT INTO app.notes VALUES ('release notes:\nCREATE SCHEMA billing;\n');\n\n"
)


@pytest.mark.parametrize(
    "decoy", [pytest.param(FUNCTION_BODY, id="function-body"), pytest.param(STRING_LITERAL, id="string-literal")]
)
def test_replace_drops_only_the_schemas_the_dump_creates(decoy, victim, pg_settings, tmp_path):
    dry = _restore(tmp_path, HEAD + decoy + TAIL, "--mode", "replace", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "schema app" in dry.stdout and "billing" not in dry.stdout and "reporting" not in dry.stdout, dry.stdout

    run = _restore(tmp_path, HEAD + decoy + TAIL, "--mode", "replace")
    assert run.returncode == 0, run.stderr
    with postgres.connect(pg_settings) as conn:
        assert conn.execute("SELECT id FROM billing.invoices").fetchall() == [(1,)]
        assert conn.execute("SELECT id FROM reporting.daily").fetchall() == [(2,)]
        assert conn.execute("SELECT id FROM public.keep").fetchall() == [(3,)]
        assert conn.execute("SELECT count(*) FROM app.t").fetchone() == (0,)


def test_replace_keeps_public_and_drops_there_only_what_the_dump_creates(victim, pg_settings, tmp_path):
    dump = HEAD + b"CREATE TABLE public.keep (id integer);\n\nCOPY public.keep (id) FROM stdin;\n7\n\\.\n\n" + TAIL
    with postgres.connect(pg_settings) as conn:
        conn.execute("CREATE TABLE public.other (id int)")
    run = _restore(tmp_path, dump, "--mode", "replace")
    assert run.returncode == 0, run.stderr
    with postgres.connect(pg_settings) as conn:
        assert conn.execute("SELECT id FROM public.keep").fetchall() == [(7,)]
        assert conn.execute("SELECT count(*) FROM public.other").fetchone() == (0,), "public was dropped"
        assert conn.execute("SELECT id FROM billing.invoices").fetchall() == [(1,)]


def test_replace_refuses_to_drop_what_something_outside_the_dump_depends_on(victim, pg_settings, tmp_path):
    dump = HEAD + b"CREATE TABLE public.keep (id integer);\n" + TAIL
    with postgres.connect(pg_settings) as conn:
        conn.execute("CREATE VIEW billing.kept AS SELECT id FROM public.keep")
    before = pg_dump_text(pg_settings)
    run = _restore(tmp_path, dump, "--mode", "replace")
    assert run.returncode == 7 and "cannot" in run.stderr and "billing.kept" in run.stderr, run.stderr
    assert pg_dump_text(pg_settings) == before
