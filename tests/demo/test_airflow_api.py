"""The demo's Airflow client logs in, and tells the user to log in, with the password the
SimpleAuthManager's passwords file holds, whatever set it."""

from __future__ import annotations

import json

from demo.airflow_api import AirflowClient, password_of


def test_the_login_shown_is_the_one_in_the_passwords_file(tmp_path, monkeypatch):
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "Gen3rated-x7", "viewer": "viewer"}) + "\n")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    monkeypatch.delenv("ARCHIVIST_AIRFLOW_PASSWORD", raising=False)
    monkeypatch.delenv("ARCHIVIST_AIRFLOW_USER", raising=False)
    assert password_of("admin") == "Gen3rated-x7"
    client = AirflowClient(base_url="http://127.0.0.1:9")
    assert client.login_line() == "user admin, password Gen3rated-x7"
    assert "Gen3rated-x7" not in repr(client)


def test_a_password_given_in_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "missing.json"))
    monkeypatch.setenv("ARCHIVIST_AIRFLOW_PASSWORD", "from-env")
    assert password_of("admin") == ""
    assert AirflowClient(base_url="http://127.0.0.1:9").login_line() == "user admin, password from-env"
