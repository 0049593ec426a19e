"""Unit tests of how a bucket's clients are configured: the connection's config_kwargs laid over
archivist's botocore defaults, addressing as botocore resolves it for a connection (path-style
for a custom endpoint, virtual-hosted for AWS or when asked) and always path-style for the
variables, and the same choices carried to awscrt. No server is contacted."""

from __future__ import annotations

import json

import pytest
from botocore.config import Config

from archivist import config
from archivist.s3_settings import S3Settings
from archivist.transport import s3crt, s3io, s3session


def _connection(monkeypatch, conn_id: str, extra: dict) -> S3Settings:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "aws", "login": "AKIAUNIT", "password": "unit-secret", "extra": extra}),
    )
    return config.load_storage(conn_id, env={})


def test_the_connection_wins_and_dict_options_merge_key_by_key():
    merged = s3session.merged_config(
        {
            "retries": {"max_attempts": 5, "mode": "standard"},
            "connect_timeout": 5,
            "s3": {"payload_signing_enabled": False},
        },
        Config(retries={"max_attempts": 9}, connect_timeout=2, s3={"addressing_style": "virtual"}, read_timeout=7),
    )
    assert merged.retries == {"max_attempts": 9, "mode": "standard"}
    assert (merged.connect_timeout, merged.read_timeout) == (2, 7)
    assert merged.s3 == {"payload_signing_enabled": False, "addressing_style": "virtual"}


def test_no_connection_config_keeps_the_defaults():
    assert s3session.merged_config({"connect_timeout": 5}, None).connect_timeout == 5


def test_config_kwargs_reach_the_boto3_client(monkeypatch):
    settings = _connection(
        monkeypatch,
        "archivist_test_config",
        {
            "endpoint_url": "http://127.0.0.1:9000",
            "service_config": {"s3": {"bucket_name": "b"}},
            "config_kwargs": {
                "retries": {"total_max_attempts": 9},
                "connect_timeout": 2,
                "read_timeout": 33,
                "max_pool_connections": 40,
            },
        },
    )
    client_config = s3io.client(settings).meta.config
    assert client_config.retries == {"mode": "standard", "total_max_attempts": 9}
    assert (client_config.connect_timeout, client_config.read_timeout, client_config.max_pool_connections) == (
        2,
        33,
        40,
    )
    assert client_config.s3["payload_signing_enabled"] is False  # archivist's default kept beside the connection's


def test_archivist_defaults_when_the_connection_sets_none(monkeypatch):
    settings = _connection(
        monkeypatch,
        "archivist_test_plain",
        {"endpoint_url": "http://127.0.0.1:9000", "service_config": {"s3": {"bucket_name": "b"}}},
    )
    client_config = s3io.client(settings).meta.config
    assert client_config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert (client_config.connect_timeout, client_config.read_timeout) == (5, 60)
    assert "addressing_style" not in client_config.s3  # left to botocore, as the provider leaves it


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        # a custom endpoint: path-style, as botocore addresses it unless told otherwise
        ({"endpoint_url": "http://minio.internal:9000"}, "http://minio.internal:9000/app-files/"),
        (
            {"endpoint_url": "http://minio.internal:9000", "config_kwargs": {"s3": {"addressing_style": "virtual"}}},
            "http://app-files.minio.internal:9000/",
        ),
        (
            {
                "endpoint_url": "http://global.internal",
                "service_config": {"s3": {"endpoint_url": "http://s3.internal:9000"}},
                "config_kwargs": {"s3": {"addressing_style": "virtual"}},
            },
            "http://app-files.s3.internal:9000/",
        ),
        # AWS itself: virtual-hosted, unless the connection asks for path-style
        ({"region_name": "eu-west-1"}, "https://app-files.s3.eu-west-1.amazonaws.com/"),
        (
            {"region_name": "eu-west-1", "config_kwargs": {"s3": {"addressing_style": "path"}}},
            "https://s3.eu-west-1.amazonaws.com/app-files/",
        ),
    ],
    ids=["minio", "minio-virtual", "s3-service-endpoint-virtual", "aws", "aws-path"],
)
def test_a_connection_addresses_the_bucket_as_botocore_resolves_it(monkeypatch, extra, url):
    service_config = {"s3": {"bucket_name": "app-files", **extra.pop("service_config", {}).get("s3", {})}}
    settings = _connection(monkeypatch, "archivist_test_addressing", {**extra, "service_config": service_config})
    assert s3io.bucket_url(settings) == url
    style = s3io.client(settings).meta.config.s3.get("addressing_style")
    assert style == extra.get("config_kwargs", {}).get("s3", {}).get("addressing_style")


def test_the_variables_keep_path_style_even_for_aws():
    settings = config.s3_from_env({"S3_BUCKET_NAME": "app-files", "S3_REGION": "eu-west-1"}, "S3_")
    assert s3io.bucket_url(settings) == "https://s3.eu-west-1.amazonaws.com/app-files/"
    assert s3io.client(settings).meta.config.s3["addressing_style"] == "path"


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        ({"max_attempts": 5, "mode": "standard"}, 5),
        ({"total_max_attempts": 9}, 8),
        ({"total_max_attempts": 9, "max_attempts": 2}, 8),
        (None, 0),
    ],
)
def test_botocore_retries_become_awscrt_retries(retries, expected):
    assert s3crt.retries(retries) == expected


def test_verify_reaches_awscrt():
    assert s3crt.tls_options(None) is None and s3crt.tls_options(True) is None
    assert s3crt.tls_options(False) is not None


def test_a_proxy_keeps_every_request_on_botocore(monkeypatch):
    extra = {"service_config": {"s3": {"bucket_name": "b"}}, "endpoint_url": "http://127.0.0.1:9000"}
    assert s3crt.usable(_connection(monkeypatch, "archivist_test_direct", extra))
    proxied = {**extra, "config_kwargs": {"proxies": {"http": "http://proxy.internal:3128"}}}
    settings = _connection(monkeypatch, "archivist_test_proxied", proxied)
    assert not s3crt.usable(settings)
    assert s3io.client(settings).meta.config.proxies == {"http": "http://proxy.internal:3128"}
