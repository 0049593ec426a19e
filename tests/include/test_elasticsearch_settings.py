"""Unit tests of archivist.elasticsearch_settings: an Elasticsearch connection read as the provider
documents it (the scheme in the schema field; URI and JSON, parsed by Airflow's own Connection),
the client's TLS, compression and API-key extras, the ELASTICSEARCH_* variables, and the client
arguments every archivist client is made with. Nothing configured is dropped without a word."""

from __future__ import annotations

import base64
import json

import pytest
from airflow.sdk import Connection

from archivist import config
from archivist.elasticsearch_settings import (
    ElasticsearchSettings,
    elasticsearch_from_connection,
    elasticsearch_from_env,
)
from archivist.errors import ConfigurationError
from archivist.sources.elasticsearch import cluster

SECRET = "es-s3cr3t-Pa55-do-not-log"
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="


@pytest.fixture
def ca_file(tmp_path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_the_provider_uri_puts_the_scheme_in_the_schema_field():
    # The provider's own example, with the https a production cluster has.
    conn = Connection.from_uri(f"elasticsearch://elastic:{SECRET}@es.example.com:9243/https", conn_id="es")
    settings = elasticsearch_from_connection(conn)
    assert settings.url == "https://es.example.com:9243" and settings.scheme == "https"
    assert (settings.user, settings.password, settings.verify_certs) == ("elastic", SECRET, True)
    assert SECRET not in repr(settings)


def test_the_uri_carries_the_client_extras_as_its_query(ca_file):
    conn = Connection.from_uri(
        f"elasticsearch://elastic:{SECRET}@es.example.com:9243/https"
        f"?ca_certs={ca_file.replace('/', '%2F')}&verify_certs=true&http_compress=true&timeout=300",
        conn_id="es",
    )
    settings = elasticsearch_from_connection(conn)
    assert (settings.ca_certs, settings.verify_certs, settings.http_compress) == (ca_file, True, True)
    assert settings.request_timeout == 300.0
    assert settings.client_options() == {
        "http_compress": True,
        "basic_auth": ("elastic", SECRET),
        "verify_certs": True,
        "ca_certs": ca_file,
    }


def test_json_with_every_tls_extra(tmp_path, ca_file):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("cert")
    key.write_text("key")
    conn = Connection.from_json(
        json.dumps(
            {
                "conn_type": "elasticsearch",
                "host": "es.example.com",
                "port": 9243,
                "schema": "https",
                "extra": {
                    "verify_certs": True,
                    "ca_certs": ca_file,
                    "client_cert": str(cert),
                    "client_key": str(key),
                    "ssl_assert_fingerprint": "AB:CD",
                    "http_compress": False,
                    "api_key": API_KEY,
                    "fetch_size": 1000,  # the SQL hook's, not the client's
                },
            }
        ),
        conn_id="es",
    )
    settings = elasticsearch_from_connection(conn)
    assert settings.client_options() == {
        "http_compress": False,
        "api_key": API_KEY,
        "verify_certs": True,
        "ca_certs": ca_file,
        "client_cert": str(cert),
        "client_key": str(key),
        "ssl_assert_fingerprint": "AB:CD",
    }
    assert API_KEY not in repr(settings) and API_KEY not in str(settings)


def test_an_api_key_pair_is_encoded_as_the_client_sends_it():
    conn = Connection(
        conn_id="es", conn_type="elasticsearch", host="es", schema="https", extra=json.dumps({"api_key": ["id", "k"]})
    )
    assert elasticsearch_from_connection(conn).api_key == base64.b64encode(b"id:k").decode()


def test_verify_certs_false_from_a_uri_is_false():
    conn = Connection.from_uri("elasticsearch://es.example.com:9243/https?verify_certs=False", conn_id="es")
    assert elasticsearch_from_connection(conn).client_options()["verify_certs"] is False


@pytest.mark.parametrize(
    ("host", "schema", "extra", "url"),
    [
        ("es", None, {}, "http://es:9200"),
        ("es", "http", {}, "http://es:9200"),
        ("https://es", None, {}, "https://es:9200"),
        ("es", None, {"scheme": "https"}, "https://es:9200"),  # the shape older archivist connections had
        ("es", "HTTPS", {"scheme": "http"}, "https://es:9200"),  # the documented field wins
    ],
)
def test_where_the_scheme_is_read_from(host, schema, extra, url):
    conn = Connection(conn_id="es", conn_type="elasticsearch", host=host, schema=schema, extra=json.dumps(extra))
    assert elasticsearch_from_connection(conn).url == url


@pytest.mark.parametrize(
    ("conn", "phrases"),
    [
        ({"host": "es", "schema": "ftp"}, ["connection 'es'", "'ftp' in the schema field", "http or https"]),
        ({"host": "es", "extra": {"ca_certs": "/ca.pem"}}, ["sets ca_certs", "scheme is http", "https"]),
        ({"host": "es", "extra": {"use_ssl": True}}, ["extra 'use_ssl'", "verify_certs", "remove it"]),
        ({"host": "es", "schema": "https", "extra": {"verify_certs": "maybe"}}, ["verify_certs", "true or false"]),
        ({"host": "es", "schema": "https", "login": "u", "extra": {"api_key": "k"}}, ["both a login and an API key"]),
        ({"host": "es", "extra": {"timeout": "soon"}}, ["extra 'timeout' of connection 'es'", "seconds"]),
    ],
)
def test_a_setting_that_would_be_dropped_or_misread_is_refused_by_name(conn, phrases):
    fields = {**conn, "extra": json.dumps(conn.get("extra", {}))}
    with pytest.raises(ConfigurationError) as info:
        elasticsearch_from_connection(Connection(conn_id="es", conn_type="elasticsearch", **fields))
    for phrase in phrases:
        assert phrase in str(info.value)


def test_a_missing_ca_file_is_named_when_a_client_is_made():
    settings = ElasticsearchSettings("https://es:9200", source="connection 'es'", ca_certs="/no/such/ca.pem")
    with pytest.raises(ConfigurationError, match="ca_certs of connection 'es' names /no/such/ca.pem"):
        cluster.client(settings)


def test_tls_options_are_for_https_only():
    plain = ElasticsearchSettings("http://es:9200", "u", SECRET)
    assert plain.client_options() == {"http_compress": False, "basic_auth": ("u", SECRET)}


def test_elasticsearch_variables_carry_tls(ca_file):
    env = {
        "ELASTICSEARCH_PROTOCOL": "https",
        "ELASTICSEARCH_HOST": "es.example.com",
        "ELASTICSEARCH_PORT": "9243",
        "ELASTICSEARCH_USER": "elastic",
        "ELASTICSEARCH_PASSWORD": SECRET,
        "ELASTICSEARCH_CA_CERTS": ca_file,
        "ELASTICSEARCH_VERIFY_CERTS": "true",
    }
    settings = elasticsearch_from_env(env)
    assert settings.url == "https://es.example.com:9243" and settings.ca_certs == ca_file
    assert config.load_elasticsearch(env=env).source == "ELASTICSEARCH_* variables"
    assert elasticsearch_from_env({**env, "ELASTICSEARCH_VERIFY_CERTS": "false"}).verify_certs is False
    with pytest.raises(ConfigurationError, match="ELASTICSEARCH_VERIFY_CERTS must be true or false"):
        elasticsearch_from_env({**env, "ELASTICSEARCH_VERIFY_CERTS": "sometimes"})
    key_only = {k: v for k, v in env.items() if "USER" not in k and "PASSWORD" not in k}
    assert elasticsearch_from_env({**key_only, "ELASTICSEARCH_API_KEY": API_KEY}).client_options()["api_key"] == API_KEY


def test_an_airflow_conn_variable_in_uri_form_is_read_by_load_elasticsearch(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_TLS_ES",
        f"elasticsearch://elastic:{SECRET}@es.example.com:9243/https?verify_certs=false&http_compress=true",
    )
    settings = config.load_elasticsearch("archivist_test_tls_es", env={})
    assert (settings.url, settings.verify_certs, settings.http_compress) == ("https://es.example.com:9243", False, True)
    assert settings.source == "connection 'archivist_test_tls_es'"
