"""Who can read the bundles: age recipients (public keys) that backups encrypt to, and the
identity (private key) that restores, verifies and drills decrypt with.

From the ENCRYPTION_* variables when any is set (the command's way), else from the Airflow
connection `archivist_encryption`: its extra `recipients` (a list, or text with one key per line)
and its password (the identity, which Airflow masks in logs). Neither set: encryption is off.
The identity never appears in a repr or an error. See README.md#encrypted-bundles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archivist.errors import ConfigurationError, VerificationError
from archivist.format import encryption

ENCRYPTION_CONN_ID = "archivist_encryption"
RECIPIENTS_EXTRA = "recipients"
ENV_RECIPIENTS = "ENCRYPTION_RECIPIENTS"
ENV_IDENTITY = "ENCRYPTION_IDENTITY"
ENV_IDENTITY_FILE = "ENCRYPTION_IDENTITY_FILE"


@dataclass(frozen=True)
class EncryptionSettings:
    """age recipients (public, may be listed) and the identity (secret, kept out of every repr)."""

    recipients: tuple[str, ...] = ()
    identity: str = field(default="", repr=False)
    source: str = f"connection '{ENCRYPTION_CONN_ID}'"
    defined: bool = True  # False: the connection does not exist and no variable is set
    identity_hint: str = f"the password of connection '{ENCRYPTION_CONN_ID}'"

    @property
    def enabled(self) -> bool:
        """Whether backups are encrypted."""
        return bool(self.recipients)

    def recipient_keys(self) -> list[Any]:
        return encryption.parse_recipients(self.recipients, self.source)

    def identity_keys(self, bundle: str) -> list[Any]:
        """The identities that open `bundle`; a bundle that needs one when none is set is a
        verification failure that says where to put it."""
        if not self.identity:
            where = self.source if self.defined else f"{self.source}, which is not defined,"
            raise VerificationError(
                f"{bundle} is encrypted with age, and {where} holds no identity to open it: nothing was read "
                f"or written. Put the private key (AGE-SECRET-KEY-1..., from `age-keygen`) in {self.identity_hint}"
            )
        return encryption.parse_identities(self.identity, self.source)


def encryption_from_env(env: Mapping[str, str]) -> EncryptionSettings:
    """ENCRYPTION_RECIPIENTS (public keys, separated by spaces, commas or lines), and
    ENCRYPTION_IDENTITY_FILE (a file as `age-keygen -o` writes it) or ENCRYPTION_IDENTITY (its text)."""
    identity = env.get(ENV_IDENTITY, "")
    path = env.get(ENV_IDENTITY_FILE, "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                identity = f.read()
        except OSError as exc:
            raise ConfigurationError(
                f"{ENV_IDENTITY_FILE} names {path!r}, which cannot be read: {exc.strerror}"
            ) from None
    return EncryptionSettings(
        recipients=tuple(encryption.split_keys(env.get(ENV_RECIPIENTS, ""))),
        identity=identity,
        source=f"the variables {ENV_RECIPIENTS} / {ENV_IDENTITY_FILE}",
        identity_hint=f"a file named by {ENV_IDENTITY_FILE} (or the text of it in {ENV_IDENTITY})",
    )


def encryption_from_connection(conn: Any) -> EncryptionSettings:
    """The connection's extra `recipients` and its password, the identity."""
    source = f"connection '{conn.conn_id}'"
    raw = conn.extra_dejson.get(RECIPIENTS_EXTRA) or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, Sequence) or not all(isinstance(r, str) for r in raw):
        raise ConfigurationError(f"{source}: its extra `{RECIPIENTS_EXTRA}` must be a list of age public keys")
    return EncryptionSettings(
        recipients=tuple(k for r in raw for k in encryption.split_keys(r)),
        identity=conn.password or "",
        source=source,
        identity_hint=f"the password of {source}",
    )


def encryption_not_defined(conn_id: str) -> EncryptionSettings:
    """No connection and no variable: backups are not encrypted."""
    return EncryptionSettings(
        source=f"connection '{conn_id}'", defined=False, identity_hint=f"the password of a connection '{conn_id}'"
    )
