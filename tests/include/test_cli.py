"""The `archivist` command, run as a user of the original tool runs it: the spec's
environment variables set, no Airflow connection in sight, against the real servers."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import tarfile
import time

from archivist.transport import s3io
from demo.fingerprint import stack_snapshot as fingerprint
from demo.fingerprint import wipe_bucket, wipe_elasticsearch, wipe_postgres
from tests.spec_support import SPEC_PREFIXES, archivist
from tests.support import ROOT

COMMANDS = [
    "backup",
    "check",
    "drill",
    "info",
    "list",
    "restore",
    "rotate",
    "simple-backup",
    "simple-check",
    "simple-restore",
    "unlock",
    "verify",
]
KEY_RE = re.compile(r"^key\s+(bundle-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{11})$", re.M)


def assert_one_error_line(run: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert run.returncode == code, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def wipe(pg, es, s3):
    wipe_postgres(pg)
    wipe_elasticsearch(es)
    wipe_bucket(s3)


def assert_same(after, before):
    assert after[0] == before[0], "pg_dump differs after the round trip"
    assert after[1] == before[1], "Elasticsearch documents, mappings, aliases or templates differ"
    assert after[2] == before[2], "objects, content types or metadata differ"


def make_backup(spec_env) -> str:
    run = archivist(spec_env, "backup")
    assert run.returncode == 0, run.stdout + run.stderr
    return KEY_RE.search(run.stdout).group(1)


def test_help_lists_the_spec_commands_and_the_exit_codes(spec_env):
    run = archivist(spec_env, "--help")
    assert run.returncode == 0, run.stderr
    listed = re.findall(r"^  ([a-z-]+)\s{2,}\S", run.stdout.split("Commands:")[1], re.M)
    assert listed == COMMANDS
    assert "Entrypoint for all archivist commands." in run.stdout
    assert "Performs a full system backup." in run.stdout
    for code, meaning in (
        ("2", "bad configuration"),
        ("3", "unreachable"),
        ("4", "verification failure"),
        ("5", "backup not found"),
        ("6", "not empty"),
        ("7", "failed"),
        ("8", "holds the lock"),
    ):
        assert re.search(rf"^\s+{code}\s+.*{meaning}", run.stdout, re.M), f"exit code {code} is not documented"
    module = subprocess.run(
        [os.path.join(os.environ["ARCHIVIST_ROOT"], ".local/venv/bin/python"), "-m", "archivist", "--help"],
        capture_output=True,
        text=True,
        env=spec_env,
        cwd="/",
    )
    assert module.returncode == 0 and module.stdout == run.stdout


def test_info_shows_every_option_and_its_source_but_no_secret(spec_env):
    secrets = {
        "DATABASE_PASSWORD": "pg-Zq7-unprintable",
        "ELASTICSEARCH_PASSWORD": "es-Kx3-unprintable",
        "S3_SECRET_ACCESS_KEY": "s3-Wm9-unprintable",
        "BACKUP_SECRET_ACCESS_KEY": "bk-Tr4-unprintable",
    }
    env = {
        **spec_env,
        **secrets,
        "ELASTICSEARCH_USER": "elastic",
        "ELASTICSEARCH_PORT": "not-a-port",
        "CRON_SCHEDULE": "30 2 * * *",
    }
    run = archivist(env, "info")
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    for secret in secrets.values():
        assert secret not in out
    rows = {line.split()[0]: line for line in run.stdout.splitlines()}
    for name in (
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "DATABASE_USER",
        "DATABASE_PASSWORD",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_BUCKET_NAME",
        "S3_ENDPOINT_URL",
        "BACKUP_ACCESS_KEY_ID",
        "BACKUP_SECRET_ACCESS_KEY",
        "BACKUP_BUCKET_NAME",
        "BACKUP_ENDPOINT_URL",
        "BACKUPS_KEPT",
        "NAMESPACE",
        "CRON_SCHEDULE",
    ):
        assert name in rows, f"{name} missing from info:\n{run.stdout}"
    assert "****" in rows["DATABASE_PASSWORD"] and "(environment)" in rows["DATABASE_PASSWORD"]
    assert spec_env["DATABASE_HOST"] in rows["DATABASE_HOST"] and "(environment)" in rows["DATABASE_HOST"]
    assert "global-namespace" in rows["NAMESPACE"] and "30 2 * * *" in rows["CRON_SCHEDULE"]
    # The broken part says why on its own line, and the parts after it still print.
    assert "ELASTICSEARCH_PORT must be a port number" in rows["ELASTICSEARCH_*"]
    off = archivist({**env, "ARCHIVIST_SCHEDULE": "off"}, "info")
    assert "off (triggered runs only)" in next(x for x in off.stdout.splitlines() if x.startswith("CRON_SCHEDULE"))

    from_connections = archivist({k: v for k, v in os.environ.items() if not k.startswith(SPEC_PREFIXES)}, "info")
    assert from_connections.returncode == 0, from_connections.stderr
    assert "(connection 'archivist_postgres')" in from_connections.stdout
    assert spec_env["DATABASE_PASSWORD"] not in from_connections.stdout + from_connections.stderr
    assert spec_env["S3_SECRET_ACCESS_KEY"] not in from_connections.stdout + from_connections.stderr


def test_check_and_simple_check_pass_from_the_spec_variables(spec_env):
    run = archivist(spec_env, "check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line.split(":")[0] for line in run.stdout.splitlines()] == [
        "ok   BACKUPS_KEPT",
        "ok   database",
        "ok   elasticsearch",
        "ok   storage",
        "ok   backup bucket",
    ]
    simple = archivist({k: v for k, v in spec_env.items() if not k.startswith("BACKUP_")}, "simple-check")
    assert simple.returncode == 0, simple.stdout + simple.stderr
    assert "backup bucket" not in simple.stdout and simple.stdout.count("ok   ") == 3


def test_check_refuses_fewer_than_seven_backups_kept(spec_env):
    run = archivist({**spec_env, "BACKUPS_KEPT": "5"}, "check")
    assert_one_error_line(run, 2, "BACKUPS_KEPT")
    assert "FAIL BACKUPS_KEPT" in run.stdout and "minimum is 7" in run.stdout


def test_check_names_the_database_on_a_wrong_password_or_an_unreachable_server(spec_env):
    run = archivist({**spec_env, "DATABASE_PASSWORD": "wrong-Pw-8812"}, "check")
    assert_one_error_line(run, 2, "database")
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and f"database '{spec_env['DATABASE_NAME']}'" in failed[0], run.stdout
    assert "DATABASE_* variables" in failed[0] and "wrong-Pw-8812" not in run.stdout + run.stderr

    down = archivist({**spec_env, "ELASTICSEARCH_PORT": "1"}, "simple-check", "--jobs", "elasticsearch")
    assert_one_error_line(down, 3, "elasticsearch")
    assert "cannot reach Elasticsearch at http://127.0.0.1:1" in down.stdout


def test_simple_backup_then_simple_restore_round_trips_the_demo_stack(
    seeded, spec_env, pg_settings, es_settings, storage_settings, tmp_path
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    made = archivist(
        {k: v for k, v in spec_env.items() if not k.startswith("BACKUP_")}, "simple-backup", "--output", str(tmp_path)
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stderr == "", "not on a terminal, a backup logs only warnings"
    key = KEY_RE.search(made.stdout).group(1)
    path = tmp_path / f"{key}.tgz"
    assert path.is_file() and f"file     {path}" in made.stdout

    checked = archivist(spec_env, "verify", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "format_version 1" in checked.stdout and "every checksum matches" in checked.stdout

    refused = archivist(spec_env, "simple-restore", str(path))  # mode empty, and the targets hold the demo data
    assert_one_error_line(refused, 6, "already")

    wipe(pg_settings, es_settings, storage_settings)
    restored = archivist(spec_env, "-v", "simple-restore", str(path))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "counts match the bundle" in restored.stdout
    assert "archivist.progress: restore products: 200 docs" in restored.stderr  # -v logs progress
    assert_same(fingerprint(pg_settings, es_settings, storage_settings), before)


def test_backup_list_verify_and_restore_from_the_backup_bucket(
    seeded, spec_env, pg_settings, es_settings, storage_settings
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    key = make_backup(spec_env)

    listed = archivist(spec_env, "list", "--json", "--meta")
    assert listed.returncode == 0, listed.stderr
    rows = {row["key"]: row for row in json.loads(listed.stdout)}
    assert rows[key]["format_version"] == 1 and rows[key]["size"] > 0
    text = archivist(spec_env, "list")
    assert text.returncode == 0 and any(line.startswith(f"{key}  ") for line in text.stdout.splitlines())

    checked = archivist(spec_env, "verify", key)
    assert checked.returncode == 0 and f"verified {key}" in checked.stdout, checked.stdout + checked.stderr

    dry = archivist(spec_env, "restore", key, "--dry-run", "--indices", "products,logs-*")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "['logs-demo-2026.11', 'products']" in dry.stdout and "nothing was written" in dry.stdout

    wipe(pg_settings, es_settings, storage_settings)
    restored = archivist(spec_env, "restore", key, "--mode", "replace", "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert_same(fingerprint(pg_settings, es_settings, storage_settings), before)


def test_errors_are_one_line_with_the_documented_exit_codes(spec_env, tmp_path):
    missing = archivist(spec_env, "restore", "bundle-2000-01-01-aaaaaaaaaaa")
    assert_one_error_line(missing, 5, "no bundle named 'bundle-2000-01-01-aaaaaaaaaaa'")
    damaged = tmp_path / "bundle-2000-01-01-bbbbbbbbbbb.tgz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00 certainly not a whole gzip stream")
    assert_one_error_line(archivist(spec_env, "verify", str(damaged)), 4, "damaged or truncated")
    assert_one_error_line(archivist(spec_env, "simple-restore", str(tmp_path / "nothing.tgz")), 5, "no bundle file")
    assert_one_error_line(archivist(spec_env, "restore", "latest", "--jobs", "mysql"), 2, "unknown job(s) mysql")
    no_bucket = {k: v for k, v in spec_env.items() if not k.startswith("BACKUP_")}
    assert_one_error_line(archivist(no_bucket, "list"), 2, "archivist_backups")  # no variables, no connection


def test_a_bundle_made_by_the_command_restores_through_the_restore_dag(
    seeded, spec_env, pg_settings, es_settings, storage_settings
):
    before = fingerprint(pg_settings, es_settings, storage_settings)
    key = make_backup(spec_env)
    wipe(pg_settings, es_settings, storage_settings)

    airflow_env = {k: v for k, v in os.environ.items() if not k.startswith(SPEC_PREFIXES)}  # the DAG's connections
    subprocess.run(
        ["airflow", "dags", "pause", "archivist_restore"], capture_output=True, cwd=ROOT, env=airflow_env, timeout=120
    )
    run = subprocess.run(
        ["airflow", "dags", "test", "archivist_restore", "-c", json.dumps({"key": key, "mode": "replace"})],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=airflow_env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert_same(fingerprint(pg_settings, es_settings, storage_settings), before)


def test_rotate_keeps_the_newest_and_says_what_it_deletes(spec_env, scratch_bucket):
    """`archivist rotate` in a bucket of its own: nine bundles (by when the bucket received them),
    seven kept; --dry-run deletes nothing, --json is parsed, fewer than 7 is refused."""
    env = {**spec_env, "BACKUP_BUCKET_NAME": scratch_bucket.bucket}
    s3 = s3io.client(scratch_bucket)
    keys = [f"bundle-2026-11-{day:02d}-rotate{day:05d}" for day in range(1, 10)]
    for key in keys:  # one after another, so each was received later than the one before
        s3.put_object(Bucket=scratch_bucket.bucket, Key=f"{key}.tgz", Body=b"not read by rotation")
        time.sleep(1.1)  # S3 keeps Last-Modified to the second; rotation orders by it
    s3.put_object(Bucket=scratch_bucket.bucket, Key="notes.txt", Body=b"not a bundle: never rotated")

    preview = archivist(env, "rotate", "--keep", "7", "--dry-run", "--json")
    assert preview.returncode == 0, preview.stderr
    planned = json.loads(preview.stdout)
    assert planned["keep"] == 7 and planned["dry_run"] is True
    assert sorted(row["key"] for row in planned["deleted"]) == keys[:2]  # the two received first
    assert len(_objects(s3, scratch_bucket.bucket)) == 10

    done = archivist(env, "rotate", "--keep", "7")
    assert done.returncode == 0, done.stderr
    assert f"kept the newest 7 bundle(s) in bucket '{scratch_bucket.bucket}'; deleted 2" in done.stdout
    assert _objects(s3, scratch_bucket.bucket) == sorted([f"{k}.tgz" for k in keys[2:]] + ["notes.txt"])

    refused = archivist(env, "rotate", "--keep", "3")
    assert_one_error_line(refused, 2, "--keep 3 is below the minimum of 7", "nothing was deleted")
    assert len(_objects(s3, scratch_bucket.bucket)) == 8


def test_rotate_by_the_calendar_says_which_rule_keeps_each_bundle(spec_env, scratch_bucket):
    """Ten weeks of bundles, one every other day: the dry run lists each kept bundle with its
    rules, the options win over the variables, and a bad count is refused naming the option."""
    env = {**spec_env, "BACKUP_BUCKET_NAME": scratch_bucket.bucket, "BACKUPS_KEPT_WEEKLY": "2"}
    s3 = s3io.client(scratch_bucket)
    first = dt.date(2026, 8, 3)  # a Monday
    keys = [f"bundle-{first + dt.timedelta(days=d)}-cal{d:08d}" for d in range(0, 70, 2)]
    for key in keys:  # the same second for many: rotation then orders by the name's date
        s3.put_object(Bucket=scratch_bucket.bucket, Key=f"{key}.tgz", Body=b"not read by rotation")

    preview = archivist(env, "rotate", "--keep", "7", "--keep-monthly", "3", "--dry-run", "--json")
    assert preview.returncode == 0, preview.stderr
    planned = json.loads(preview.stdout)
    assert planned["policy"] == {"last": 7, "daily": 0, "weekly": 2, "monthly": 3, "yearly": 0}
    reasons = {row["key"]: row["reasons"] for row in planned["kept"]}
    newest = keys[-1]  # 2026-10-10, a Saturday
    assert reasons[newest] == ["last 7", "weekly 2", "monthly 3"]
    assert reasons["bundle-2026-10-04-cal00000062"] == ["last 7", "weekly 2"]  # Sunday of the week before
    assert reasons["bundle-2026-09-30-cal00000058"] == ["last 7", "monthly 3"]
    assert reasons["bundle-2026-08-31-cal00000028"] == ["monthly 3"]
    assert len(reasons) == 8
    assert [row["key"] for row in planned["deleted"]] == [k for k in reversed(keys) if k not in reasons]
    assert len(_objects(s3, scratch_bucket.bucket)) == len(keys)

    text = archivist(env, "rotate", "--keep", "7", "--keep-monthly", "3", "--dry-run")
    assert "kept the newest 7 bundle(s) and by the calendar (weekly 2, monthly 3)" in text.stdout
    assert re.search(r"keep +bundle-2026-08-31-cal00000028 .* monthly 3", text.stdout), text.stdout

    refused = archivist(env, "rotate", "--keep-daily", "-1")
    assert_one_error_line(refused, 2, "--keep-daily is -1")
    assert len(_objects(s3, scratch_bucket.bucket)) == len(keys)


def _objects(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_backup_options_choose_the_indices_and_what_to_do_with_closed_or_sourceless_ones(spec_env, es_client, tmp_path):
    prefix = f"cli-opt-{os.getpid()}"
    try:
        es_client.index(index=f"{prefix}-live", id="1", document={"n": 1}, refresh=True)
        es_client.index(index=f"{prefix}-old", id="1", document={"n": 2}, refresh=True)
        es_client.indices.close(index=f"{prefix}-old")
        es_client.indices.create(index=f"{prefix}-raw", mappings={"_source": {"enabled": False}})
        args = ("simple-backup", "--jobs", "elasticsearch", "--index-pattern", f"{prefix}-*", "-o", str(tmp_path))
        refused = archivist(spec_env, *args)
        assert_one_error_line(refused, 7, f"are closed and cannot be read: {prefix}-old")
        made = archivist(spec_env, *args, "--closed-indices", "open", "--mappings-only", f"{prefix}-raw")
        assert made.returncode == 0, made.stdout + made.stderr
        (path,) = tmp_path.iterdir()
        with tarfile.open(path) as tar:
            indices = next(m for m in tar.getmembers() if "/indices-" in m.name)
            definitions = json.load(tar.extractfile(indices))
        assert definitions[f"{prefix}-old"]["state"] == "close"
        assert "_source" in definitions[f"{prefix}-raw"]["documents_omitted"]
        assert "state" not in definitions[f"{prefix}-live"]
        assert (
            es_client.cluster.state(metric="metadata", index=f"{prefix}-old")["metadata"]["indices"][f"{prefix}-old"][
                "state"
            ]
            == "close"
        ), "the backup left the closed index open"
    finally:
        es_client.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
