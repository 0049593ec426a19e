"""Unit tests of archivist.config: BACKUPS_KEPT and job parsing, the original tool's
environment variables versus the Airflow connections, connection-id overrides,
and secrets kept out of every repr. No server is contacted."""

from __future__ import annotations

import json

import pytest

from archivist import config
from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.errors import ConfigurationError

SECRET = "s3cr3t-Pa55-do-not-log"


def _s3_connection(bucket: str) -> dict:
    return {
        "conn_type": "aws",
        "login": "archivist-admin",
        "password": "minio-" + SECRET,
        "extra": {
            "endpoint_url": "http://127.0.0.1:59000",
            "region_name": "us-east-1",
            "service_config": {"s3": {"bucket_name": bucket}},
        },
    }


CONNECTIONS = {  # shaped as scripts/write_env.sh exports them into .local/env.sh
    "archivist_postgres": {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 55432,
        "login": "archivist",
        "password": "pg-" + SECRET,
        "schema": "archivist_demo",
    },
    "archivist_elasticsearch": {
        "conn_type": "elasticsearch",
        "host": "127.0.0.1",
        "port": 59200,
        "login": "archivist",
        "password": "es-" + SECRET,
        "schema": "http",
    },
    "archivist_storage": _s3_connection("archivist-app"),
    "archivist_backups": _s3_connection("archivist-backups"),
}


@pytest.fixture
def connections(monkeypatch) -> dict[str, dict]:
    """The four archivist connections in the environment, as AIRFLOW_CONN_* JSON; returns them."""
    for conn_id, conn in CONNECTIONS.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return json.loads(json.dumps(CONNECTIONS))


# --- BACKUPS_KEPT ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 30), ("30", 30), ("7", 7), (" 12 ", 12), (7, 7), (100, 100)])
def test_parse_backups_kept_accepts(value, expected):
    assert config.parse_backups_kept(value) == expected


@pytest.mark.parametrize("value", ["5", "6", 6, "0", "-30"])
def test_parse_backups_kept_below_minimum_names_the_minimum(value):
    with pytest.raises(ConfigurationError) as info:
        config.parse_backups_kept(value)
    assert "minimum is 7" in str(info.value)


@pytest.mark.parametrize("value", ["abc", "", "   ", "7.5", "30 backups"])
def test_parse_backups_kept_rejects_non_numbers(value):
    with pytest.raises(ConfigurationError) as info:
        config.parse_backups_kept(value)
    assert "7" in str(info.value)  # every message says what is acceptable


def test_load_backups_kept_reads_env_dict():
    assert config.load_backups_kept(env={}) == 30
    assert config.load_backups_kept(env={"BACKUPS_KEPT": "9"}) == 9
    assert config.load_env_backups_kept(env={"BACKUPS_KEPT": "5"}) == "5"  # unparsed
    with pytest.raises(ConfigurationError):
        config.load_backups_kept(env={"BACKUPS_KEPT": "5"})


# --- jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [None, "", [], ()])
def test_parse_jobs_empty_means_all(jobs):
    assert config.parse_jobs(jobs) == ("postgres", "elasticsearch", "storage")


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ("storage,postgres", ("postgres", "storage")),
        (" elasticsearch , ", ("elasticsearch",)),
        (["storage", "storage"], ("storage",)),
        (("elasticsearch", "postgres"), ("postgres", "elasticsearch")),
    ],
)
def test_parse_jobs_canonical_order_without_duplicates(jobs, expected):
    assert config.parse_jobs(jobs) == expected


# --- Elasticsearch options of a backup -----------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, "refuse"), ("", "refuse"), (" open ", "open")])
def test_parse_closed_indices(value, expected):
    assert config.parse_closed_indices(value) == expected


def test_parse_closed_indices_names_the_choices():
    with pytest.raises(ConfigurationError, match="closed_indices must be one of refuse, open, got 'skip'"):
        config.parse_closed_indices("skip")


@pytest.mark.parametrize(
    ("value", "expected"), [(None, ()), ("", ()), ("a, logs-*,", ("a", "logs-*")), (["a", " ", "b"], ("a", "b"))]
)
def test_parse_index_patterns(value, expected):
    assert config.parse_index_patterns(value) == expected


