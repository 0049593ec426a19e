"""archivist.errors: a failure in the middle of a job becomes an error that names the server and
what to fix. Elasticsearch's refusals come from the real server, through the ordinary client and
through the raw one whose answers stay bytes."""

from __future__ import annotations

import socket

import pytest

from archivist.config import ElasticsearchSettings
from archivist.errors import ConfigurationError, JobFailedError, UnreachableError
from archivist.runner.failures import failures_named
from archivist.sources.elasticsearch import cluster as es_cluster

CLIENTS = pytest.mark.parametrize("make_client", [es_cluster.client, es_cluster.raw_client], ids=["parsed", "raw"])


def _where(settings: ElasticsearchSettings) -> str:
    return f"Elasticsearch at {settings.url} ({settings.source})"


def _assert_reason_not_raw(message: str) -> None:
    assert "b'" not in message and "{" not in message and "for REST request" not in message, message


@CLIENTS
def test_a_login_refused_mid_job_names_the_user_and_what_to_fix(es_settings, make_client):
    wrong = ElasticsearchSettings(es_settings.url, es_settings.user, "wrong-password", es_settings.source)
    with pytest.raises(ConfigurationError) as caught, failures_named("elasticsearch", wrong):
        make_client(wrong).search(index="*", size=1)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith(
        f"{_where(es_settings)} stopped accepting user '{es_settings.user}' during "
        f"the elasticsearch job: unable to authenticate user [{es_settings.user}]"
    )
    assert message.endswith("(401); check the user and password")
    _assert_reason_not_raw(message)


@CLIENTS
def test_a_request_the_user_may_not_make_names_the_role_to_give(es_settings, es_user, make_client):
    weak = ElasticsearchSettings(
        es_settings.url, es_user("archivist-errors-weak", "weak-password-1"), "weak-password-1", es_settings.source
    )
    with pytest.raises(ConfigurationError) as caught, failures_named("restore", weak):
        make_client(weak).search(index="*", size=1)
    message = str(caught.value)
    assert message.startswith(
        f"user 'archivist-errors-weak' may not do what the restore job asked of "
        f"{_where(es_settings)}: action [indices:data/read/search] is unauthorized"
    )
    assert message.endswith("(403); give the user a role that allows backups and restores, for example superuser")
    _assert_reason_not_raw(message)


@CLIENTS
def test_any_other_refusal_fails_the_job_with_the_servers_reason(es_settings, make_client):
    with pytest.raises(JobFailedError) as caught, failures_named("elasticsearch", es_settings):
        make_client(es_settings).search(index="archivist-errors-no-such-index", size=1)
    assert caught.value.exit_code == 7
    assert str(caught.value) == (
        f"{_where(es_settings)} refused a request of the elasticsearch job: "
        "no such index [archivist-errors-no-such-index] (404)"
    )


def test_a_server_that_does_not_answer_is_reported_lost(es_settings):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = ElasticsearchSettings(f"http://127.0.0.1:{port}", es_settings.user, es_settings.password)
    with pytest.raises(UnreachableError) as caught, failures_named("elasticsearch", gone):
        es_cluster.client(gone, quick=True).search(index="*", size=1)
    assert str(caught.value).startswith(f"the elasticsearch job lost Elasticsearch at {gone.url} ({gone.source}): ")
