# The Airflow image docker-compose.yaml runs: the official image of the Airflow version that
# requirements.txt pins, with archivist's pinned run-time requirements and the PostgreSQL client
# tools (pg_dump, psql) the postgres job runs. Nothing is installed when a container starts.
#
#   docker compose build        # or `docker compose up`, which builds it the first time
#
# tests/test_docker_image.py checks that this file, docker-compose.yaml and requirements.txt
# agree, and installs the same requirements into a fresh venv to import every DAG and plugin.
FROM apache/airflow:3.3.2-python3.11

# apt needs root; the image's own user runs everything after.
USER root
RUN apt-get update \
  && apt-get install -y --no-install-recommends postgresql-client \
  && apt-get autoremove -yqq --purge \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/*
USER airflow

# The same pins `make test` runs with; constraints.txt keeps every transitive version too.
COPY requirements.txt constraints.txt /opt/archivist/
RUN pip install --no-cache-dir -r /opt/archivist/requirements.txt -c /opt/archivist/constraints.txt
