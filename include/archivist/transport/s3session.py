"""The boto3 session, the botocore config and the TLS choice behind every client of one bucket.

Settings from a connection take all three from the Amazon provider's AwsBaseHook: its session
signs with the connection's keys, profile or assumed role (refreshable credentials, re-assumed
before they expire, so a backup may outlast its STS token), its `config_kwargs` become the
client's botocore config, its `verify` the TLS check. Settings from the variables get a plain
session with their static keys, without importing Airflow.

One session per settings per process: assuming a role once serves every client of a task.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from archivist.s3_settings import S3Settings

# botocore's options whose value is a dict: a connection's value is laid over archivist's default
# key by key, so `{"retries": {"max_attempts": 10}}` keeps the standard retry mode.
NESTED_OPTIONS = ("s3", "retries", "proxies_config")


@dataclass(frozen=True)
class ClientSource:
    """Where the clients of one bucket come from."""

    session: boto3.session.Session
    config: Config | None  # the connection's botocore config (config_kwargs), None for the variables
    verify: bool | str | None  # TLS: False, a CA bundle's path, or None for the default check


_sources: dict[S3Settings, ClientSource] = {}
_lock = threading.Lock()  # boto3 sessions are not safe to make or use from several threads at once


def client_source(settings: S3Settings) -> ClientSource:
    """The session, config and TLS choice of `settings`, made once per process."""
    with _lock:
        source = _sources.get(settings)
        if source is None:
            source = _sources[settings] = _from_connection(settings) if settings.conn_id else _from_variables(settings)
        return source


def new_client(settings: S3Settings, service: str, **kwargs: Any) -> Any:
    """A client of `service` from `settings`' session (sessions may not make clients concurrently)."""
    source = client_source(settings)
    with _lock:
        return source.session.client(service, verify=source.verify, **kwargs)


def region(settings: S3Settings) -> str:
    """The region requests are signed for: the settings', else the session's (a profile's,
    AWS_DEFAULT_REGION), else us-east-1."""
    return settings.region_name or client_source(settings).session.region_name or "us-east-1"


def merged_config(defaults: dict[str, Any], connection: Config | None) -> Config:
    """archivist's botocore `defaults` with the connection's config laid over them: the
    connection's value wins, and a dict-valued option is merged key by key."""
    config = Config(**defaults)
    if connection is None:
        return config
    config = config.merge(connection)
    nested = {
        name: {**defaults[name], **getattr(connection, name)}
        for name in NESTED_OPTIONS
        if isinstance(defaults.get(name), dict) and isinstance(getattr(connection, name, None), dict)
    }
    return config.merge(Config(**nested)) if nested else config


def _from_variables(settings: S3Settings) -> ClientSource:
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=settings.secret_access_key or None,
        aws_session_token=settings.session_token or None,
    )
    return ClientSource(session=session, config=None, verify=None)


def _from_connection(settings: S3Settings) -> ClientSource:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=settings.conn_id, client_type="s3")
    return ClientSource(session=hook.get_session(), config=hook.conn_config.botocore_config, verify=hook.verify)
