"""Where the age recipients and identity come from: the ENCRYPTION_* variables, else the
connection archivist_encryption, else nowhere (encryption off)."""

from __future__ import annotations

import json

import pytest
from pyrage import x25519

from archivist import config
from archivist.errors import ConfigurationError, VerificationError

ALICE, BOB = x25519.Identity.generate(), x25519.Identity.generate()


def test_no_connection_and_no_variable_means_off_and_says_where_an_identity_goes(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ARCHIVIST_ENCRYPTION", raising=False)
    settings = config.load_encryption(env={})
    assert not settings.enabled and not settings.defined
    with pytest.raises(VerificationError) as caught:
        settings.identity_keys("bundle object 'b.tgz.age'")
    message = str(caught.value)
    assert "connection 'archivist_encryption', which is not defined," in message
    assert "the password of a connection 'archivist_encryption'" in message and caught.value.exit_code == 4


def test_the_connection_gives_recipients_from_its_extra_and_the_identity_from_its_password(monkeypatch):
    conn = {
        "conn_type": "generic",
        "password": str(ALICE),
        "extra": {"recipients": [str(ALICE.to_public()), str(BOB.to_public())]},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_ENCRYPTION", json.dumps(conn))
    settings = config.load_encryption(env={})
    assert settings.enabled and settings.source == "connection 'archivist_encryption'"
    assert [str(r) for r in settings.recipient_keys()] == [str(ALICE.to_public()), str(BOB.to_public())]
    assert len(settings.identity_keys("b")) == 1
    assert str(ALICE) not in repr(settings)


def test_a_connection_without_recipients_only_restores(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_ENCRYPTION", json.dumps({"conn_type": "generic", "password": str(BOB)}))
    settings = config.load_encryption(env={})
    assert not settings.enabled and len(settings.identity_keys("b")) == 1


def test_a_recipients_extra_of_the_wrong_type_names_the_connection(monkeypatch):
    conn = {"conn_type": "generic", "extra": {"recipients": {"a": 1}}}
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_ENCRYPTION", json.dumps(conn))
    with pytest.raises(ConfigurationError, match="connection 'archivist_encryption': its extra `recipients`"):
        config.load_encryption(env={})


def test_the_variables_take_precedence_and_read_an_identity_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_ENCRYPTION", json.dumps({"conn_type": "generic", "password": str(BOB)}))
    key = tmp_path / "key.txt"
    key.write_text(f"# created: now\n# public key: {ALICE.to_public()}\n{ALICE}\n")
    env = {"ENCRYPTION_RECIPIENTS": f"{ALICE.to_public()},{BOB.to_public()}", "ENCRYPTION_IDENTITY_FILE": str(key)}
    settings = config.load_encryption(env=env)
    assert settings.recipients == (str(ALICE.to_public()), str(BOB.to_public()))
    assert settings.identity == f"# created: now\n# public key: {ALICE.to_public()}\n{ALICE}\n"
    assert "ENCRYPTION_RECIPIENTS" in settings.source


def test_an_unreadable_identity_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigurationError, match="ENCRYPTION_IDENTITY_FILE names .* which cannot be read"):
        config.load_encryption(env={"ENCRYPTION_IDENTITY_FILE": str(tmp_path / "missing.key")})


def test_a_connection_id_override_reads_that_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEAM_AGE", json.dumps({"conn_type": "generic", "password": str(ALICE)}))
    settings = config.load_encryption(env={"ARCHIVIST_ENCRYPTION_CONN_ID": "team_age"})
    assert settings.source == "connection 'team_age'" and settings.identity == str(ALICE)
