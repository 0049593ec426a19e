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

from archivist import backup, checks, config
from archivist.errors import ArchivistError
from archivist.store import BackupStore

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
    "postgres wrong password": (("archivist_postgres", {"password": "wrong-password"}),
                                "database", "password authentication failed"),
    "postgres unknown host": (("archivist_postgres", {"host": UNKNOWN_HOST}), "database", "cannot reach database"),
    "elasticsearch unknown host": (("archivist_elasticsearch", {"host": UNKNOWN_HOST}), "elasticsearch",
                                   f"cannot reach Elasticsearch at http://{UNKNOWN_HOST}"),
    "storage wrong secret": (("archivist_storage", {"password": "wrong-secret"}), "storage",
                             "check the access key and secret"),
    "storage unknown host": (("archivist_storage", "endpoint"), "storage", f"http://{UNKNOWN_HOST}:"),
    "backups wrong secret": (("archivist_backups", {"password": "wrong-secret"}), "backup bucket",
                             "check the access key and secret"),
    "backups unknown host": (("archivist_backups", "endpoint"), "backup bucket", f"http://{UNKNOWN_HOST}:"),
    "backups bucket missing": (("archivist_backups", {"extra": {"service_config": {"s3": {"bucket_name": "no-such-bucket"}}}}),
                               "backup bucket", "the bucket does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_connection_fails_check_naming_it(case, monkeypatch, backups_settings):
    (conn_id, change), item, phrase = CASES[case]
    fields = endpoint_on(UNKNOWN_HOST, conn_id) if change == "endpoint" else change
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


def test_missing_connection_id_is_named(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_POSTGRES_CONN_ID", "archivist_pg_typo")
    failed = [r for r in checks.run_checks() if not r.ok]
    assert len(failed) == 1
    assert "connection 'archivist_pg_typo' is not defined" in failed[0].detail
    assert "AIRFLOW_CONN_ARCHIVIST_PG_TYPO" in failed[0].detail


def test_read_only_backup_credentials_are_refused_before_any_work(backups_settings, seeded):
    sts = boto3.client("sts", endpoint_url=backups_settings.endpoint_url, region_name="us-east-1",
                       aws_access_key_id=backups_settings.access_key_id,
                       aws_secret_access_key=backups_settings.secret_access_key)
    read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": ["arn:aws:s3:::*"],
                 "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]}]}
    creds = sts.assume_role(RoleArn="arn:xxx:xxx:xxx:xxxx", RoleSessionName="read-only",
                            Policy=json.dumps(read_only), DurationSeconds=900)["Credentials"]
    limited = dataclasses.replace(backups_settings, access_key_id=creds["AccessKeyId"],
                                  secret_access_key=creds["SecretAccessKey"], session_token=creds["SessionToken"],
                                  source="connection 'archivist_backups'")
    store = BackupStore(limited)
    store.list_bundles()  # reading works
    with pytest.raises(ArchivistError, match="may read but not write: grant s3:PutObject"):
        store.check()
    assert BackupStore(backups_settings).s3.list_objects_v2(Bucket=limited.bucket, Prefix="staging/").get("KeyCount") == 0


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