def test_parse_jobs_unknown_job_is_named():
    with pytest.raises(ConfigurationError) as info:
        config.parse_jobs("postgres,mysql,redis")
    message = str(info.value)
    assert "mysql" in message and "redis" in message
    assert "postgres, elasticsearch, storage" in message  # the valid choices


# --- the original tool's environment variables ---------------------------------------------


def test_postgres_from_env():
    settings = config.postgres_from_env(
        {
            "DATABASE_HOST": "db",
            "DATABASE_PORT": "6432",
            "DATABASE_USER": "app",
            "DATABASE_NAME": "shop",
            "DATABASE_PASSWORD": SECRET,
        }
    )
    assert settings == PostgresSettings(
        host="db", port=6432, user="app", dbname="shop", password=SECRET, source="DATABASE_* variables"
    )
    assert settings.libpq_env() == {
        "PGHOST": "db",
        "PGPORT": "6432",
        "PGUSER": "app",
        "PGDATABASE": "shop",
        "PGPASSWORD": SECRET,
    }


def test_postgres_from_env_defaults_port_and_omits_empty_password():
    settings = config.postgres_from_env({"DATABASE_HOST": "db", "DATABASE_USER": "app", "DATABASE_NAME": "shop"})
    assert settings.port == 5432
    assert "PGPASSWORD" not in settings.libpq_env()


@pytest.mark.parametrize("missing", ["DATABASE_HOST", "DATABASE_USER", "DATABASE_NAME"])
def test_postgres_from_env_names_the_missing_variable(missing):
    env = {"DATABASE_HOST": "db", "DATABASE_USER": "app", "DATABASE_NAME": "shop"}
    del env[missing]
    with pytest.raises(ConfigurationError, match=missing):
        config.postgres_from_env(env)


@pytest.mark.parametrize("port", ["abc", "54 32", "-1"])
def test_bad_port_is_rejected(port):
    with pytest.raises(ConfigurationError, match="DATABASE_PORT"):
        config.postgres_from_env(
            {"DATABASE_HOST": "db", "DATABASE_USER": "a", "DATABASE_NAME": "d", "DATABASE_PORT": port}
        )


def test_elasticsearch_from_env():
    assert config.elasticsearch_from_env({"ELASTICSEARCH_HOST": "es"}).url == "http://es:9200"
    settings = config.elasticsearch_from_env(
        {
            "ELASTICSEARCH_HOST": "es",
            "ELASTICSEARCH_PORT": "9243",
            "ELASTICSEARCH_PROTOCOL": "https",
            "ELASTICSEARCH_USER": "elastic",
            "ELASTICSEARCH_PASSWORD": SECRET,
        }
    )
    assert settings == ElasticsearchSettings(
        url="https://es:9243", user="elastic", password=SECRET, source="ELASTICSEARCH_* variables"
    )


def test_elasticsearch_from_env_rejects_other_protocols_and_missing_host():
    with pytest.raises(ConfigurationError, match="ELASTICSEARCH_PROTOCOL"):
        config.elasticsearch_from_env({"ELASTICSEARCH_HOST": "es", "ELASTICSEARCH_PROTOCOL": "ftp"})
    with pytest.raises(ConfigurationError, match="ELASTICSEARCH_HOST"):
        config.elasticsearch_from_env({"ELASTICSEARCH_PORT": "9200"})


@pytest.mark.parametrize("prefix", ["S3_", "BACKUP_"])
def test_s3_from_env(prefix):
    settings = config.s3_from_env(
        {
            f"{prefix}BUCKET_NAME": "b",
            f"{prefix}ACCESS_KEY_ID": "AKIA",
            f"{prefix}SECRET_ACCESS_KEY": SECRET,
            f"{prefix}ENDPOINT_URL": "http://minio:9000",
            f"{prefix}REGION": "eu-west-1",
        },
        prefix,
    )
    assert settings == S3Settings(
        bucket="b",
        access_key_id="AKIA",
        secret_access_key=SECRET,
        endpoint_url="http://minio:9000",
        region_name="eu-west-1",
        source=f"{prefix}* variables",
    )


def test_s3_from_env_optional_fields_and_region_fallback():
    settings = config.s3_from_env(
        {"S3_BUCKET_NAME": "b", "S3_ENDPOINT_URL": "", "AWS_DEFAULT_REGION": "us-west-2"}, "S3_"
    )
    assert settings.endpoint_url is None
    assert settings.region_name == "us-west-2"
    assert settings.access_key_id == "" and settings.secret_access_key == ""
    with pytest.raises(ConfigurationError, match="BACKUP_BUCKET_NAME"):
        config.s3_from_env({"BACKUP_ACCESS_KEY_ID": "AKIA"}, "BACKUP_")


