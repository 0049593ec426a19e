"""Unit tests of archivist.s3_settings and config's S3 loaders: an aws connection read as the
Amazon provider reads it (per-service endpoints, role_arn, the bucket in service_config), in
the JSON and URI forms its documentation gives, and the variables without any Airflow import.
No server is contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest

from archivist import config
from archivist.errors import ConfigurationError
from archivist.s3_settings import S3Settings, s3_from_aws_connection

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROLE = "arn:aws:iam::112223334444:role/archivist-backups"


def _wrapper(extra: dict, login: str | None = "AKIAIOSFODNN7EXAMPLE", password: str | None = SECRET):
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    return AwsConnectionWrapper.from_connection_metadata(
        conn_id="archivist_backups", login=login, password=password, extra=extra
    )


def test_the_s3_service_endpoint_wins_over_the_connection_endpoint():
    settings = s3_from_aws_connection(
        _wrapper(
            {
                "endpoint_url": "https://global.example",
                "region_name": "eu-west-1",
                "service_config": {
                    "s3": {"bucket_name": "backups", "endpoint_url": "https://s3.example"},
                    "sts": {"endpoint_url": "https://sts.example"},
                },
            }
        )
    )
    assert (settings.bucket, settings.endpoint_url, settings.region_name) == (
        "backups",
        "https://s3.example",
        "eu-west-1",
    )
    assert (settings.access_key_id, settings.secret_access_key) == ("AKIAIOSFODNN7EXAMPLE", SECRET)
    assert settings.conn_id == "archivist_backups"
    assert settings.source == "connection 'archivist_backups'"


def test_a_null_s3_endpoint_means_aws_as_the_provider_documents():
    settings = s3_from_aws_connection(
        _wrapper(
            {"endpoint_url": "http://minio:9000", "service_config": {"s3": {"bucket_name": "b", "endpoint_url": None}}}
        )
    )
    assert settings.endpoint_url is None


def test_the_role_is_kept_and_named_when_credentials_are_refused():
    settings = s3_from_aws_connection(
        _wrapper({"role_arn": ROLE, "region_name": "ap-southeast-2", "service_config": {"s3": {"bucket_name": "b"}}})
    )
    assert settings.role_arn == ROLE
    assert ROLE in settings.credentials_hint
    assert "session token" in S3Settings("b", session_token="t").credentials_hint


def test_keys_from_the_extra_and_a_top_level_bucket_name():
    settings = s3_from_aws_connection(
        _wrapper(
            {"aws_access_key_id": "AKIAEXTRA", "aws_secret_access_key": SECRET, "bucket_name": "flat"},
            login=None,
            password=None,
        )
    )
    assert (settings.bucket, settings.access_key_id, settings.secret_access_key) == ("flat", "AKIAEXTRA", SECRET)


def test_a_connection_without_bucket_is_refused_with_the_setting_to_add():
    with pytest.raises(ConfigurationError, match=r"connection 'archivist_backups' names no bucket.*service_config"):
        s3_from_aws_connection(_wrapper({"service_config": {"s3": None}}))


def test_any_change_to_the_connection_makes_different_settings():
    extra = {"service_config": {"s3": {"bucket_name": "b"}}}
    one = s3_from_aws_connection(_wrapper(extra))
    assert one == s3_from_aws_connection(_wrapper(extra))
    assert one != s3_from_aws_connection(_wrapper({**extra, "config_kwargs": {"connect_timeout": 3}}))
    assert one != s3_from_aws_connection(_wrapper(extra, password=SECRET + "x"))
    assert hash(one) == hash(s3_from_aws_connection(_wrapper(extra)))


def test_repr_shows_the_role_but_no_secret_or_digest():
    settings = s3_from_aws_connection(
        _wrapper({"role_arn": ROLE, "aws_session_token": "FwoGZXIvYXdzEXAMPLETOKEN", "bucket_name": "b"})
    )
    text = repr(settings)
    assert ROLE in text
    for hidden in (SECRET, "FwoGZXIvYXdzEXAMPLETOKEN", settings.connection_digest):
        assert hidden not in text


# --- the forms of the provider's documentation, through config's loaders --------------------------


def test_the_documented_uri_form(monkeypatch):
    uri = (
        f"aws://AKIAIOSFODNN7EXAMPLE:{quote(SECRET, safe='')}@/?region_name=eu-central-1"
        f"&endpoint_url=http%3A%2F%2F127.0.0.1%3A9000&bucket_name=app-files&key_prefix=stack-a&role_arn={quote(ROLE)}"
    )
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_URI", uri)
    settings = config.load_backups("archivist_test_uri", env={})
    assert (settings.bucket, settings.endpoint_url, settings.region_name, settings.prefix) == (
        "app-files",
        "http://127.0.0.1:9000",
        "eu-central-1",
        "stack-a/",
    )
    assert (settings.access_key_id, settings.secret_access_key) == ("AKIAIOSFODNN7EXAMPLE", SECRET)
    assert settings.role_arn == ROLE


def test_the_documented_json_form_with_a_role(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_JSON",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAIOSFODNN7EXAMPLE",
                "password": SECRET,
                "extra": {
                    "role_arn": ROLE,
                    "region_name": "ap-southeast-2",
                    "service_config": {"s3": {"bucket_name": "app-files"}},
                },
            }
        ),
    )
    settings = config.load_storage("archivist_test_json", env={})
    assert (settings.bucket, settings.role_arn, settings.region_name, settings.endpoint_url) == (
        "app-files",
        ROLE,
        "ap-southeast-2",
        None,
    )


def test_config_kwargs_the_provider_refuses_name_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_BAD_CONFIG",
        json.dumps({"conn_type": "aws", "extra": {"bucket_name": "b", "config_kwargs": {"no_such_option": 1}}}),
    )
    with pytest.raises(ConfigurationError, match="connection 'archivist_test_bad_config' has an extra"):
        config.load_storage("archivist_test_bad_config", env={})


def test_an_unknown_assume_role_method_names_the_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_BAD_METHOD",
        json.dumps({"conn_type": "aws", "extra": {"bucket_name": "b", "role_arn": ROLE, "assume_role_method": "x"}}),
    )
    with pytest.raises(ConfigurationError, match="archivist_test_bad_method"):
        config.load_storage("archivist_test_bad_method", env={})


# --- the variables need no Airflow --------------------------------------------------------------


def test_the_variables_make_clients_without_importing_airflow():
    """The spec's S3_* variables, in a process where importing Airflow fails: settings, a boto3
    client (path-style, static keys) and the awscrt client are all made."""
    script = """
import sys
class NoAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError("Airflow is blocked in this test")
sys.meta_path.insert(0, NoAirflow())
from archivist import config
from archivist.transport import s3io, s3crt
settings = config.load_storage()
s3 = s3io.client(settings)
s3crt.NativePuts(settings, 5 * 1024 * 1024)
assert s3.meta.config.s3["addressing_style"] == "path", s3.meta.config.s3
assert s3._request_signer._credentials.access_key == "AKIAVARIABLES"
assert s3io.bucket_url(settings) == "https://s3.example:9000/app-files/", s3io.bucket_url(settings)
assert not [m for m in sys.modules if m.split(".")[0] == "airflow"]
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "S3_", "BACKUP_"))}
    env.update(
        S3_BUCKET_NAME="app-files",
        S3_ACCESS_KEY_ID="AKIAVARIABLES",
        S3_SECRET_ACCESS_KEY=SECRET,
        S3_ENDPOINT_URL="https://s3.example:9000",
        PYTHONPATH=os.path.dirname(os.path.dirname(config.__file__)),  # include/, as pytest has it
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
