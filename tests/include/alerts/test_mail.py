"""archivist.alerts.mail: the `archivist_smtp` connection's extra says who gets the alerts."""

from __future__ import annotations

import pytest

from archivist.alerts import mail
from archivist.errors import ConfigurationError

SENDER = {"from_email": "airflow@example.org"}


def test_recipients_as_a_list_or_a_string():
    assert mail.target_from_extra("c", {**SENDER, "to": ["a@x.org", "b@x.org"]}).to == ("a@x.org", "b@x.org")
    assert mail.target_from_extra("c", {**SENDER, "to": "a@x.org, b@x.org; c@x.org"}).to == (
        "a@x.org",
        "b@x.org",
        "c@x.org",
    )


def test_success_mails_are_off_unless_asked_for():
    assert mail.target_from_extra("c", {**SENDER, "to": "a@x.org"}).on_success is False
    assert mail.target_from_extra("c", {**SENDER, "to": "a@x.org", "on_success": True}).on_success is True
    assert mail.target_from_extra("c", {**SENDER, "to": "a@x.org", "on_success": "true"}).on_success is True
    assert mail.target_from_extra("c", {**SENDER, "to": "a@x.org", "on_success": "false"}).on_success is False


@pytest.mark.parametrize("to", [None, "", [], " , "])
def test_no_recipient_names_the_key_to_add(to):
    with pytest.raises(ConfigurationError, match=r"connection 'archivist_smtp' names no recipient.*\"to\""):
        mail.target_from_extra("archivist_smtp", {**SENDER, "to": to})


def test_no_sender_names_the_key_to_add():
    with pytest.raises(ConfigurationError, match=r"connection 'archivist_smtp' names no sender.*\"from_email\""):
        mail.target_from_extra("archivist_smtp", {"to": "a@x.org"})


def test_the_connection_id_can_be_changed():
    assert mail.conn_id({}) == "archivist_smtp"
    assert mail.conn_id({"ARCHIVIST_SMTP_CONN_ID": "ops_mail"}) == "ops_mail"