def test_load_functions_prefer_the_variables_when_set():
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_USER": "app",
        "DATABASE_NAME": "shop",
        "ELASTICSEARCH_HOST": "es",
        "S3_BUCKET_NAME": "app-files",
        "BACKUP_BUCKET_NAME": "app-backups",
        # would name a connection that does not exist, and must not be consulted
        "ARCHIVIST_POSTGRES_CONN_ID": "no_such_conn",
        "ARCHIVIST_ELASTICSEARCH_CONN_ID": "no_such_conn",
        "ARCHIVIST_STORAGE_CONN_ID": "no_such_conn",
        "ARCHIVIST_BACKUPS_CONN_ID": "no_such_conn",
    }
    assert config.load_postgres(env=env).source == "DATABASE_* variables"
    assert config.load_postgres(env=env).host == "db"
    assert config.load_elasticsearch(env=env).url == "http://es:9200"
    assert config.load_storage(env=env).bucket == "app-files"
    assert config.load_storage(env=env).source == "S3_* variables"
    assert config.load_backups(env=env).bucket == "app-backups"
    assert config.load_backups(env=env).source == "BACKUP_* variables"


def test_a_partial_set_of_variables_is_an_error_not_a_silent_fallback():
    with pytest.raises(ConfigurationError, match="DATABASE_NAME"):
        config.load_postgres(env={"DATABASE_HOST": "db", "DATABASE_USER": "app"})


# --- the Airflow connections ----------------------------------------------------------------


def test_load_functions_read_the_connections_when_no_variable_is_set(connections):
    pg, es = connections["archivist_postgres"], connections["archivist_elasticsearch"]
    storage, backups = connections["archivist_storage"], connections["archivist_backups"]

    settings = config.load_postgres(env={})
    assert (settings.host, settings.port, settings.user, settings.dbname) == (
        pg["host"],
        pg["port"],
        pg["login"],
        pg["schema"],
    )
    assert settings.password == pg.get("password", "")
    assert settings.source == "connection 'archivist_postgres'"

    assert config.load_elasticsearch(env={}).url == f"{es.get('schema') or 'http'}://{es['host']}:{es['port']}"

    for loader, conn in ((config.load_storage, storage), (config.load_backups, backups)):
        s3 = loader(env={})
        assert s3.bucket == conn["extra"]["service_config"]["s3"]["bucket_name"]
        assert s3.endpoint_url == conn["extra"]["endpoint_url"]
        assert s3.access_key_id == conn["login"]
    assert config.load_storage(env={}).bucket != config.load_backups(env={}).bucket


def test_empty_variables_do_not_count_as_set(connections):
    env = {"DATABASE_HOST": "", "DATABASE_USER": ""}
    assert config.load_postgres(env=env).source == "connection 'archivist_postgres'"


def test_backups_kept_is_not_mistaken_for_a_backup_bucket_variable(connections):
    # BACKUPS_KEPT shares the first letters of the BACKUP_* variables
    assert config.load_backups(env={"BACKUPS_KEPT": "10"}).source == "connection 'archivist_backups'"


def test_conn_ids_defaults_and_overrides():
    assert config.conn_ids({}) == config.ConnIds(
        "archivist_postgres", "archivist_elasticsearch", "archivist_storage", "archivist_backups"
    )
    ids = config.conn_ids(
        {
            "ARCHIVIST_POSTGRES_CONN_ID": "pg2",
            "ARCHIVIST_ELASTICSEARCH_CONN_ID": "es2",
            "ARCHIVIST_STORAGE_CONN_ID": "st2",
            "ARCHIVIST_BACKUPS_CONN_ID": "bk2",
        }
    )
    assert ids == config.ConnIds("pg2", "es2", "st2", "bk2")
    assert config.conn_ids({"ARCHIVIST_POSTGRES_CONN_ID": ""}).postgres == "archivist_postgres"


