"""Sends an alert through the SMTP provider's SmtpNotifier, to the mail server and the addresses of
one Airflow connection (ARCHIVIST_SMTP_CONN_ID, default archivist_smtp, of type smtp).

The connection's host, port, login and password reach the mail server; its extra holds the
provider's `from_email` (and `disable_ssl`, `disable_tls`, `timeout`, `retry_limit`) and
archivist's own `to` (one address, several separated by commas, or a list) and `on_success`
(also mail a successful run; default false). Without the connection nothing is sent, and one
log line says so: alerts are optional."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archivist.alerts.message import Alert
from archivist.errors import ConfigurationError

DEFAULT_CONN_ID = "archivist_smtp"
CONN_ID_VARIABLE = "ARCHIVIST_SMTP_CONN_ID"
TRUE = frozenset({"true", "1", "yes", "on"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailTarget:
    """Where alerts go: the connection that reaches the mail server, the recipients, and whether a
    successful run is mailed too."""

    conn_id: str
    to: tuple[str, ...]
    on_success: bool


def conn_id(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(CONN_ID_VARIABLE, "").strip() or DEFAULT_CONN_ID


def target_from_extra(conn_id: str, extra: Mapping[str, Any]) -> MailTarget:
    """Reads the connection's extra; a missing sender or recipient names the key to add."""
    to = extra.get("to") or ()
    recipients = tuple(a.strip() for a in (to.replace(";", ",").split(",") if isinstance(to, str) else to))
    recipients = tuple(a for a in recipients if a)
    if not recipients:
        raise ConfigurationError(
            f'connection \'{conn_id}\' names no recipient of alerts: add "to": ["ops@example.org"] to its extra'
        )
    if not str(extra.get("from_email") or "").strip():
        raise ConfigurationError(
            f'connection \'{conn_id}\' names no sender of alerts: add "from_email": "airflow@example.org" to its extra'
        )
    on_success = extra.get("on_success", False)
    on_success = on_success if isinstance(on_success, bool) else str(on_success).strip().lower() in TRUE
    return MailTarget(conn_id, recipients, on_success)


def _not_defined(cid: str, alert: Alert) -> None:
    log.info(
        "alert not sent, connection '%s' is not defined (add an smtp connection to mail alerts): %s", cid, alert.subject
    )


def _notifier(target: MailTarget, alert: Alert):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        to=list(target.to), subject=alert.subject, html_content=alert.html(), smtp_conn_id=target.conn_id
    )


def send(alert: Alert, context: Mapping[str, Any], success: bool = False) -> bool:
    """Mails `alert` (a success alert only if the connection asks for it); True if it was sent."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    cid = conn_id()
    try:
        conn = BaseHook.get_connection(cid)
    except AirflowNotFoundException:
        _not_defined(cid, alert)
        return False
    target = target_from_extra(cid, conn.extra_dejson)
    if success and not target.on_success:
        return False
    # notify(), not the notifier's __call__: that would render the error text as a Jinja template.
    _notifier(target, alert).notify(dict(context))
    log.info("alert mailed to %s: %s", ", ".join(target.to), alert.subject)
    return True


async def send_async(alert: Alert, context: Mapping[str, Any]) -> bool:
    """`send` for the triggerer, which runs deadline callbacks in its event loop."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    cid = conn_id()
    try:
        conn = await BaseHook.aget_connection(cid)
    except AirflowNotFoundException:
        _not_defined(cid, alert)
        return False
    target = target_from_extra(cid, conn.extra_dejson)
    await _notifier(target, alert).async_notify(dict(context))
    log.info("alert mailed to %s: %s", ", ".join(target.to), alert.subject)
    return True
