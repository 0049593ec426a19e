"""TLS for real: PostgreSQL with `ssl = on` and the HTTPS-only Elasticsearch node, both serving a
certificate of the local CA. A backup and a restore through verified TLS with the connections
written as the providers document them, proof that the traffic was TLS, a wrong CA refused by
`archivist simple-check` with the connection and the certificate problem named, and client
certificates checked by both servers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import urllib.parse

import psycopg
import pytest

from archivist.config import ElasticsearchSettings, PostgresSettings
from archivist.errors import ConfigurationError, UnreachableError
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.postgres import job as postgres
from archivist.transport.staging import LocalStaging
from tests.spec_support import SPEC_PREFIXES, archivist

DATABASE = "archivist_tls"
CLIENT_ROLE = "archivist_tls_client"  # pg_hba lets it in with a client certificate of the local CA alone
INDEX = "tls-docs"
ROWS = [(1, "over"), (2, "verified"), (3, "tls")]
CONNECTIONS = ("AIRFLOW_CONN_ARCHIVIST_POSTGRES", "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH")


@pytest.fixture(scope="module")
def pg_tls(pg_settings, tls_ca) -> PostgresSettings:
    """A database of its own with one small table, reached with sslmode=verify-full and the local CA."""
    with psycopg.connect(**pg_settings.connect_args(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    settings = dataclasses.replace(
        pg_settings,
        dbname=DATABASE,
        source="TLS test database",
        # keepalives_idle has no PG* variable: pg_dump and psql get it in --dbname.
        libpq_options={"sslmode": "verify-full", "sslrootcert": tls_ca, "keepalives_idle": "30"},
    )
    return settings


def _fill(pg: PostgresSettings, es: ElasticsearchSettings) -> None:
    with postgres.connect(pg) as conn:
        conn.execute("DROP TABLE IF EXISTS notes")
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, word text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO notes VALUES (%s, %s)", ROWS)
    client = es_cluster.client(es)
    client.options(ignore_status=404).indices.delete(index=INDEX)
    for n, word in ROWS:
        client.index(index=INDEX, id=str(n), document={"word": word})
    client.indices.refresh(index=INDEX)


def _wipe(pg: PostgresSettings, es: ElasticsearchSettings) -> None:
    with postgres.connect(pg) as conn:
        conn.execute("DROP TABLE notes")
    es_cluster.client(es).indices.delete(index=INDEX)


def _connections_env(
    pg: PostgresSettings, es: ElasticsearchSettings, pg_extra: dict | None = None, es_query: dict | None = None
) -> dict[str, str]:
    """This process's environment with the two connections as the providers document them: PostgreSQL
    as JSON with libpq's keywords in the extra, Elasticsearch as a URI with the scheme in the schema
    part and the client's TLS arguments in the query. No spec variable is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SPEC_PREFIXES) and k not in CONNECTIONS}
    pg_extra = dict(pg.libpq_options) if pg_extra is None else pg_extra
    es_query = (
        {"ca_certs": es.ca_certs, "verify_certs": "true", "http_compress": "true"} if es_query is None else es_query
    )
    url = urllib.parse.urlsplit(es.url)
    env["AIRFLOW_CONN_ARCHIVIST_POSTGRES"] = json.dumps(
        {
            "conn_type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "login": pg.user,
            "password": pg.password,
            "schema": pg.dbname,
            "extra": pg_extra,
        }
    )
    login = f"{urllib.parse.quote(es.user, safe='')}:{urllib.parse.quote(es.password, safe='')}"
    query = urllib.parse.urlencode({k: v for k, v in es_query.items() if v})
    env["AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH"] = f"elasticsearch://{login}@{url.hostname}:{url.port}/https?{query}"
    return env


def test_backup_and_restore_through_verified_tls(pg_tls, es_tls, tmp_path):
    _fill(pg_tls, es_tls)
    env = _connections_env(pg_tls, es_tls)
    bundle = tmp_path / "tls-bundle.tgz"

    made = archivist(env, "simple-backup", "--jobs", "postgres,elasticsearch", "-o", str(bundle))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "tables=1" in made.stdout and "documents=3" in made.stdout, made.stdout

    _wipe(pg_tls, es_tls)
    restored = archivist(env, "simple-restore", str(bundle), "--jobs", "postgres,elasticsearch")
    assert restored.returncode == 0, restored.stdout + restored.stderr

    with postgres.connect(pg_tls) as conn:
        assert conn.execute("SELECT id, word FROM notes ORDER BY id").fetchall() == ROWS
    assert es_cluster.count(es_cluster.client(es_tls), INDEX) == len(ROWS)


def test_the_database_sessions_are_tls(pg_tls, tls_ca):
    ssl_of_session = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    with postgres.connect(pg_tls) as conn:  # the check's and the counts' connection
        ssl, version = conn.execute(ssl_of_session).fetchone()
    assert ssl is True and version.startswith("TLSv1.")
    # psql gets the same settings as pg_dump: its environment from the settings, nothing else.
    psql = subprocess.run(
        [postgres.tool("psql"), "-X", "-tA", "-c", ssl_of_session.replace("ssl, version", "ssl")],
        capture_output=True,
        text=True,
        env=postgres.child_env(pg_tls),
        timeout=60,
    )
    assert psql.returncode == 0 and psql.stdout.strip() == "t", psql.stderr
    # The same server still takes plain connections: nothing else had to change.
    plain = dataclasses.replace(pg_tls, libpq_options={"sslmode": "disable"})
    with postgres.connect(plain) as conn:
        assert conn.execute(ssl_of_session).fetchone()[0] is False


