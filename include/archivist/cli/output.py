"""How a command reports: lines for people, one JSON document for scripts, or nothing but errors.

`--json` puts exactly one JSON document on stdout, whether the command succeeds or fails (then
with `error` and `exit_code`); `--quiet` prints nothing but errors. docs/CLI.md lists the fields.
No secret this process knows reaches either: every string is scrubbed first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click

from archivist.errors import ArchivistError

MASK = "****"


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def format_counts(counts: dict[str, Any] | None) -> str:
    """`tables=5 rows=1234 indices=4` from a job's counts; nested mappings are shown by size."""
    if not counts:
        return ""
    parts = []
    for name, value in counts.items():
        if isinstance(value, (dict, list, tuple)):
            parts.append(f"{name}={len(value)}")
        else:
            parts.append(f"{name}={value:,}" if isinstance(value, int) else f"{name}={value}")
    return " ".join(parts)


def _secret_values() -> set[str]:
    """Every secret this process could know, so an error message can never carry one."""
    found = set()
    for name, value in os.environ.items():
        if not value or len(value) < 4:
            continue
        if name.endswith(("PASSWORD", "SECRET_ACCESS_KEY", "SESSION_TOKEN")):
            found.add(value)
        elif name.startswith("AIRFLOW_CONN_"):
            try:
                conn = json.loads(value)
                if isinstance(conn, dict) and conn.get("password"):
                    found.add(str(conn["password"]))
                extra = conn.get("extra") if isinstance(conn, dict) else None
                if isinstance(extra, dict) and extra.get("aws_session_token"):
                    found.add(str(extra["aws_session_token"]))
            except ValueError:
                parsed = urlsplit(value)
                if parsed.password:
                    found.add(parsed.password)
    return {s for s in found if len(s) >= 4}


def scrub(text: str) -> str:
    for secret in sorted(_secret_values(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrub_document(value: Any) -> Any:
    """Every string in a JSON-ready value scrubbed; the shape and the other values left alone."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_document(k): scrub_document(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_document(v) for v in value]
    return value


def error_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, ArchivistError) else f"{type(exc).__name__}: {exc}"
    return scrub(text).strip() or type(exc).__name__


class Reported(ArchivistError):
    """A failure whose command already printed its outcome (its JSON document names the error
    too); carries the exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Output:
    """The mode a command reports in: `as_json` (one document on stdout), `quiet` (errors only),
    else lines for people."""

    as_json: bool = False
    quiet: bool = False

    @property
    def text(self) -> bool:
        return not (self.as_json or self.quiet)

    def say(self, line: str) -> None:
        """A line for people: printed in the text mode only."""
        if self.text:
            click.echo(line)

    def document(self, doc: Any) -> None:
        """The command's one JSON document, in the JSON mode only."""
        if self.as_json:
            click.echo(json.dumps(scrub_document(doc), indent=2, default=str))

    def failed(self, doc: dict[str, Any], exc: ArchivistError) -> Reported:
        """Prints `doc` with the error and exit code of `exc` (JSON mode); returns the error to raise."""
        self.document({**doc, "error": error_line(exc), "exit_code": exc.exit_code})
        return Reported(str(exc), exc.exit_code)


def error_document(exc: BaseException, exit_code: int) -> None:
    """The JSON document of a command that failed before it could print one of its own."""
    click.echo(json.dumps({"error": error_line(exc), "exit_code": exit_code}, indent=2))
