"""Wrong passwords, unknown hosts, missing connections and buckets, read-only credentials.

Each must fail the check in seconds with a line that names the connection and what to
fix, and a backup started with it must not touch any existing bundle."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import boto3
import pytest

from archivist.errors import ArchivistError
from archivist.runner import backup, checks
from archivist.sources.base import DumpOptions
from archivist.transport.backup_bucket import BackupStore
from tests.faults.secrets_support import small_index
from tests.spec_support import SPEC_PREFIXES, archivist
from tests.support import dags_test

UNKNOWN_HOST = "no-such-host.invalid"


def conn_env(conn_id: str, **changes) -> dict[str, str]:
    """The connection's AIRFLOW_CONN_* JSON with some fields changed."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = json.loads(os.environ[name])
    extra_changes = changes.pop("extra", {})
    conn.update(changes)
    conn["extra"] = {**conn.get("extra", {}), **extra_changes}
    return {name: json.dumps(conn)}


def endpoint_on(host: str, conn_id: str) -> dict:
    extra = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["extra"]
    return {"extra": {"endpoint_url": extra["endpoint_url"].replace("127.0.0.1", host)}}


CASES = {
    "postgres wrong password": (
        ("archivist_postgres", {"password": "wrong-password"}),
        "database",
        "password authentication failed",
    ),
    "postgres unknown host": (("archivist_postgres", {"host": UNKNOWN_HOST}), "database", "cannot reach database"),
    "elasticsearch wrong password": (
        ("archivist_elasticsearch", {"password": "wrong-password"}),
        "elasticsearch",
        "unable to authenticate user [archivist] (401); check the user and password",
    ),
    "elasticsearch without a login": (
        ("archivist_elasticsearch", {"login": None, "password": None}),
        "elasticsearch",
        "the server requires a user and password (missing authentication credentials, 401); set the user and password",
    ),
    "elasticsearch unknown host": (
        ("archivist_elasticsearch", {"host": UNKNOWN_HOST}),
        "elasticsearch",
        f"cannot reach Elasticsearch at http://{UNKNOWN_HOST}",
    ),
    "storage wrong secret": (
        ("archivist_storage", {"password": "wrong-secret"}),
        "storage",
        "check the access key and secret",
    ),
    "storage unknown host": (("archivist_storage", "endpoint"), "storage", f"http://{UNKNOWN_HOST}:"),
    "backups wrong secret": (
        ("archivist_backups", {"password": "wrong-secret"}),
        "backup bucket",
        "check the access key and secret",
    ),
    "backups unknown host": (("archivist_backups", "endpoint"), "backup bucket", f"http://{UNKNOWN_HOST}:"),
    "backups bucket missing": (
        ("archivist_backups", {"extra": {"service_config": {"s3": {"bucket_name": "no-such-bucket"}}}}),
        "backup bucket",
        "the bucket does not exist",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_connection_fails_check_naming_it(case, monkeypatch, backups_settings):
    (conn_id, change), item, phrase = CASES[case]
    fields = endpoint_on(UNKNOWN_HOST, conn_id) if change == "endpoint" else change
    assert_check_and_backup_fail(conn_id, fields, item, phrase, monkeypatch, backups_settings)


def test_elasticsearch_user_without_privileges_fails_check_naming_it(es_user, monkeypatch, backups_settings):
    user = es_user("archivist-no-privileges", "no-privileges-pw")  # may log in, and nothing else
    assert_check_and_backup_fail(
        "archivist_elasticsearch",
        {"login": user, "password": "no-privileges-pw"},
        "elasticsearch",
        f"user '{user}' may not read Elasticsearch at",
        monkeypatch,
        backups_settings,
    )


def assert_check_and_backup_fail(
    conn_id: str, fields: dict, item: str, phrase: str, monkeypatch, backups_settings
) -> None:
    """With `fields` changed in the connection, the check fails in seconds on `item` alone with
    `phrase` and the connection's name, and a backup fails without touching any bundle."""
    for name, value in conn_env(conn_id, **fields).items():
        monkeypatch.setenv(name, value)
    store = BackupStore(backups_settings)
    before = {b.key.name for b in store.list_bundles()}

    started = time.monotonic()
    results = checks.run_checks()
    failed = [r for r in results if not r.ok]
    assert [r.item for r in failed] == [item], [r.line() for r in results]
    assert phrase in failed[0].detail and f"connection '{conn_id}'" in failed[0].detail, failed[0].detail
    assert time.monotonic() - started < 30, "a bad connection must fail the check in seconds"

    with pytest.raises(ArchivistError):
        backup.run_backup()
    assert {b.key.name for b in store.list_bundles()} == before


ES_LOGIN_REFUSED = (
    "cannot log in to Elasticsearch at {url} (connection 'archivist_elasticsearch') as user '{user}': "
    "unable to authenticate user [{user}] (401); check the user and password"
)


@pytest.fixture
def probe_index(es_client):
    with small_index(es_client, "bad-config-probe", 20) as name:
        yield name


def test_wrong_elasticsearch_password_stops_the_backup_dag_the_backup_and_restore_commands(
    probe_index, es_client, es_settings, backups_settings
):
    """The DAG fails at `check` before any job starts; `archivist backup` and `archivist restore`
    (empty and replace mode) exit 2 with the same line; no bundle and no index is touched."""
    key = backup.run_backup(jobs=("elasticsearch",), options=DumpOptions(probe_index))["key"]  # with the right password
    store = BackupStore(backups_settings)
    before = {b.key.name: (b.size, b.last_modified) for b in store.list_bundles()}
    index_uuid = es_client.indices.get_settings(index=probe_index)[probe_index]["settings"]["index"]["uuid"]
    wrong = conn_env("archivist_elasticsearch", password="wrong-password")
    message = ES_LOGIN_REFUSED.format(url=es_settings.url, user=es_settings.user)

    run = dags_test("archivist_backup", {"index_pattern": probe_index}, env=wrong)
    output = run.stdout + run.stderr
    assert run.returncode != 0 and message in output, output[-3000:]
    assert "starting task_id=elasticsearch" not in output, "a job ran although check failed"

    env = {**{k: v for k, v in os.environ.items() if not k.startswith(SPEC_PREFIXES)}, **wrong}
    for args in (
        ["backup", "--jobs", "elasticsearch"],
        ["restore", key],
        ["restore", key, "--mode", "replace", "--yes", "--indices", probe_index],
    ):
        run = archivist(env, *args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert message in run.stderr, (args, run.stderr)

    assert {b.key.name: (b.size, b.last_modified) for b in store.list_bundles()} == before
    assert es_client.indices.get_settings(index=probe_index)[probe_index]["settings"]["index"]["uuid"] == index_uuid
    assert es_client.count(index=probe_index)["count"] == 20


def test_missing_connection_id_is_named(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_POSTGRES_CONN_ID", "archivist_pg_typo")
    failed = [r for r in checks.run_checks() if not r.ok]
    assert len(failed) == 1
    assert "connection 'archivist_pg_typo' is not defined" in failed[0].detail
    assert "AIRFLOW_CONN_ARCHIVIST_PG_TYPO" in failed[0].detail


def test_read_only_backup_credentials_are_refused_before_any_work(backups_settings, seeded):
    sts = boto3.client(
        "sts",
        endpoint_url=backups_settings.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=backups_settings.access_key_id,
        aws_secret_access_key=backups_settings.secret_access_key,
    )
    read_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Resource": ["arn:aws:s3:::*"],
                "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
            }
        ],
    }
    creds = sts.assume_role(
        RoleArn="arn:xxx:xxx:xxx:xxxx", RoleSessionName="read-only", Policy=json.dumps(read_only), DurationSeconds=900
    )["Credentials"]
    limited = dataclasses.replace(
        backups_settings,
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        source="connection 'archivist_backups'",
        conn_id=None,  # these keys, not the connection's session
    )
    store = BackupStore(limited)
    store.list_bundles()  # reading works
    with pytest.raises(ArchivistError, match="may read but not write: grant s3:PutObject"):
        store.check()
    assert (
        BackupStore(backups_settings).s3.list_objects_v2(Bucket=limited.bucket, Prefix="staging/").get("KeyCount") == 0
    )


@pytest.mark.parametrize("value, phrase", [("5", "the minimum is 7"), ("abc", "whole number"), ("", "is empty")])
def test_backups_kept_is_refused_before_anything_is_deleted(value, phrase, monkeypatch, backups_settings):
    monkeypatch.setenv("BACKUPS_KEPT", value)
    store = BackupStore(backups_settings)
    before = {b.key.name for b in store.list_bundles()}
    with pytest.raises(ArchivistError, match=phrase):
        backup.run_backup()
    failed = [r for r in checks.run_checks() if not r.ok]
    assert [r.item for r in failed] == ["BACKUPS_KEPT"] and phrase in failed[0].detail
    assert {b.key.name for b in store.list_bundles()} == before
