"""Static checks of docker-compose.yaml; no Docker needed.

The file is read with yaml.safe_load, which resolves the x-airflow-common
anchor and its `<<` merge keys, so each service is checked as Compose sees it
(before `${VAR:-default}` interpolation, which Compose does and YAML does not).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yaml"

AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
]
STACK_SERVICES = ["airflow-db", "postgres", "elasticsearch", "minio", "minio-init"]
ONE_SHOT_SERVICES = {"airflow-init", "minio-init"}
MOUNTS = ["./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins", "./include:/opt/airflow/include"]
CONNECTIONS = {
    "AIRFLOW_CONN_ARCHIVIST_POSTGRES": ("postgres", None),
    "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": ("elasticsearch", None),
    "AIRFLOW_CONN_ARCHIVIST_STORAGE": ("aws", "archivist-app"),
    "AIRFLOW_CONN_ARCHIVIST_BACKUPS": ("aws", "archivist-backups"),
}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_every_service_exists(services):
    assert set(AIRFLOW_SERVICES + STACK_SERVICES) <= set(services)


def test_long_running_services_have_healthchecks(services):
    for name in set(AIRFLOW_SERVICES + STACK_SERVICES) - ONE_SHOT_SERVICES:
        assert "healthcheck" in services[name], name


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_is_airflow_3_with_project_mounts(services, name):
    service = services[name]
    assert "apache/airflow:3.3.2-python3.11" in service["image"]
    for mount in MOUNTS:
        assert mount in service["volumes"], f"{name} lacks {mount}"
    env = service["environment"]
    assert env["PYTHONPATH"] == "/opt/airflow/include"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_api_server_command(services):
    assert services["airflow-apiserver"]["command"] == "api-server"


@pytest.mark.parametrize("variable", sorted(CONNECTIONS))
def test_connection_on_scheduler(services, variable):
    conn_type, bucket = CONNECTIONS[variable]
    conn = json.loads(services["airflow-scheduler"]["environment"][variable])
    assert conn["conn_type"] == conn_type
    if bucket:
        assert conn["extra"]["service_config"]["s3"]["bucket_name"] == bucket
        assert conn["extra"]["endpoint_url"] == "http://minio:9000"


def test_published_ports_bind_loopback_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_elasticsearch_is_8x(services):
    image = services["elasticsearch"]["image"]
    assert re.search(r":8\.\d+\.\d+$", image), image


def test_elasticsearch_requires_the_login_the_connection_carries(services):
    env = dict(item.split("=", 1) for item in services["elasticsearch"]["environment"])
    assert env["xpack.security.enabled"] == "true"
    conn = json.loads(services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH"])
    assert conn["login"] == "elastic" and conn["password"] == env["ELASTIC_PASSWORD"]
    health = services["elasticsearch"]["healthcheck"]["test"][1]
    assert "ELASTIC_PASSWORD" in health and "-K -" in health, "the health check must log in, password off argv"
