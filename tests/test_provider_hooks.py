"""Smoke tests of the running servers through the Airflow provider hooks and the four
archivist connections (as an operator's own task would reach them), plus how the servers
run: listening on loopback only, and not as root."""

from __future__ import annotations

import ipaddress
import json
import os
from urllib.parse import urlsplit

import psutil
import pytest

CONNECTIONS = ("archivist_postgres", "archivist_elasticsearch", "archivist_storage", "archivist_backups")


def _connection(conn_id: str) -> dict:
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if name not in os.environ:
        pytest.fail(
            f"{name} is not set: start the servers with `make services` and `source .local/env.sh`", pytrace=False
        )
    return json.loads(os.environ[name])


def _bucket(conn_id: str) -> str:
    return _connection(conn_id)["extra"]["service_config"]["s3"]["bucket_name"]


@pytest.mark.integration  # the stack's connections and servers
def test_postgres_hook():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id="archivist_postgres")
    assert hook.get_first("select 1") == (1,)
    database, user = hook.get_first("select current_database(), current_user")
    conn = _connection("archivist_postgres")
    assert (database, user) == (conn["schema"], conn["login"])
    assert hook.get_first("select current_setting('server_version_num')::int")[0] >= 120000


@pytest.mark.integration  # the stack's connections and servers
@pytest.mark.parametrize("conn_id", ["archivist_storage", "archivist_backups"])
def test_s3_hook(conn_id):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=conn_id)
    bucket = _bucket(conn_id)
    assert hook.service_config.get("bucket_name") == bucket
    assert hook.check_for_bucket(bucket)
    assert not hook.check_for_bucket(f"{bucket}-does-not-exist")
    keys = hook.list_keys(bucket_name=bucket)
    assert isinstance(keys, list) and all(isinstance(k, str) for k in keys)
    assert not hook.check_for_key("archivist-no-such-prefix-7f3a/nothing.txt", bucket_name=bucket)
    assert hook.list_keys(bucket_name=bucket, prefix="archivist-no-such-prefix-7f3a/") == []


@pytest.mark.integration  # the stack's connections and servers
def test_the_two_buckets_are_different():
    assert _bucket("archivist_storage") != _bucket("archivist_backups")


@pytest.mark.integration  # the stack's connections and servers
def test_elasticsearch_sql_hook_reads_cluster_health():
    from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

    # GET / answers 405 on this distribution (no rest-root module), so ask for health and nodes
    es = ElasticsearchSQLHook(elasticsearch_conn_id="archivist_elasticsearch").get_conn().es
    health = es.cluster.health()
    assert health["status"] in ("green", "yellow")
    assert health["number_of_nodes"] >= 1
    nodes = es.nodes.info(metric="http")["nodes"]
    assert nodes
    assert all(node["version"].startswith("8.") for node in nodes.values())


@pytest.mark.integration  # the stack's connections and servers
def test_elasticsearch_python_hook_from_the_connection():
    from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchPythonHook

    conn = _connection("archivist_elasticsearch")
    url = f"{conn.get('extra', {}).get('scheme', 'http')}://{conn['host']}:{conn['port']}"
    hook = ElasticsearchPythonHook(hosts=[url], es_conn_args={"basic_auth": (conn["login"], conn["password"])})
    assert hook.get_conn.cluster.health()["status"] in ("green", "yellow")
    result = hook.search(index="*", query={"query": {"match_all": {}}, "size": 0})
    assert "total" in result


# --- how the servers run --------------------------------------------------------------------


def _server_ports() -> dict[str, int]:
    pg, es = _connection("archivist_postgres"), _connection("archivist_elasticsearch")
    ports = {"postgres": int(pg["port"]), "elasticsearch": int(es["port"])}
    for conn_id in ("archivist_storage", "archivist_backups"):
        endpoint = urlsplit(_connection(conn_id)["extra"]["endpoint_url"])
        ports[f"s3 ({conn_id})"] = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    return ports


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1 on a dual-stack socket
    return (mapped or address).is_loopback


def test_loopback_helper():
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("::ffff:127.0.0.1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("::") and not _is_loopback("192.168.1.5")
    assert not _is_loopback("::ffff:10.0.0.1")


@pytest.mark.integration  # the stack's connections and servers
@pytest.mark.parametrize("server", ["postgres", "elasticsearch", "s3 (archivist_storage)", "s3 (archivist_backups)"])
def test_server_listens_on_loopback_only_and_not_as_root(server):
    port = _server_ports()[server]
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    ]
    assert listening, f"nothing listens on port {port} for {server}"
    for sock in listening:
        assert _is_loopback(sock.laddr.ip), f"{server} listens on {sock.laddr.ip}:{port}, not only on loopback"
        assert sock.pid is not None, f"cannot see which process owns port {port}: run the tests as root"
        process = psutil.Process(sock.pid)
        assert process.username() != "root", f"{server} ({process.name()}, pid {sock.pid}) runs as root"
        assert process.uids().effective != 0