def test_conn_id_override_reads_that_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_OTHER_PG",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db.example",
                "port": 6543,
                "login": "u",
                "password": SECRET,
                "schema": "d",
            }
        ),
    )
    settings = config.load_postgres(env={"ARCHIVIST_POSTGRES_CONN_ID": "archivist_test_other_pg"})
    assert settings == PostgresSettings(
        host="db.example",
        port=6543,
        user="u",
        dbname="d",
        password=SECRET,
        source="connection 'archivist_test_other_pg'",
    )


@pytest.mark.parametrize(
    "loader", [config.load_postgres, config.load_elasticsearch, config.load_storage, config.load_backups]
)
def test_missing_connection_is_named(loader):
    with pytest.raises(ConfigurationError) as info:
        loader("no_such_conn", env={})
    assert "no_such_conn" in str(info.value)
    assert "AIRFLOW_CONN_NO_SUCH_CONN" in str(info.value)


def test_missing_connection_through_the_override_is_named():
    with pytest.raises(ConfigurationError, match="archivist_test_missing"):
        config.load_storage(env={"ARCHIVIST_STORAGE_CONN_ID": "archivist_test_missing"})


def test_s3_connection_without_bucket_is_rejected(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_NO_BUCKET",
        json.dumps(
            {"conn_type": "aws", "login": "a", "password": SECRET, "extra": {"endpoint_url": "http://127.0.0.1:1"}}
        ),
    )
    with pytest.raises(ConfigurationError, match="names no bucket"):
        config.load_backups("archivist_test_no_bucket", env={})


def test_postgres_connection_without_database_is_rejected(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_NO_SCHEMA",
        json.dumps({"conn_type": "postgres", "host": "db", "login": "u", "password": SECRET}),
    )
    with pytest.raises(ConfigurationError, match="archivist_test_no_schema"):
        config.load_postgres("archivist_test_no_schema", env={})


# --- secrets never in a repr ----------------------------------------------------------------


def test_repr_hides_secrets_of_env_settings():
    pg = config.postgres_from_env(
        {"DATABASE_HOST": "db", "DATABASE_USER": "app", "DATABASE_NAME": "shop", "DATABASE_PASSWORD": SECRET}
    )
    es = config.elasticsearch_from_env({"ELASTICSEARCH_HOST": "es", "ELASTICSEARCH_PASSWORD": SECRET})
    s3 = config.s3_from_env({"S3_BUCKET_NAME": "b", "S3_SECRET_ACCESS_KEY": SECRET}, "S3_")
    for obj in (pg, es, s3):
        assert SECRET not in repr(obj)
        assert SECRET not in str(obj)
        assert SECRET not in f"{obj!r} {obj}"
    assert pg.password == es.password == s3.secret_access_key == SECRET  # held, only not shown


def test_repr_hides_secrets_of_connection_settings(connections):
    pg_password = connections["archivist_postgres"]["password"]
    s3_secret = connections["archivist_backups"]["password"]
    pg, backups = config.load_postgres(env={}), config.load_backups(env={})
    assert pg.password == pg_password and backups.secret_access_key == s3_secret
    assert pg_password not in repr(pg)
    assert s3_secret not in repr(backups)


# --- schedule and namespace -----------------------------------------------------------------


def test_cron_schedule():
    assert config.load_cron_schedule(env={}) == "0 1 * * *"
    assert config.load_cron_schedule(env={"CRON_SCHEDULE": "30 2 * * *"}) == "30 2 * * *"
    assert config.load_cron_schedule(env={"CRON_SCHEDULE": "30 2 * * *", "ARCHIVIST_SCHEDULE": "@hourly"}) == "@hourly"


def test_a_cron_schedule_of_off_makes_triggered_runs_only():
    for off in ("off", "None", " never "):
        assert config.load_cron_schedule(env={"ARCHIVIST_SCHEDULE": off}) is None
    assert config.load_cron_schedule(env={"CRON_SCHEDULE": "off"}) is None
    assert config.load_cron_schedule(env={"ARCHIVIST_SCHEDULE": "", "CRON_SCHEDULE": "  "}) == "0 1 * * *"


def test_namespace():
    assert config.load_namespace(env={}) == ""
    assert config.load_namespace(env={"NAMESPACE": "prod"}) == "prod"


