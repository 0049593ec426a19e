"""No secret ever leaves the settings: distinctive, working secrets in all four connections
(and in the spec's variables for the `archivist` command) are searched for, after real
backups, restores and failing runs, in everything a user or another process could read:
captured output, Airflow's log files, XComs and rendered fields in Airflow's metadata
database, every member of every bundle made (and of the storage archive inside), and the
argv of every process sampled every 50 ms while the runs went on.

The backups read the demo stack; the restores (which run at the same time) write into two
databases, two buckets and Elasticsearch indices of this test's own, so no other test's data
is touched. Credentials, each made for the test and removed after it: a PostgreSQL superuser
role, MinIO STS temporary keys (secret + session token), and an Elasticsearch superuser in the
server's file realm, which every request must log in as (the local server runs with security
on)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, quote_plus

import boto3
import psutil
import psycopg
import pytest
from psycopg import sql

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.base import DumpOptions
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from tests.faults.secrets_support import bundle_blobs, objects_under
from tests.spec_support import SPEC_PREFIXES, archivist, spec_env
from tests.support import dags_test

ROLE = "archivist_secret_test"
ES_USER = "archivist-es-secret-user"
UNKNOWN_KEY = "bundle-2000-01-01-AAAAAAAAAAA"
DAG_KEY_RE = re.compile(r"backup key: (bundle-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{11})")
CLI_KEY_RE = re.compile(r"^key\s+(bundle-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{11})$", re.M)
RUN_ID_RE = re.compile(r"DagRun Finished: dag_id=(archivist_\w+), .*?run_id=([^,\s]+),")
METADATA_TABLES = ("xcom", "rendered_task_instance_fields", "dag_run", "task_instance", "task_instance_history", "log")


def _admin(pg: PostgresSettings, dbname: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.user,
        password=pg.password,
        dbname=dbname or pg.dbname,
        autocommit=True,
        connect_timeout=5,
    )


def _drop_role(conn: psycopg.Connection) -> None:
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
        return
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ROLE,))
    role = sql.Identifier(ROLE)
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))  # what the restores created
    conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
    conn.execute(sql.SQL("DROP ROLE {}").format(role))


@pytest.fixture
def secret_postgres(pg_settings):
    """A superuser role with a distinctive password, and two empty databases the restores write
    into (so no restore here touches the demo data other tests use); all dropped afterwards."""
    password = f"pg-S3cr3t-{secrets.token_hex(12)}"
    scratch = [f"archivist_secrets_{secrets.token_hex(4)}" for _ in range(2)]
    with _admin(pg_settings) as conn:
        _drop_role(conn)  # left by a run that was killed
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password))
        )
        for name in scratch:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield (
        PostgresSettings(pg_settings.host, pg_settings.port, ROLE, pg_settings.dbname, password, "secret test"),
        scratch,
    )
    with _admin(pg_settings) as conn:
        for name in scratch:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        _drop_role(conn)


@pytest.fixture
def probe_indices(es_client):
    """Indices of this test's own, so the Elasticsearch part never races other tests over the demo
    indices (nor the benchmark's bench-* ones): `a` for the backup DAG, `r1` and `r2` in the bundle
    the restores restore (the DAG restores r1, the command r2)."""
    prefix = f"secrets-probe-{secrets.token_hex(4)}"
    names = {part: f"{prefix}-{part}" for part in ("a", "r1", "r2")}
    for name in names.values():
        es_client.indices.create(index=name, settings={"number_of_shards": 1, "number_of_replicas": 0})
        for i in range(50):
            es_client.index(index=name, id=str(i), document={"n": i, "text": f"probe document {i}"})
        es_client.indices.refresh(index=name)
    yield names
    es_client.options(ignore_status=404).indices.delete(index=f"{prefix}-*")


@pytest.fixture
def restore_buckets(storage_settings):
    """Two empty buckets the storage restores write into; removed afterwards."""
    s3 = s3io.client(storage_settings)
    names = [f"archivist-secrets-{secrets.token_hex(5)}" for _ in range(2)]
    for name in names:
        s3.create_bucket(Bucket=name)
    yield names
    for name in names:
        s3io.abort_uploads(s3, name, "")
        for key in objects_under(s3, name, ""):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


def _temporary_credentials(root: S3Settings, bucket: str) -> S3Settings:
    """MinIO STS AssumeRole with the root keys and no policy: full access, a random secret and a session token."""
    sts = boto3.session.Session().client(
        "sts",
        endpoint_url=root.endpoint_url,
        region_name=root.region_name or "us-east-1",
        aws_access_key_id=root.access_key_id,
        aws_secret_access_key=root.secret_access_key,
    )
    got = sts.assume_role(RoleArn="arn:xxx:xxx:xxx:xxxx", RoleSessionName="secrets", DurationSeconds=3600)
    creds = got["Credentials"]
    return S3Settings(
        bucket=bucket,
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        endpoint_url=root.endpoint_url,
        region_name=root.region_name or "us-east-1",
        source="secret test",
        session_token=creds["SessionToken"],
    )


def _connections(
    pg: PostgresSettings, es: ElasticsearchSettings, storage: S3Settings, backups: S3Settings
) -> dict[str, str]:
    """The four AIRFLOW_CONN_* variables carrying the secrets."""
    host, port = es.url.split("://", 1)[1].rsplit(":", 1)

    def aws(s3: S3Settings) -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": s3.access_key_id,
                "password": s3.secret_access_key,
                "extra": {
                    "endpoint_url": s3.endpoint_url,
                    "region_name": s3.region_name,
                    "aws_session_token": s3.session_token,
                    "service_config": {"s3": {"bucket_name": s3.bucket}},
                },
            }
        )

    return {
        "AIRFLOW_CONN_ARCHIVIST_POSTGRES": json.dumps(
            {
                "conn_type": "postgres",
                "host": pg.host,
                "port": pg.port,
                "login": pg.user,
                "password": pg.password,
                "schema": pg.dbname,
            }
        ),
        "AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH": json.dumps(
            {
                "conn_type": "elasticsearch",
                "host": host,
                "port": int(port),
                "login": es.user,
                "password": es.password,
                "extra": {"scheme": "http"},
            }
        ),
        "AIRFLOW_CONN_ARCHIVIST_STORAGE": aws(storage),
        "AIRFLOW_CONN_ARCHIVIST_BACKUPS": aws(backups),
    }


class ArgvSampler:
    """Every process's argv, sampled every 50 ms in a background thread."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.seen, self.samples = interval, set(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="argv-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in psutil.process_iter(["cmdline"]):
                cmdline = proc.info.get("cmdline")
                if cmdline:
                    self.seen.add("\0".join(cmdline))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _run_all(calls: dict[str, callable], one_at_a_time: tuple[str, ...] = ()) -> dict[str, object]:
    """Every call at once, each in a thread of its own, but those named in `one_at_a_time` (backups
    and restores, which take the stack's lock) one after another in one more thread."""
    in_turn = {name: call for name, call in calls.items() if name in one_at_a_time}
    with ThreadPoolExecutor(max_workers=len(calls) - len(in_turn) + 1) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items() if name not in in_turn}
        turns = pool.submit(lambda: {name: call() for name, call in in_turn.items()})
        return {**{name: future.result() for name, future in futures.items()}, **turns.result()}


