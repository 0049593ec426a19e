"""aws connections as the Amazon provider's documentation writes them, used for real against the
S3 server: a storage backup and restore through connections in URI and JSON form, an assumed
role through the server's STS (its credentials used by boto3 and awscrt alike, and renewed),
path-style addressing, and config_kwargs' retries and timeouts reaching the client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from urllib.parse import quote, urlsplit

import pytest
from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError, EndpointConnectionError

from archivist import config
from archivist.errors import ConfigurationError
from archivist.runner import backup, restore
from archivist.s3_settings import S3Settings
from archivist.sources.storage import job
from archivist.transport import s3crt, s3io, s3session
from archivist.transport.backup_bucket import BackupStore
from archivist.transport.multipart import crc32c
from archivist.transport.object_uploads import CHECKSUM_HEADER

OBJECTS = {  # key: (body, content type, metadata); the large one goes through botocore, the rest awscrt
    "docs/readme.txt": (b"hello " * 100, "text/plain", {"owner": "ana"}),
    "docs/résumé 1.pdf": (b"%PDF" + bytes(range(256)) * 40, "application/pdf", {}),
    "big/blob.bin": (bytes(range(256)) * 8192, "application/octet-stream", {"size": "2MiB"}),
}
PART = 5 * 1024 * 1024
ROLE = "arn:minio:iam:::role/archivist-backups"


def _uri(login: str, secret: str, **params: str) -> str:
    """An aws connection URI as `Connection.get_uri()` writes it: keys URL-encoded, a trailing '@'."""
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return f"aws://{quote(login, safe='')}:{quote(secret, safe='')}@/?{query}"


def _json(login: str, secret: str, extra: dict) -> str:
    return json.dumps({"conn_type": "aws", "login": login, "password": secret, "extra": extra})


def _bucket_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _objects(s3, bucket: str) -> dict:
    found = {}
    for key in [o["Key"] for o in job.iter_objects(s3, bucket)]:
        got = s3.get_object(Bucket=bucket, Key=key)
        found[key] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return found


def _seed(s3, bucket: str) -> None:
    for key, (body, content_type, metadata) in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata)


def _wipe(s3, bucket: str) -> None:
    for key in [o["Key"] for o in job.iter_objects(s3, bucket)]:
        s3.delete_object(Bucket=bucket, Key=key)


@pytest.mark.parametrize("form", ["uri", "uri-extra", "json"])
def test_a_storage_backup_and_restore_through_documented_connections(form, monkeypatch, make_bucket, storage_settings):
    app, backups = make_bucket(), make_bucket()
    root = s3io.client(storage_settings)
    login, secret, endpoint = storage_settings.access_key_id, storage_settings.secret_access_key, app.endpoint_url

    def connection(bucket: str, prefix: str | None) -> str:
        flat = {"region_name": "us-east-1", "endpoint_url": endpoint, "bucket_name": bucket}
        nested = {
            "region_name": "us-east-1",
            "endpoint_url": endpoint,
            "service_config": {"s3": {"bucket_name": bucket}},
        }
        if prefix:
            flat["key_prefix"] = nested["key_prefix"] = prefix
        if form == "uri":  # the flat query of the docs' URI example
            return _uri(login, secret, **flat)
        if form == "uri-extra":  # a nested extra travels as JSON in __extra__, as get_uri() writes it
            return _uri(login, secret, __extra__=json.dumps(nested))
        return _json(login, secret, nested)

    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_APP", connection(app.bucket, None))
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_BACKUPS", connection(backups.bucket, "stack-a"))
    monkeypatch.setenv("ARCHIVIST_STORAGE_CONN_ID", "archivist_test_app")
    monkeypatch.setenv("ARCHIVIST_BACKUPS_CONN_ID", "archivist_test_backups")
    storage, store_settings = config.load_storage(), config.load_backups()
    assert (storage.conn_id, storage.bucket, store_settings.prefix) == ("archivist_test_app", app.bucket, "stack-a/")
    _seed(root, app.bucket)
    before = _objects(root, app.bucket)

    made = backup.run_backup(("storage",))
    store = BackupStore(store_settings)
    found = store.locate("latest")
    assert found.key.name == made["key"]
    assert root.list_objects_v2(Bucket=backups.bucket, Prefix="stack-a/")["KeyCount"] >= 1

    _wipe(root, app.bucket)
    result = restore.run_restore(store.bundle_source(found.key), found.key.name, ("storage",), "empty")
    assert result["problems"] == []
    assert _objects(root, app.bucket) == before


# --- an assumed role ---------------------------------------------------------------------------


@pytest.fixture
def role_connection(monkeypatch, make_bucket, storage_settings):
    """`role(bucket, **assume_role_kwargs)`: settings of a connection with the server's root keys
    and a role_arn assumed through the server's STS (MinIO's AssumeRole ignores the ARN and keeps
    the session policy given in the kwargs: the assumed credentials may do only what it allows)."""

    def role(bucket: str, **assume_role_kwargs) -> S3Settings:
        endpoint = storage_settings.endpoint_url
        extra = {
            "role_arn": ROLE,
            "region_name": "us-east-1",
            "endpoint_url": endpoint,
            "assume_role_kwargs": {"Policy": _bucket_policy(bucket), **assume_role_kwargs},
            # the provider never sends AssumeRole to the connection's endpoint_url, only to STS's own
            "service_config": {"s3": {"bucket_name": bucket}, "sts": {"endpoint_url": endpoint}},
        }
        login, secret = storage_settings.access_key_id, storage_settings.secret_access_key
        monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_ROLE", _json(login, secret, extra))
        return config.load_storage("archivist_test_role", env={})

    return role


def test_an_assumed_role_signs_every_request_of_boto3_and_awscrt(role_connection, make_bucket, storage_settings):
    allowed, other = make_bucket(), make_bucket()
    settings = role_connection(allowed.bucket)
    credentials = s3session.client_source(settings).session.get_credentials()
    assert isinstance(credentials, RefreshableCredentials) and credentials.method == "sts-assume-role"
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key != storage_settings.access_key_id and frozen.token

    job.check_bucket(settings)
    s3 = s3io.client(settings)
    s3io.upload_reader(s3, allowed.bucket, "through/boto3", _Stream(b"multipart " * 1000))
    assert s3io.open_object(s3, allowed.bucket, "through/boto3").read() == b"multipart " * 1000
    puts = s3crt.NativePuts(settings, PART)
    puts.put("through/awscrt", b"native", [(CHECKSUM_HEADER, crc32c(b"native"))]).result(timeout=30)
    assert s3.get_object(Bucket=allowed.bucket, Key="through/awscrt")["Body"].read() == b"native"

    # The root keys may write anywhere; the role's session policy only into `allowed`: so a
    # refusal elsewhere proves the server saw the assumed credentials, from either client.
    other_settings = S3Settings(**{**settings.__dict__, "bucket": other.bucket})
    with pytest.raises(ClientError, match="AccessDenied"):
        s3io.client(other_settings).put_object(Bucket=other.bucket, Key="x", Body=b"x")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3crt.NativePuts(other_settings, PART).put("x", b"x", [(CHECKSUM_HEADER, crc32c(b"x"))]).result(timeout=30)
    with pytest.raises(ConfigurationError, match=r"access denied.*role_arn"):
        job.check_bucket(other_settings)
    s3io.client(storage_settings).put_object(Bucket=other.bucket, Key="x", Body=b"x")


def test_assumed_credentials_are_renewed_for_boto3_and_awscrt(role_connection, make_bucket):
    """Credentials of 900 s (the least STS grants) are inside botocore's 15-minute renewal window
    from the start, so each use renews them: what a backup longer than its token sees near the end."""
    allowed = make_bucket()
    settings = role_connection(allowed.bucket, DurationSeconds=900)
    credentials = s3session.client_source(settings).session.get_credentials()
    keys = {credentials.get_frozen_credentials().access_key for _ in range(2)}
    assert len(keys) == 2

    loops = EventLoopGroup(1)
    provider = s3crt.credentials_provider(settings, ClientBootstrap(loops, DefaultHostResolver(loops)))
    crt_keys = {provider.get_credentials().result(timeout=30).access_key_id for _ in range(2)}
    assert len(crt_keys) == 2 and not crt_keys & keys

    s3, puts = s3io.client(settings), s3crt.NativePuts(settings, PART)
    for n in range(3):  # each request signed with newer credentials than the last
        puts.put(f"renewed/{n}", b"n", [(CHECKSUM_HEADER, crc32c(b"n"))]).result(timeout=30)
        s3.head_object(Bucket=allowed.bucket, Key=f"renewed/{n}")


def test_a_role_that_cannot_be_assumed_is_a_configuration_error(monkeypatch, storage_settings):
    endpoint = storage_settings.endpoint_url
    extra = {
        "role_arn": ROLE,
        "service_config": {"s3": {"bucket_name": "archivist-app"}, "sts": {"endpoint_url": endpoint}},
        "endpoint_url": endpoint,
    }
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_BAD_ROLE", _json("not-a-user", "not-its-secret", extra))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigurationError, match="archivist_test_bad_role.*add region_name"):
        s3io.client(config.load_storage("archivist_test_bad_role", env={}))

    extra["region_name"] = "us-east-1"
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_BAD_ROLE", _json("not-a-user", "not-its-secret", extra))
    with pytest.raises(ConfigurationError) as info:
        s3io.client(config.load_storage("archivist_test_bad_role", env={}))
    assert "archivist_test_bad_role" in str(info.value) and ROLE in str(info.value)
    assert "not-its-secret" not in str(info.value)


# --- addressing, retries and timeouts as configured ---------------------------------------------


def test_path_style_for_the_server_by_ip_and_by_name(monkeypatch, scratch_bucket, storage_settings):
    port = storage_settings.endpoint_url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost"):
        endpoint = f"http://{host}:{port}"
        extra = {"endpoint_url": endpoint, "service_config": {"s3": {"bucket_name": scratch_bucket.bucket}}}
        login, secret = storage_settings.access_key_id, storage_settings.secret_access_key
        monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_PATH", _json(login, secret, extra))
        settings = config.load_storage("archivist_test_path", env={})
        assert s3io.bucket_url(settings) == f"{endpoint}/{scratch_bucket.bucket}/"
        s3crt.NativePuts(settings, PART).put(host, b"p", [(CHECKSUM_HEADER, crc32c(b"p"))]).result(timeout=30)
        assert s3io.client(settings).get_object(Bucket=scratch_bucket.bucket, Key=host)["Body"].read() == b"p"


@pytest.mark.integration  # opens connections to a port nobody listens on
def test_config_kwargs_retries_and_timeouts_govern_the_requests(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    extra = {
        "endpoint_url": f"http://127.0.0.1:{closed}",
        "service_config": {"s3": {"bucket_name": "b"}},
        "config_kwargs": {"retries": {"total_max_attempts": 3, "mode": "standard"}, "connect_timeout": 1},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_RETRIES", _json("k", "s3cr3t-key", extra))
    s3 = s3io.client(config.load_storage("archivist_test_retries", env={}))
    attempts = []
    s3.meta.events.register("before-send.s3", lambda **kwargs: attempts.append(1))
    with pytest.raises(EndpointConnectionError):
        s3.head_bucket(Bucket="b")
    assert len(attempts) == 3
    assert s3.meta.config.connect_timeout == 1


class _Stream:
    def __init__(self, data: bytes):
        self._data = memoryview(data)

    def read(self, n: int = -1) -> bytes:
        n = len(self._data) if n < 0 else n
        chunk, self._data = bytes(self._data[:n]), self._data[n:]
        return chunk


VIRTUAL_DOMAIN = "archivist.test"


@pytest.fixture
def virtual_host_minio(tmp_path, monkeypatch, storage_settings):
    """A MinIO of its own that also answers virtual-hosted requests (MINIO_DOMAIN), on a free
    port; names under its domain resolve to 127.0.0.1 in this process only (botocore's sockets)."""
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    user, secret = "archivist-vhost", "archivist-vhost-secret"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": secret,
        "MINIO_DOMAIN": VIRTUAL_DOMAIN,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    binary = os.path.join(os.environ["ARCHIVIST_ROOT"], ".local", "bin", "minio")
    server = subprocess.Popen(
        [binary, "server", "--quiet", "--address", f"127.0.0.1:{ports[0]}"]
        + ["--console-address", f"127.0.0.1:{ports[1]}", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and (host == VIRTUAL_DOMAIN or host.endswith("." + VIRTUAL_DOMAIN)):
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/minio/health/live", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the virtual-hosted MinIO did not start", pytrace=False)
                time.sleep(0.3)
        yield f"http://{VIRTUAL_DOMAIN}:{ports[0]}", user, secret
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_virtual_hosted_addressing_when_config_kwargs_ask_for_it(virtual_host_minio, monkeypatch):
    endpoint, user, secret = virtual_host_minio
    bucket = "archivist-virtual"
    extra = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "config_kwargs": {"s3": {"addressing_style": "virtual"}},
        "service_config": {"s3": {"bucket_name": bucket}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_TEST_VIRTUAL", _json(user, secret, extra))
    settings = config.load_storage("archivist_test_virtual", env={})
    s3 = s3io.client(settings)
    hosts = []
    s3.meta.events.register("before-send.s3", lambda request, **_: hosts.append(urlsplit(request.url).hostname))
    s3.create_bucket(Bucket=bucket)
    job.check_bucket(settings, s3)
    s3io.upload_reader(s3, bucket, "v/object", _Stream(b"virtual " * 1000))
    assert s3io.open_object(s3, bucket, "v/object").read() == b"virtual " * 1000
    assert set(hosts) == {f"{bucket}.{VIRTUAL_DOMAIN}"}  # never the path-style host
    assert s3io.bucket_url(settings) == f"http://{bucket}.{endpoint.split('://', 1)[1]}/"  # where awscrt sends
