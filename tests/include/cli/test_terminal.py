"""The command on a terminal (a pseudo-terminal here): the question `restore --mode replace` asks,
naming what it would drop, and the live progress display; and neither when no terminal is there."""

from __future__ import annotations

import re

import pytest

from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport import s3io
from demo.fingerprint import stack_snapshot as fingerprint
from tests.spec_support import archivist, on_terminal

QUESTION = "Drop these and restore?"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(printed: str) -> str:
    return ANSI.sub("", printed).replace("\r", "\n")


def replace_on_terminal(env: dict[str, str], path, reply: str) -> tuple[int, str]:
    """simple-restore --mode replace of `path` on a terminal, `reply` typed at the question."""
    code, printed = on_terminal(env, "simple-restore", str(path), "--mode", "replace", answer=(QUESTION, reply))
    return code, plain(printed)


@pytest.fixture
def bundle_file(seeded, spec_env, tmp_path):
    """A bundle of the demo stack in a local file."""
    run = archivist(spec_env, "simple-backup", "--output", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    (path,) = tmp_path.glob("bundle-*.tgz")
    return path


@pytest.fixture
def bystanders(pg_settings, es_settings, storage_settings):
    """Data the bundle does not hold, in each target: replace mode must neither drop nor name it."""
    with postgres.connect(pg_settings) as conn:
        # a view, not a table: the restore compares the database's tables with the bundle's count
        conn.execute("CREATE SCHEMA bystander; CREATE VIEW bystander.kept AS SELECT 1 AS id")
    es = es_cluster.client(es_settings)
    es.indices.create(index="bystander-index")
    s3io.client(storage_settings).put_object(Bucket=storage_settings.bucket, Key="bystander/object.txt", Body=b"x")
    yield
    with postgres.connect(pg_settings) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bystander CASCADE")
    es.indices.delete(index="bystander-index", ignore_unavailable=True)
    s3io.client(storage_settings).delete_object(Bucket=storage_settings.bucket, Key="bystander/object.txt")


def test_replace_asks_naming_what_it_drops_and_no_leaves_everything(
    bundle_file, bystanders, spec_env, pg_settings, es_settings, storage_settings
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    code, text = replace_on_terminal(spec_env, bundle_file, "n")
    assert code == 1, text
    listed = text[text.index("first drops or overwrites:") : text.index(QUESTION)]
    for dropped in (
        "schema app of database 'archivist_demo', with 3 table(s) (app.attachments, app.customers, app.orders)",
        "table public.audit_log of database 'archivist_demo'",
        "table public.countries of database 'archivist_demo'",
        "index products (200 documents",
        "index template archivist-demo-logs of Elasticsearch at",
        "component template archivist-demo-logs-mappings of Elasticsearch at",
        "318 object(s) of bucket 'archivist-app', overwritten:",
    ):
        assert dropped in listed, f"{dropped!r} not named:\n{listed}"
    assert re.search(r"index logs-demo-2026\.11 \(1,000 documents, aliases .*logs-demo-write", listed), listed
    assert "bystander" not in listed, listed
    assert "cancelled at the question: nothing was written" in text
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_replace_proceeds_on_yes_and_shows_its_progress(
    bundle_file, bystanders, spec_env, pg_settings, es_settings, storage_settings
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    code, text = replace_on_terminal(spec_env, bundle_file, "y")
    assert code == 0, text
    assert "counts match the bundle" in text
    after_answer = text[text.index(QUESTION) :]
    # the PostgreSQL rows load over several connections by default (sources/postgres/parallel_restore.py)
    for step in ("rows archivist_demo", "restore products", "restore storage archivist-app"):
        assert step in after_answer, f"no progress line for {step!r}:\n{after_answer}"
    assert re.search(r"verify the bundle .* [\d.]+ KiB of [\d.]+ KiB", text), text  # the verify bar knows its total
    # the demo data came back whole, and what the bundle does not hold is still there
    assert fingerprint(pg_settings, es_settings, storage_settings) == before
    assert "bystander" in before[0]


def test_replace_without_a_terminal_needs_yes(bundle_file, spec_env, pg_settings, es_settings, storage_settings):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    refused = archivist(spec_env, "simple-restore", str(bundle_file), "--mode", "replace")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "stdin is not a terminal" in refused.stderr and "add --yes" in refused.stderr
    assert QUESTION not in refused.stdout + refused.stderr
    assert fingerprint(pg_settings, es_settings, storage_settings) == before

    done = archivist(spec_env, "simple-restore", str(bundle_file), "--mode", "replace", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "counts match the bundle" in done.stdout and QUESTION not in done.stdout + done.stderr
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_progress_is_drawn_on_a_terminal_and_never_into_a_pipe(seeded, spec_env, tmp_path):
    code, printed = on_terminal(spec_env, "simple-backup", "--output", str(tmp_path / "tty"))
    text = plain(printed)
    assert code == 0, text
    for step in ("pg_dump archivist_demo", "export products", "storage archivist-app"):
        assert re.search(rf"{re.escape(step)}\s.*/s", text), f"no progress line for {step!r}:\n{text}"
    assert "━" in printed  # the bar itself

    (tmp_path / "pipe").mkdir()
    piped = archivist(spec_env, "simple-backup", "--output", str(tmp_path / "pipe"))
    assert piped.returncode == 0 and piped.stderr == ""
    assert "pg_dump" not in piped.stdout and "━" not in piped.stdout and "\x1b[" not in piped.stdout

    for quiet in ("--quiet", "--json"):
        code, printed = on_terminal(spec_env, "simple-backup", quiet, "--jobs", "postgres", "--output", str(tmp_path))
        assert code == 0 and "━" not in printed and "pg_dump archivist_demo" not in printed, printed