def _output(run) -> str:
    return (run.stdout or "") + (run.stderr or "")


def _ok(runs: dict, *names: str) -> None:
    for name in names:
        out = _output(runs[name])
        errors = [line for line in out.splitlines() if re.search(r"error|Traceback|failed", line, re.I)]
        assert runs[name].returncode == 0, f"{name} failed:\n" + "\n".join(errors[:40]) + "\n...\n" + out[-2000:]


def _variants(secret: str) -> set[bytes]:
    return {v.encode() for v in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1])}


def test_no_secret_leaks_from_dags_cli_logs_xcom_bundles_or_argv(
    secret_postgres,
    probe_indices,
    restore_buckets,
    pg_settings,
    es_settings,
    storage_settings,
    backups_settings,
    es_user,
    tmp_path,
    monkeypatch,
):
    for name in list(os.environ):  # the DAG runs must read the connections, not spec variables
        if name.startswith(SPEC_PREFIXES):
            monkeypatch.delenv(name)
    pg, scratch_dbs = secret_postgres
    probe = probe_indices
    # The bundle the restores restore, made beforehand with the ordinary connections, so that the
    # restores run at the same time as the backups (into targets of their own).
    source_key = backup.run_backup(options=DumpOptions(f"{probe['r1']},{probe['r2']}"))["key"]

    es = ElasticsearchSettings(es_settings.url, ES_USER, f"es-S3cr3t-{secrets.token_hex(12)}", "secret test")
    es_user(es.user, es.password, "superuser")
    storage = _temporary_credentials(storage_settings, storage_settings.bucket)
    backups = _temporary_credentials(storage_settings, backups_settings.bucket)
    the_secrets = {
        "postgres password": pg.password,
        "elasticsearch password": es.password,
        "storage secret key": storage.secret_access_key,
        "storage session token": storage.session_token,
        "backups secret key": backups.secret_access_key,
        "backups session token": backups.session_token,
    }
    assert all(len(s) >= 20 for s in the_secrets.values()) and len(set(the_secrets.values())) == 6
    conns = _connections(pg, es, storage, backups)
    restore_conns = _connections(
        dataclasses.replace(pg, dbname=scratch_dbs[0]),
        es,
        dataclasses.replace(storage, bucket=restore_buckets[0]),
        backups,
    )
    env = spec_env(pg, es, storage, backups)
    restore_env = {**env, "DATABASE_NAME": scratch_dbs[1], "S3_BUCKET_NAME": restore_buckets[1]}
    # Wrong variants that still carry each secret, so an echo of them would be found too.
    wrong = {
        **env,
        "DATABASE_PASSWORD": pg.password + "-wrong",
        "S3_SECRET_ACCESS_KEY": storage.secret_access_key + "x",
        "BACKUP_SESSION_TOKEN": backups.session_token + "x",
        "ELASTICSEARCH_PASSWORD": es.password + "-wrong",
    }
    wrong_pg = {**env, "DATABASE_PASSWORD": pg.password + "-wrong"}
    bundle_file = tmp_path / "simple.tgz"
    started = time.time()

    with ArgvSampler() as sampler:
        first = _run_all(
            {
                "dag backup": lambda: dags_test("archivist_backup", {"index_pattern": probe["a"]}, env=conns),
                "dag restore": lambda: dags_test(
                    "archivist_restore",
                    {"key": source_key, "mode": "replace", "indices": [probe["r1"]]},
                    env=restore_conns,
                ),
                "dag restore of an unknown key": lambda: dags_test(
                    "archivist_restore", {"key": UNKNOWN_KEY, "mode": "replace"}, env=conns
                ),
                "info": lambda: archivist(env, "info"),
                "check": lambda: archivist(env, "check"),
                "simple-check": lambda: archivist(env, "simple-check"),
                "list": lambda: archivist(env, "list", "--meta"),
                # Without Elasticsearch: these commands have no index option, and every index (other
                # tests' included) would be backed up; the DAG's bundle carries this test's index instead.
                "backup": lambda: archivist(env, "-v", "backup", "--jobs", "postgres,storage"),
                "simple-backup": lambda: archivist(
                    env, "-v", "simple-backup", "--jobs", "postgres,storage", "--output", str(bundle_file)
                ),
                "restore": lambda: archivist(
                    restore_env, "-v", "restore", source_key, "--mode", "replace", "--yes", "--indices", probe["r2"]
                ),
                "check with wrong secrets": lambda: archivist(wrong, "-v", "check"),
                "list with a wrong session token": lambda: archivist(
                    {**env, "BACKUP_SESSION_TOKEN": backups.session_token + "x"}, "list"
                ),
                "backup with a wrong password": lambda: archivist(
                    wrong_pg, "-v", "backup", "--jobs", "postgres,storage"
                ),
            },
            one_at_a_time=("dag backup", "dag restore", "backup", "restore"),
        )
        _ok(
            first,
            "dag backup",
            "dag restore",
            "info",
            "check",
            "simple-check",
            "list",
            "backup",
            "simple-backup",
            "restore",
        )
        dag_key = DAG_KEY_RE.search(_output(first["dag backup"])).group(1)
        cli_key = CLI_KEY_RE.search(first["backup"].stdout).group(1)
        second = _run_all(
            {
                "verify dag bundle": lambda: archivist(env, "verify", dag_key),
                "verify cli bundle": lambda: archivist(env, "verify", cli_key),
                "verify file": lambda: archivist(env, "verify", str(bundle_file)),
                "simple-restore": lambda: archivist(
                    restore_env, "-v", "simple-restore", str(bundle_file), "--mode", "replace", "--yes"
                ),
            }
        )
        _ok(second, *second)
    runs = {**first, **second}
    print(f"runs took {time.time() - started:.0f}s")

    # The runs did what they should, and the failing ones say why.
    assert "counts match the bundle" in runs["restore"].stdout and "counts match" in runs["simple-restore"].stdout
    failed = runs["dag restore of an unknown key"]
    assert failed.returncode != 0 and f"no bundle named {UNKNOWN_KEY!r}" in _output(failed), _output(failed)[-3000:]
    failed = runs["check with wrong secrets"]
    assert failed.returncode == 2, _output(failed)
    assert "FAIL database: cannot log in to database 'archivist_demo'" in failed.stdout
    assert "password authentication failed" in failed.stdout
    assert (
        f"FAIL elasticsearch: cannot log in to Elasticsearch at {es.url} (ELASTICSEARCH_* variables) as user "
        f"'{ES_USER}': unable to authenticate user [{ES_USER}] (401); check the user and password" in failed.stdout
    )
    for item in ("storage: cannot reach bucket", "backup bucket: cannot reach bucket"):  # wrong secret; wrong token
        line = next(line for line in failed.stdout.splitlines() if line.startswith(f"FAIL {item}"))
        assert "access denied" in line and line.endswith("check the access key, secret and session token"), line
    failed = runs["list with a wrong session token"]  # a credentials problem (exit 2), not an unreachable server
    assert failed.returncode == 2, _output(failed)
    assert failed.stderr.strip().endswith(
        "access denied (InvalidTokenId); check the access key, secret and session token"
    ), failed.stderr
    failed = runs["backup with a wrong password"]
    assert failed.returncode == 2, _output(failed)
    assert (
        "cannot log in to database 'archivist_demo'" in failed.stderr and "check the user and password" in failed.stderr
    )
    assert "****" in runs["info"].stdout  # shown masked, and set
    for dbname in scratch_dbs:  # the restores logged in as the secret role: it owns what they created
        with _admin(pg_settings, dbname) as conn:
            owned = conn.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", (ROLE,)).fetchone()[0]
        assert owned >= 1, f"no table in {dbname} was created by {ROLE}"

    # Everything that could carry a secret.
    corpus: list[tuple[str, bytes]] = [(f"output of {name}", _output(run).encode()) for name, run in runs.items()]
    logs = [
        p
        for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*")
        if p.is_file() and p.stat().st_mtime >= started - 1
    ]
    corpus += [(f"log file {p}", p.read_bytes()) for p in logs]

    run_ids = [
        m.groups()
        for name in ("dag backup", "dag restore", "dag restore of an unknown key")
        for m in RUN_ID_RE.finditer(_output(runs[name]))
    ]
    assert sorted(dag for dag, _ in run_ids) == ["archivist_backup", "archivist_restore", "archivist_restore"], run_ids
    with _airflow_db() as conn:
        for table in METADATA_TABLES:
            rows = conn.execute(
                sql.SQL("SELECT row_to_json(t)::text FROM {} t WHERE dag_id = ANY(%s)").format(sql.Identifier(table)),
                (["archivist_backup", "archivist_restore"],),
            ).fetchall()
            corpus += [(f"airflow table {table}", row[0].encode()) for row in rows]
        ours = conn.execute("SELECT count(*) FROM xcom WHERE run_id = ANY(%s)", ([r for _, r in run_ids],)).fetchone()[
            0
        ]
        assert ours >= 8, "the runs' XComs were not found, so the search would prove nothing"

    store = BackupStore(backups_settings)
    metas = 0
    for key in (dag_key, cli_key, source_key):
        for where, blob in bundle_blobs(store.open_bundle(BackupKey.parse(key)), key):
            corpus.append((where, blob))
            metas += where.endswith("/meta.json")
    with open(bundle_file, "rb") as f:
        for where, blob in bundle_blobs(f, "simple-backup file"):
            corpus.append((where, blob))
            metas += where.endswith("/meta.json")
    assert metas == 4, "a bundle without meta.json: the search would miss it"

    argv = "\n".join(sampler.seen)
    corpus.append(("sampled argv", argv.encode()))
    assert sampler.samples >= 20
    assert "dags\0test\0archivist_backup" in argv and "archivist\0-v\0backup" in argv.replace("/", "\0"), (
        "the sampler never saw the runs' processes"
    )

    control = json.dumps(conns).encode()  # the search finds every secret where it is known to be
    assert all(any(v in control for v in _variants(s)) for s in the_secrets.values())
    leaks = sorted(
        {
            (name, where)
            for where, blob in corpus
            for name, secret in the_secrets.items()
            if any(v in blob for v in _variants(secret))
        }
    )
    assert not leaks, "secrets found: " + "; ".join(f"{name} in {where}" for name, where in leaks)


def _airflow_db() -> psycopg.Connection:
    """Airflow's metadata database, from the SQLAlchemy URL Airflow itself uses."""
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
    return psycopg.connect(url, autocommit=True)
