"""Unit tests of archivist.postgres_settings: a postgres connection read as the provider documents
it (URI and JSON, parsed by Airflow's own Connection), its libpq extras given to psycopg and, as
PG* variables, to pg_dump and psql; the DATABASE_* variables; nothing dropped without a word."""

from __future__ import annotations

import json
import re

import pytest
from airflow.sdk import Connection

from archivist import config
from archivist.elasticsearch_settings import elasticsearch_from_connection
from archivist.errors import ConfigurationError
from archivist.postgres_settings import LIBPQ_VARIABLES, PostgresSettings, postgres_from_connection, postgres_from_env
from tests.support import ROOT

SECRET = "pg-s3cr3t-Pa55-do-not-log"
TLS_EXTRA = {
    "sslmode": "verify-full",
    "sslrootcert": "/etc/archivist/ca.pem",
    "sslcert": "/etc/archivist/client.pem",
    "sslkey": "/etc/archivist/client.key",
    "sslcrl": "/etc/archivist/ca.crl",
}
TLS_ENV = {
    "PGSSLMODE": "verify-full",
    "PGSSLROOTCERT": "/etc/archivist/ca.pem",
    "PGSSLCERT": "/etc/archivist/client.pem",
    "PGSSLKEY": "/etc/archivist/client.key",
    "PGSSLCRL": "/etc/archivist/ca.crl",
}
# The provider's URI form: the database in the path, libpq's keywords as the query, URL-encoded.
TLS_URI = (
    f"postgres://archivist:{SECRET}@db.example.com:5432/shop"
    "?sslmode=verify-full&sslrootcert=%2Fetc%2Farchivist%2Fca.pem&sslcert=%2Fetc%2Farchivist%2Fclient.pem"
    "&sslkey=%2Fetc%2Farchivist%2Fclient.key&sslcrl=%2Fetc%2Farchivist%2Fca.crl"
)
TLS_JSON = {
    "conn_type": "postgres",
    "host": "db.example.com",
    "port": 5432,
    "login": "archivist",
    "password": SECRET,
    "schema": "shop",
    "extra": TLS_EXTRA,
}


@pytest.mark.parametrize(
    "conn",
    [
        Connection.from_uri(TLS_URI, conn_id="archivist_postgres"),
        Connection.from_json(json.dumps(TLS_JSON), conn_id="archivist_postgres"),
    ],
    ids=["uri", "json"],
)
def test_the_provider_forms_carry_the_tls_extras_to_psycopg_and_to_pg_dump(conn):
    settings = postgres_from_connection(conn)
    assert (settings.host, settings.port, settings.user, settings.dbname) == (
        "db.example.com",
        5432,
        "archivist",
        "shop",
    )
    assert settings.libpq_options == TLS_EXTRA and settings.sslmode == "verify-full"
    assert settings.libpq_env() == {
        "PGHOST": "db.example.com",
        "PGPORT": "5432",
        "PGUSER": "archivist",
        "PGDATABASE": "shop",
        "PGPASSWORD": SECRET,
        **TLS_ENV,
    }
    assert settings.connect_args() == {
        "host": "db.example.com",
        "port": 5432,
        "user": "archivist",
        "password": SECRET,
        "dbname": "shop",
        **TLS_EXTRA,
    }
    assert SECRET not in repr(settings) and "verify-full" in repr(settings)


