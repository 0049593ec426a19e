# The two commands a newcomer needs: `make demo` and `make test` (and `make bench SCALE=1` for the benchmark).
SHELL := /bin/bash
ENV := source .local/env.sh

.PHONY: install services stop seed airflow demo test test-distributed test-esmatrix test-unit lint bench bench-es-servers

install:  ## install what is missing (cached outside the clone)
	bash scripts/install.sh all

services:  ## install, start PostgreSQL, Elasticsearch and MinIO, write .local/env.sh
	bash scripts/services.sh start

stop:  ## stop the servers and Airflow
	-bash scripts/airflow.sh stop
	bash scripts/services.sh stop

seed: services  ## fill the three servers with the demo stack
	$(ENV) && python -m demo.seed

airflow: services  ## start Airflow (scheduler, dag-processor, triggerer, API server on 127.0.0.1:8080)
	bash scripts/airflow.sh start

demo: seed airflow  ## a real backup and restore through Airflow
	$(ENV) && python -m demo.run

test: services  ## run the test suite against the real servers
	bash scripts/airflow.sh migrate
	$(ENV) && python -m pytest $(PYTEST_ARGS)

# Airflow restarted with CeleryExecutor and two workers that share no folder, the tests in
# tests/distributed run, and the stack's environment written back for LocalExecutor.
AUDIT := $(CURDIR)/.local/audit
test-distributed:  ## backups and restores spread over two Celery workers (ARCHIVIST_EXECUTOR=celery)
	-bash scripts/airflow.sh stop
	rm -rf "$(AUDIT)"
	ARCHIVIST_EXECUTOR=celery bash scripts/services.sh start
	ARCHIVIST_EXECUTOR=celery ARCHIVIST_AUDIT_DIR="$(AUDIT)" ARCHIVIST_SLICE_MIN_MB=0 bash scripts/airflow.sh start
	status=0; $(ENV) && ARCHIVIST_AUDIT_DIR="$(AUDIT)" python -m pytest tests/distributed $(PYTEST_ARGS) || status=$$?; \
	  bash scripts/airflow.sh stop; ARCHIVIST_EXECUTOR=local bash scripts/write_env.sh; exit $$status

# The search servers of the matrix beside 8.19, started one after another (scripts/search_servers.sh).
# A subset while working: make test-esmatrix ES_VERSIONS="7.17 opensearch-2".
ES_VERSIONS ?= 7.17 9 opensearch-2 opensearch-3
test-esmatrix: services  ## backup, restore, migrations and drills against every search server of ES_VERSIONS
	$(ENV) && ARCHIVIST_ES_VERSIONS="$(ES_VERSIONS)" python -m pytest -m esmatrix \
		tests/include/sources/elasticsearch/test_servers.py $(PYTEST_ARGS)

VENV := .local/venv/bin
test-unit:  ## the unit tests only: no server started, no .local/env.sh needed
	bash scripts/install.sh python
	AIRFLOW_HOME="$(CURDIR)/.local/airflow-unit" $(VENV)/python -m pytest -m unit $(PYTEST_ARGS)

lint:  ## ruff (lint and format), mypy and the import contracts between the layers; no server needed
	bash scripts/install.sh python
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	PYTHONPATH=include:plugins:dags $(VENV)/lint-imports --no-cache

SCALE ?= 0.1
ROUNDS ?=
bench: services  ## benchmark archivist against pg_dump, elasticdump, rclone and tar: make bench SCALE=1 [ROUNDS=1]
	bash bench/setup.sh all $(SCALE)
	bash scripts/airflow.sh migrate
	$(ENV) && python -m bench.run --scale $(SCALE) $(if $(ROUNDS),--rounds $(ROUNDS)) $(BENCH_ARGS)

bench-es-servers: services  ## export and restore on ES 7.17, 8.19 and 9 against elasticdump: make bench-es-servers SCALE=0.1
	bash bench/setup.sh
	$(ENV) && python -m bench.es_servers --scale $(SCALE) $(BENCH_ARGS)
