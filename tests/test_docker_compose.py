"""Static checks of docker-compose.yaml and the Dockerfile its Airflow services build; no Docker needed.

The compose file is read with yaml.safe_load, which resolves the x-airflow-common
anchor and its `<<` merge keys, so each service is checked as Compose sees it
(before `${VAR:-default}` interpolation, which Compose does and YAML does not).
The Dockerfile is read instruction by instruction (continuation lines joined).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

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


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, comments dropped, continuations joined."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (op.upper(), args.strip()) for op, args in (line.split(None, 1) for line in joined.splitlines() if line.strip())
    ]


def _pinned(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.split("==")[1].strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


def test_the_image_is_the_official_airflow_image_of_the_pinned_version():
    froms = [args for op, args in _instructions() if op == "FROM"]
    assert froms == [f"apache/airflow:{_pinned('apache-airflow')}-python3.11"]


def test_the_image_installs_the_pinned_requirements_with_their_constraints():
    steps = _instructions()
    copied = " ".join(args for op, args in steps if op in ("COPY", "ADD"))
    assert "requirements.txt" in copied and "constraints.txt" in copied
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert len(installs) == 1, installs
    assert re.search(r"-r \S*requirements\.txt", installs[0]) and re.search(r"-c \S*constraints\.txt", installs[0])
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "!requirements.txt" in ignored and "!constraints.txt" in ignored, "the build context must hold them"


def test_the_image_installs_postgresql_client_as_root_then_runs_as_airflow():
    steps, user = _instructions(), None
    for op, args in steps:
        if op == "USER":
            user = args
        if op == "RUN" and "apt-get install" in args:
            assert "postgresql-client" in args.split() and user == "root"
        if op == "RUN" and "pip install" in args:
            assert user == "airflow", "pip must install as the image's airflow user"
    assert user == "airflow", "the image must end as the airflow user"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_runs_the_built_image_with_project_mounts(services, name):
    service = services[name]
    assert service["build"] == ".", f"{name} must run the image the Dockerfile builds"
    assert service["image"].endswith(f"archivist-airflow:{_pinned('apache-airflow')}-python3.11}}")
    assert service["user"] == "${AIRFLOW_UID:-50000}:0", "as in Airflow's own compose file"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in service.get("environment", {}), "nothing installed at start"
    for mount in MOUNTS:
        assert mount in service["volumes"], f"{name} lacks {mount}"
    env = service["environment"]
    assert env["PYTHONPATH"] == "/opt/airflow/include"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}", "LocalExecutor unless asked"
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


CELERY_SERVICES = ["redis", "airflow-worker"]


def test_the_celery_variant_is_behind_its_profile(services):
    for name in CELERY_SERVICES:
        assert services[name]["profiles"] == ["celery"], name
    for name in set(services) - set(CELERY_SERVICES):
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_the_celery_worker_shares_no_volume_but_the_read_only_code(services):
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert sorted(worker["volumes"]) == sorted(f"{m}:ro" for m in MOUNTS)
    env = worker["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@redis:6379/0")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert {"redis", "airflow-apiserver"} <= set(worker["depends_on"])
    assert "healthcheck" in worker and "healthcheck" in services["redis"]
    assert "ports" not in worker and "ports" not in services["redis"], "nothing of Celery published"


def test_the_broker_password_is_never_on_a_command_line_literal(services):
    redis = services["redis"]
    assert "$$REDIS_PASSWORD" in redis["command"][0]
    assert "archivist-demo-redis-pw" not in redis["command"][0]
