"""The `archivist` command as a user of the original tool runs it: the spec's environment
variables (its README's) set, no Airflow connection in sight. Shared by tests/include/test_cli.py
and the fault tests."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import time
from typing import Any
from urllib.parse import urlsplit

from archivist.config import ElasticsearchSettings, PostgresSettings, S3Settings
from tests.support import ROOT

SPEC_PREFIXES = ("DATABASE_", "ELASTICSEARCH_", "S3_", "BACKUP_")


def spec_env(
    pg: PostgresSettings, es: ElasticsearchSettings, storage: S3Settings, backups: S3Settings, es_user: str = ""
) -> dict[str, str]:
    """This process's environment with the original tool's variables, and no AIRFLOW_CONN_* at all."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", *SPEC_PREFIXES)) and k not in ("BACKUPS_KEPT", "NAMESPACE")
    }
    url = urlsplit(es.url)
    env.update(
        {
            "DATABASE_HOST": pg.host,
            "DATABASE_PORT": str(pg.port),
            "DATABASE_NAME": pg.dbname,
            "DATABASE_USER": pg.user,
            "DATABASE_PASSWORD": pg.password,
            "ELASTICSEARCH_PROTOCOL": url.scheme,
            "ELASTICSEARCH_HOST": url.hostname or "",
            "ELASTICSEARCH_PORT": str(url.port),
            "BACKUPS_KEPT": "30",
        }
    )
    if es.user or es_user:
        env.update({"ELASTICSEARCH_USER": es.user or es_user, "ELASTICSEARCH_PASSWORD": es.password})
    for prefix, s3 in (("S3_", storage), ("BACKUP_", backups)):
        env.update(
            {
                f"{prefix}ACCESS_KEY_ID": s3.access_key_id,
                f"{prefix}SECRET_ACCESS_KEY": s3.secret_access_key,
                f"{prefix}BUCKET_NAME": s3.bucket,
                f"{prefix}ENDPOINT_URL": s3.endpoint_url or "",
                f"{prefix}REGION": s3.region_name or "us-east-1",
            }
        )
        if s3.session_token:
            env[f"{prefix}SESSION_TOKEN"] = s3.session_token
    return env


def archivist(env: dict[str, str], *args: str, timeout: int = 300, cwd: Any = None) -> subprocess.CompletedProcess:
    """The installed `archivist` command (scripts/install.sh puts it in .local/bin)."""
    command = shutil.which("archivist", path=env.get("PATH"))
    assert command, (
        "the archivist command is not on PATH: run `bash scripts/install.sh python` and source .local/env.sh"
    )
    return subprocess.run(  # stdin is no terminal, however pytest was started
        [command, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def on_terminal(
    env: dict[str, str], *args: str, answer: tuple[str, str] | None = None, timeout: float = 300
) -> tuple[int, str]:
    """The installed `archivist` command with stdin, stdout and stderr on one pseudo-terminal, as a
    person runs it; returns its exit code and everything it printed there. With `answer`
    (question, reply), the reply is typed once the question has appeared."""
    command = shutil.which("archivist", path=env.get("PATH"))
    assert command, "the archivist command is not on PATH: source .local/env.sh"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(
        [command, *args], stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm"}, cwd=ROOT
    )
    os.close(slave)
    printed, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command and every child have closed the terminal
                break
            if not chunk:
                break
            printed += chunk
            if answer and answer[0].encode() in printed:
                os.write(master, answer[1].encode() + b"\n")
                answer = None
        else:
            proc.kill()
        return proc.wait(timeout=30), printed.decode(errors="replace")
    finally:
        os.close(master)
