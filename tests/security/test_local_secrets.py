"""The local stack keeps its secrets: after `scripts/services.sh start` (what `make services`
runs), `.local/env.sh`, the Elasticsearch netrc, the file realm's password hashes and keystore,
the TLS private keys and Airflow's passwords file are mode 0600, no folder under `.local/` is
world-writable, and no file written to /tmp during the start holds a password of the stack. `write_secret`, which makes
the PostgreSQL password file initdb reads, gives 0600 even over a looser file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import ROOT

LOCAL = ROOT / ".local"
COMMON = ROOT / "scripts" / "common.sh"


# The private keys of scripts/tls.sh: the local CA's, the server's that PostgreSQL serves, the client's.
TLS_KEYS = [LOCAL / "tls" / "ca.key", LOCAL / "tls" / "server.key", LOCAL / "tls" / "client.key"]


def _passwords() -> list[str]:
    text = COMMON.read_text()
    found = re.findall(r'^(?:PG|ES|MINIO)_PASSWORD="([^"]+)"', text, re.M)
    assert len(found) == 3, found
    return found


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _secret_files() -> list[Path]:
    config = LOCAL / "es" / "home" / "config"
    files = [
        LOCAL / "env.sh",
        LOCAL / "es" / "curl.netrc",
        config / "users",
        config / "users_roles",
        config / "elasticsearch.keystore",
        *TLS_KEYS,
    ]
    passwords_json = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if passwords_json and Path(passwords_json).exists():  # written when Airflow first starts
        files.append(Path(passwords_json))
    return files


def _files_under(folder: str, since: float):
    for dirpath, _, names in os.walk(folder, onerror=lambda e: None):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and max(info.st_mtime, info.st_ctime) >= since:
                    yield path
            except OSError:
                continue


@pytest.mark.integration  # starts the servers
def test_services_start_leaves_secrets_private_and_nothing_in_tmp():
    started = time.time() - 1
    run = subprocess.run(
        ["bash", "scripts/services.sh", "start"], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert run.returncode == 0, run.stderr

    for path in _secret_files():
        assert _mode(path) == 0o600, f"{path} is {oct(_mode(path))}"
    if os.geteuid() == 0:  # the servers run as the service user, who must own the key they serve
        assert (LOCAL / "tls" / "server.key").owner() == "archivist"
    for dirpath, dirnames, _ in os.walk(LOCAL):
        for name in dirnames:
            folder = Path(dirpath) / name
            if not folder.is_symlink():
                assert not _mode(folder) & stat.S_IWOTH, f"{folder} is world-writable ({oct(_mode(folder))})"

    passwords = [p.encode() for p in _passwords()]
    leaked = []
    for path in _files_under("/tmp", started):
        try:
            with open(path, "rb") as f:
                body = f.read(16 * 1024 * 1024)
        except OSError:
            continue
        leaked += [path for p in passwords if p in body]
    assert leaked == [], f"files in /tmp hold a password of the local stack: {sorted(set(leaked))}"


def test_write_secret_replaces_a_looser_file_with_a_private_one(tmp_path):
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    subprocess.run(
        ["bash", "-c", f'source "{COMMON}"; write_secret "$1" "s3cret"', "-", str(target)], check=True, timeout=30
    )
    assert target.read_text() == "s3cret\n"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_no_script_of_the_stack_makes_a_temporary_file_in_tmp():
    # a bare `mktemp` makes its file in /tmp; these scripts make theirs beside where they belong
    for name in ("common.sh", "install.sh", "services.sh", "write_env.sh", "airflow.sh", "tls.sh"):
        script = ROOT / "scripts" / name
        for line in script.read_text().splitlines():
            assert not re.search(r"mktemp\s*\)|mktemp\s*$|mktemp\s+-[a-z]*\s*\)", line), f"{script.name}: {line}"