# --- the backup bucket's key prefix ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  ", ""),
        ("stack-a/", "stack-a/"),
        ("stack-a", "stack-a/"),
        ("team/stack-a", "team/stack-a/"),
    ],
)
def test_parse_key_prefix_accepts(value, expected):
    assert config.parse_key_prefix(value, "test") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/stack-a/", "starts with '/'"),
        ("../stack-a/", "'..' segment"),
        ("a/../b", "'..' segment"),
        ("a/./b/", "'.' or '..' segment"),
        ("a//b/", "empty"),
        ("x" * 600, "longer than 512 bytes"),
    ],
)
def test_parse_key_prefix_refuses_with_the_prefix_and_source_named(value, problem):
    with pytest.raises(ConfigurationError) as info:
        config.parse_key_prefix(value, "BACKUP_* variables")
    assert problem in str(info.value) and "(BACKUP_* variables)" in str(info.value)
    assert repr(value)[:40] in str(info.value)


def test_backup_prefix_from_the_variable_or_the_connection_extra(connections, monkeypatch):
    env = {"BACKUP_BUCKET_NAME": "shared", "BACKUP_PREFIX": "stack-a"}
    assert config.load_backups(env=env).prefix == "stack-a/"
    assert config.load_backups(env={"BACKUP_BUCKET_NAME": "shared"}).prefix == ""
    conn = connections["archivist_backups"]
    conn["extra"]["key_prefix"] = "stack-b/"
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_PREFIXED", json.dumps(conn))
    assert config.load_backups("archivist_prefixed", env={}).prefix == "stack-b/"
    conn["extra"]["key_prefix"] = "../elsewhere/"
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_PREFIXED", json.dumps(conn))
    with pytest.raises(ConfigurationError, match="connection 'archivist_prefixed'"):
        config.load_backups("archivist_prefixed", env={})
    assert config.load_storage(env={"S3_BUCKET_NAME": "app", "S3_PREFIX": "x/"}).prefix == ""


def test_parse_postgres_databases():
    assert config.parse_postgres_databases("crm, billing,crm") == ("crm", "billing")
    assert config.parse_postgres_databases(None) == ()
    with pytest.raises(ConfigurationError, match=r"the database name 'a/b' is not 1 to 63 letters"):
        config.parse_postgres_databases(["ok", "a/b"])


def test_a_connection_named_by_the_caller_wins_over_the_spec_variables(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARCHIVIST_TEST_NAMED_PG",
        json.dumps({"conn_type": "postgres", "host": "named.example", "login": "u", "password": SECRET, "schema": "d"}),
    )
    env = {"DATABASE_HOST": "db", "DATABASE_USER": "app", "DATABASE_PASSWORD": "pw", "DATABASE_NAME": "app"}
    assert config.load_postgres(env=env).source == "DATABASE_* variables"
    named = config.load_postgres("archivist_test_named_pg", env=env)
    assert (named.host, named.source) == ("named.example", "connection 'archivist_test_named_pg'")


def test_rename_maps_come_from_a_mapping_a_list_or_a_comma_separated_string():
    pairs = (("products", "shop"), ("logs-*", "copy-logs-*"))
    assert config.parse_rename_map({"products": "shop", "logs-*": "copy-logs-*"}, "index_rename") == pairs
    assert config.parse_rename_map(["products=shop", " logs-* = copy-logs-* "], "index_rename") == pairs
    assert config.parse_rename_map("products=shop,logs-*=copy-logs-*", "--index-rename") == pairs
    assert config.parse_rename_map(None, "index_rename") == config.parse_rename_map([], "index_rename") == ()
    for wrong in ("products", "=shop", "products="):
        with pytest.raises(ConfigurationError, match=f"postgres_database_map: '{wrong}' is not old=new"):
            config.parse_rename_map([wrong], "postgres_database_map")


def test_drills_run_weekly_unless_told_otherwise():
    assert config.load_drill_schedule({}) == "0 3 * * 0"
    assert config.load_drill_schedule({"ARCHIVIST_DRILL_SCHEDULE": "30 4 * * *"}) == "30 4 * * *"
    assert config.load_drill_schedule({"ARCHIVIST_DRILL_SCHEDULE": "off"}) is None
    assert config.load_drill_after_backup({}) is False
    assert config.load_drill_after_backup({"ARCHIVIST_DRILL_AFTER_BACKUP": "yes"}) is True
    with pytest.raises(ConfigurationError, match="ARCHIVIST_DRILL_AFTER_BACKUP"):
        config.load_drill_after_backup({"ARCHIVIST_DRILL_AFTER_BACKUP": "sometimes"})