def test_an_airflow_conn_variable_in_json_is_read_by_load_postgres(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_TLS_PG", json.dumps(TLS_JSON))
    settings = config.load_postgres("archivist_test_tls_pg", env={})
    assert settings.libpq_options == TLS_EXTRA
    assert settings.source == "connection 'archivist_test_tls_pg'"


def test_every_libpq_keyword_has_its_own_variable():
    extra = {keyword: f"value-{n}" for n, keyword in enumerate(LIBPQ_VARIABLES)} | {"sslmode": "require"}
    env = PostgresSettings("db", 5432, "u", "d", libpq_options=extra).libpq_env()
    assert {env[variable] for variable in LIBPQ_VARIABLES.values()} == set(extra.values())
    assert len(set(LIBPQ_VARIABLES.values())) == len(LIBPQ_VARIABLES)


def test_values_are_given_as_libpq_reads_them():
    conn = Connection(
        conn_id="pg",
        conn_type="postgres",
        host="db",
        login="u",
        schema="d",
        extra=json.dumps({"sslcompression": True, "connect_timeout": 10, "sslsni": False, "sslcrl": ""}),
    )
    assert postgres_from_connection(conn).libpq_options == {
        "sslcompression": "1",
        "connect_timeout": "10",
        "sslsni": "0",
    }


def test_without_extras_libpq_keeps_its_default():
    settings = postgres_from_connection(
        Connection(conn_id="pg", conn_type="postgres", host="db", login="u", schema="d")
    )
    assert settings.libpq_options == {} and settings.sslmode == "prefer"
    assert not any(name.startswith("PGSSL") for name in settings.libpq_env())


def test_hook_only_extras_are_ignored():
    conn = Connection.from_uri("postgres://u:p@db/d?cursor=dictcursor&sslmode=require", conn_id="pg")
    assert postgres_from_connection(conn).libpq_options == {"sslmode": "require"}


@pytest.mark.parametrize(
    ("extra", "phrases"),
    [
        ({"sslmode": "verify_full"}, ["extra 'sslmode' of connection 'pg'", "'verify_full'", "verify-full"]),
        ({"sslpassword": "x"}, ["extra 'sslpassword' of connection 'pg'", "not a libpq keyword", "sslrootcert"]),
        ({"keepalives_idle": "soon"}, ["extra 'keepalives_idle' of connection 'pg'", "whole number"]),
        ({"iam": True}, ["extra 'iam' of connection 'pg'", "login and password"]),
    ],
)
def test_an_extra_archivist_cannot_pass_on_is_refused_by_name(extra, phrases):
    conn = Connection(conn_id="pg", conn_type="postgres", host="db", login="u", schema="d", extra=json.dumps(extra))
    with pytest.raises(ConfigurationError) as info:
        postgres_from_connection(conn)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_database_variables_carry_the_tls_settings():
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_USER": "app",
        "DATABASE_NAME": "shop",
        "DATABASE_PASSWORD": SECRET,
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": "/etc/archivist/ca.pem",
        "DATABASE_SSLCERT": "/etc/archivist/client.pem",
        "DATABASE_SSLKEY": "/etc/archivist/client.key",
        "DATABASE_SSLCRL": "/etc/archivist/ca.crl",
    }
    settings = postgres_from_env(env)
    assert settings.libpq_options == TLS_EXTRA
    assert {k: v for k, v in settings.libpq_env().items() if k.startswith("PGSSL")} == TLS_ENV
    assert config.load_postgres(env=env).source == "DATABASE_* variables"
    with pytest.raises(ConfigurationError, match="DATABASE_SSLMODE of DATABASE_\\* variables is 'on'"):
        postgres_from_env({**env, "DATABASE_SSLMODE": "on"})


def test_the_readme_examples_read_as_documented():
    """The URI and JSON forms README's Connections part shows, parsed by Airflow, give verified TLS."""
    block = (ROOT / "README.md").read_text().split("## Connections", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    examples = re.findall(r"export AIRFLOW_CONN_ARCHIVIST_(POSTGRES|ELASTICSEARCH)='(.*?)'", block, re.S)
    assert [part for part, _ in examples] == ["POSTGRES", "POSTGRES", "ELASTICSEARCH", "ELASTICSEARCH"]
    for part, text in examples:
        conn = Connection.from_json(text, "x") if text.startswith("{") else Connection.from_uri(text, "x")
        if part == "POSTGRES":
            settings = postgres_from_connection(conn)
            assert settings.libpq_env()["PGSSLMODE"] == "verify-full"
            assert settings.libpq_env()["PGSSLROOTCERT"] == "/etc/archivist/ca.pem"
        else:
            es = elasticsearch_from_connection(conn)
            assert (es.url, es.verify_certs, es.ca_certs) == (
                "https://es.example.com:9243",
                True,
                "/etc/archivist/ca.pem",
            )


def test_keywords_without_a_variable_reach_the_tools_as_a_connection_string():
    # The provider documents keepalives_idle; libpq has no variable for it.
    conn = Connection.from_uri("postgres://u:p@db/d?keepalives_idle=30&keepalives=1&sslmode=require", conn_id="pg")
    settings = postgres_from_connection(conn)
    assert settings.connect_args()["keepalives_idle"] == "30"
    assert settings.libpq_args() == ["--dbname=keepalives_idle=30 keepalives=1"]
    assert "PGSSLMODE" in settings.libpq_env() and not any("KEEPALIVES" in k for k in settings.libpq_env())
    assert postgres_from_connection(Connection.from_uri("postgres://u:p@db/d", conn_id="pg")).libpq_args() == []