def test_pg_dump_refuses_a_server_the_ca_did_not_sign(pg_tls, other_ca):
    wrong = dataclasses.replace(pg_tls, libpq_options={"sslmode": "verify-full", "sslrootcert": other_ca})
    dump = subprocess.run(
        [postgres.tool("pg_dump"), "--schema-only", "--no-password"],
        capture_output=True,
        text=True,
        env=postgres.child_env(wrong),
        timeout=60,
    )
    assert dump.returncode != 0 and "certificate verify failed" in dump.stderr, dump.stderr


def test_the_tls_node_answers_https_and_refuses_http(es_tls):
    assert es_cluster.check_login(es_tls, quick=True).startswith("8.")
    plain = dataclasses.replace(es_tls, url=es_tls.url.replace("https://", "http://"), ca_certs="")
    with pytest.raises(UnreachableError, match="cannot reach Elasticsearch at http://"):
        es_cluster.check_login(plain, quick=True)


def test_a_wrong_ca_fails_the_check_naming_the_connection_and_the_certificate(pg_tls, es_tls, other_ca):
    env = _connections_env(
        pg_tls,
        es_tls,
        pg_extra={"sslmode": "verify-full", "sslrootcert": other_ca},
        es_query={"ca_certs": other_ca, "verify_certs": "true"},
    )
    run = archivist(env, "simple-check", "--jobs", "postgres,elasticsearch")
    assert run.returncode == 2, run.stdout + run.stderr  # a configuration error, as a wrong password is
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2, run.stdout
    database, search = failed
    assert "connection 'archivist_postgres'" in database and "certificate verify failed" in database
    assert "sslmode=verify-full" in database and "sslrootcert" in database
    assert "connection 'archivist_elasticsearch'" in search and "certificate verify failed" in search
    assert "ca_certs" in search
    assert es_tls.password not in run.stdout + run.stderr


def test_a_job_that_meets_a_certificate_it_cannot_verify_names_it(es_tls, other_ca, tmp_path):
    # No check ran before this job (as when a certificate changes between the check and the job).
    wrong = dataclasses.replace(es_tls, ca_certs=other_ca)
    with pytest.raises(ConfigurationError) as info:
        backup.run_job("elasticsearch", BackupKey.new(), LocalStaging(parent=str(tmp_path)), wrong)
    message = str(info.value)
    assert f"open a TLS connection to Elasticsearch at {es_tls.url} (TLS test node)" in message
    assert "certificate verify failed" in message and "ca_certs" in message


def test_require_without_a_ca_encrypts_but_verify_full_needs_the_right_ca(pg_tls, es_tls, other_ca):
    unverified = _connections_env(pg_tls, es_tls, pg_extra={"sslmode": "require"}, es_query={"verify_certs": "false"})
    run = archivist(unverified, "simple-check", "--jobs", "postgres,elasticsearch")
    assert run.returncode == 0, run.stdout + run.stderr
    wrong = _connections_env(pg_tls, es_tls, pg_extra={"sslmode": "verify-full", "sslrootcert": other_ca})
    run = archivist(wrong, "simple-check", "--jobs", "postgres")
    assert run.returncode == 2 and "certificate verify failed" in run.stdout, run.stdout + run.stderr


@pytest.fixture(scope="module")
def pg_client_cert(pg_settings, pg_tls, tls_ca) -> PostgresSettings:
    """The role that logs in with the local CA's client certificate and no password."""
    with psycopg.connect(**pg_settings.connect_args(), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CLIENT_ROLE,)).fetchone():
            admin.execute(f"CREATE ROLE {CLIENT_ROLE} LOGIN IN ROLE pg_read_all_data")
    folder = os.path.dirname(tls_ca)
    options = {
        **pg_tls.libpq_options,
        "sslcert": os.path.join(folder, "client.crt"),
        "sslkey": os.path.join(folder, "client.key"),
    }
    return dataclasses.replace(pg_tls, user=CLIENT_ROLE, password="", libpq_options=options)


def test_a_client_certificate_logs_in_to_the_database_and_pg_dump(pg_client_cert, other_ca):
    with postgres.connect(pg_client_cert) as conn:
        row = conn.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True, f"/CN={CLIENT_ROLE}")
    dump = subprocess.run(  # sslcert and sslkey reach pg_dump as PGSSLCERT and PGSSLKEY
        [postgres.tool("pg_dump"), "--schema-only", "--no-password", *pg_client_cert.libpq_args()],
        capture_output=True,
        text=True,
        env=postgres.child_env(pg_client_cert),
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr

    options = {k: v for k, v in pg_client_cert.libpq_options.items() if k not in ("sslcert", "sslkey")}
    with pytest.raises(ConfigurationError, match="requires a valid client certificate"):
        postgres.connect(dataclasses.replace(pg_client_cert, libpq_options=options))
    folder = os.path.dirname(other_ca)  # a client certificate the server's CA did not sign
    options |= {"sslcert": os.path.join(folder, "client.crt"), "sslkey": os.path.join(folder, "client.key")}
    with pytest.raises(ConfigurationError, match="unknown ca"):
        postgres.connect(dataclasses.replace(pg_client_cert, libpq_options=options))


def test_the_tls_node_checks_a_client_certificate_it_is_shown(es_tls, tls_ca, other_ca):
    ours, theirs = os.path.dirname(tls_ca), os.path.dirname(other_ca)
    signed = dataclasses.replace(
        es_tls, client_cert=os.path.join(ours, "client.crt"), client_key=os.path.join(ours, "client.key")
    )
    assert es_cluster.check_login(signed, quick=True).startswith("8.")
    unknown = dataclasses.replace(
        es_tls, client_cert=os.path.join(theirs, "client.crt"), client_key=os.path.join(theirs, "client.key")
    )
    with pytest.raises(ConfigurationError, match="certificate unknown.*client_cert"):
        es_cluster.check_login(unknown, quick=True)
