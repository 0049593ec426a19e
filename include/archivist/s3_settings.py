"""One bucket of an S3-compatible store (MinIO or AWS S3), from the original tool's S3_*/BACKUP_*
variables or from an Airflow connection read as the Amazon provider's AwsBaseHook reads it.

A connection's settings keep its id: the transport asks AwsBaseHook for the session (static keys,
a profile, or an assumed role whose credentials refresh) and the botocore config (config_kwargs),
so every client of that bucket signs and retries as the connection says. No Airflow import here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archivist.errors import ConfigurationError
from archivist.settings_values import required


@dataclass(frozen=True)
class S3Settings:
    """One bucket of an S3-compatible store. Equal settings share one session per process."""

    bucket: str
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    endpoint_url: str | None = None
    region_name: str | None = None
    source: str = "connection 'archivist_storage'"
    session_token: str = field(default="", repr=False)
    # Backup bucket only: where this stack's bundles and staging live in a bucket shared by
    # several stacks ("" for the bucket's root); validated by config.parse_key_prefix.
    prefix: str = ""
    # The Airflow connection whose AwsBaseHook session signs requests, whatever the keys above
    # say (they are the connection's, kept for display); None: the keys above sign.
    conn_id: str | None = None
    role_arn: str | None = None
    # Changes whenever the connection does (a new role, config_kwargs, secret), so a process that
    # keeps sessions by settings, such as the API server, never reuses one made from an old connection.
    connection_digest: str = field(default="", repr=False)

    @property
    def credentials_hint(self) -> str:
        """What to check when the server refuses these credentials."""
        if self.role_arn:
            return f"the role {self.role_arn} (role_arn), that its trust policy lets these keys assume it, and the keys"
        if self.session_token:
            return "the access key, secret and session token"
        return "the access key and secret"


def s3_from_env(env: Mapping[str, str], prefix: str) -> S3Settings:
    """The spec's S3_* or BACKUP_* variables (`prefix`): static keys, path-style addressing."""
    return S3Settings(
        bucket=required(env, f"{prefix}BUCKET_NAME"),
        access_key_id=env.get(f"{prefix}ACCESS_KEY_ID", ""),
        secret_access_key=env.get(f"{prefix}SECRET_ACCESS_KEY", ""),
        endpoint_url=env.get(f"{prefix}ENDPOINT_URL") or None,
        region_name=env.get(f"{prefix}REGION") or env.get("AWS_DEFAULT_REGION") or None,
        source=f"{prefix}* variables",
        session_token=env.get(f"{prefix}SESSION_TOKEN", ""),
    )


def s3_from_aws_connection(conn: Any) -> S3Settings:
    """The bucket of an aws connection as the Amazon provider reads it: `conn` is its
    AwsConnectionWrapper (AwsBaseHook's `conn_config`). The bucket is the S3 service's
    `bucket_name` in the extra's service_config; the endpoint the S3 service's own, else the
    connection's; the keys from login and password, or the extra."""
    extra = conn.extra_config
    bucket = (conn.get_service_config("s3") or {}).get("bucket_name") or extra.get("bucket_name")
    if not bucket:
        raise ConfigurationError(
            f"connection '{conn.conn_id}' names no bucket: set extra "
            '{"service_config": {"s3": {"bucket_name": "..."}}}'
        )
    return S3Settings(
        bucket=bucket,
        access_key_id=conn.aws_access_key_id or "",
        secret_access_key=conn.aws_secret_access_key or "",
        endpoint_url=conn.get_service_endpoint_url("s3") or None,
        region_name=conn.region_name or None,
        source=f"connection '{conn.conn_id}'",
        session_token=conn.aws_session_token or "",
        conn_id=conn.conn_id,
        role_arn=conn.role_arn,
        connection_digest=connection_digest(conn.login, conn.password, extra),
    )


def connection_digest(login: str | None, password: str | None, extra: Mapping[str, Any]) -> str:
    """A fingerprint of everything a connection says, secrets included; never shown."""
    text = json.dumps([login, password, extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
