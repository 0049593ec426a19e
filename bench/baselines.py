"""The baselines: what a user's cron script would run instead of archivist, each tuned as its docs advise.

  PostgreSQL     pg_dump --format=plain | gzip > dump.sql.gz; restore: gunzip -c | psql --single-transaction
  Elasticsearch  elasticdump per index, --type=settings, mapping and data (--limit=10000, the largest page
                 a scroll may ask for); restore the same three in order, data with --limit=10000 --noRefresh
  storage        rclone copy bucket -> folder (--transfers/--checkers 16, --fast-list), then tar czf;
                 restore: tar xzf, then rclone copy folder -> bucket
  end to end     the three above one after another, tar czf of everything, the archive uploaded with rclone;
                 restore: download, tar xzf, then the three restores

The baselines keep less than archivist does (rclone's local copy loses each object's content type and
user metadata, elasticdump skips templates and aliases, nothing is checksummed), which only makes their
work lighter.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from archivist.config import ElasticsearchSettings
from bench.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".local" / "bench" / "bin"
SHIM = Path(__file__).resolve().parent / "elasticdump_shim.js"
AUTH_FILE = "elasticdump-auth.ini"
PG_DUMP_ARGS = "--format=plain --no-owner --no-privileges --no-password"
PSQL_ARGS = "-X -q -v ON_ERROR_STOP=1 --single-transaction --no-password -f -"
ELASTICDUMP_LIMIT = 10_000  # the largest scroll page Elasticsearch allows (index.max_result_window)
RCLONE_FLAGS = "--transfers 16 --checkers 16 --fast-list --no-check-dest --s3-no-check-bucket"
RCLONE_REMOTE = "bench"


@dataclass
class Step:
    """One command of a baseline, run by bash with `set -o pipefail`."""

    label: str
    command: str


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{name} is not installed: run bench/setup.sh (make bench does)")
    return str(path)


def env(t: Targets, es_version: str) -> dict[str, str]:
    """The baselines' environment: libpq variables, an rclone remote in variables, elasticdump's shim."""
    s3 = t.storage
    return {
        **t.postgres.libpq_env(),
        "RCLONE_CONFIG": "/dev/null",
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_TYPE": "s3",
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_PROVIDER": "Minio",
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_ACCESS_KEY_ID": s3.access_key_id,
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_SECRET_ACCESS_KEY": s3.secret_access_key,
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_ENDPOINT": s3.endpoint_url or "",
        f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_REGION": s3.region_name or "us-east-1",
        "BENCH_ES_VERSION": es_version,
        "NODE_OPTIONS": f"--require {SHIM}",
    }


def versions() -> dict[str, str]:
    import subprocess

    def first_line(args: list[str]) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not installed"

    return {
        "pg_dump": first_line(["pg_dump", "--version"]),
        "psql": first_line(["psql", "--version"]),
        "elasticdump": "elasticdump " + first_line([tool("elasticdump"), "--version"]),
        "node": "node " + first_line(["node", "--version"]),
        "rclone": first_line([tool("rclone"), "version"]),
        "tar": first_line(["tar", "--version"]),
        "gzip": first_line(["gzip", "--version"]),
    }


def _q(value: str | Path) -> str:
    return shlex.quote(str(value))


# --- PostgreSQL ---------------------------------------------------------------------------------------


def pg_backup(work: Path) -> list[Step]:
    return [Step("pg_dump | gzip", f"pg_dump {PG_DUMP_ARGS} | gzip > {_q(work / 'pg' / 'dump.sql.gz')}")]


def pg_restore(work: Path) -> list[Step]:
    return [Step("gunzip | psql", f"gunzip -c {_q(work / 'pg' / 'dump.sql.gz')} | psql {PSQL_ARGS} >/dev/null")]


# --- Elasticsearch ------------------------------------------------------------------------------------


def _elasticdump(work: Path, url: str, indices: list[str], importing: bool) -> list[Step]:
    """settings, mapping and data of each index, from the server to files or back."""
    ed, steps = tool("elasticdump"), []
    for index in indices:
        for kind in ("settings", "mapping", "data"):
            server, file = _q(url + "/" + index), _q(work / "es" / f"{index}.{kind}.json")
            source, target = (file, server) if importing else (server, file)
            extra = (f" --limit={ELASTICDUMP_LIMIT}" + (" --noRefresh" if importing else "")) if kind == "data" else ""
            steps.append(
                Step(
                    f"elasticdump {'import ' if importing else ''}{kind} {index}",
                    f"{ed} --input={source} --output={target} --type={kind}{extra}{_auth(work)} >/dev/null",
                )
            )
    return steps


def es_export(work: Path, url: str, indices: list[str]) -> list[Step]:
    return _elasticdump(work, url, indices, importing=False)


def es_import(work: Path, url: str, indices: list[str]) -> list[Step]:
    return _elasticdump(work, url, indices, importing=True)


# --- storage ------------------------------------------------------------------------------------------


def storage_download(work: Path, bucket: str) -> Step:
    return Step(
        "rclone copy bucket -> folder",
        f"{tool('rclone')} copy {RCLONE_FLAGS} {RCLONE_REMOTE}:{bucket} {_q(work / 'storage')}",
    )


def storage_backup(work: Path, bucket: str) -> list[Step]:
    return [
        storage_download(work, bucket),
        Step("tar czf storage", f"tar czf {_q(work / 'storage.tgz')} -C {_q(work / 'storage')} ."),
    ]


def storage_upload(folder: Path, bucket: str) -> Step:
    return Step(
        "rclone copy folder -> bucket", f"{tool('rclone')} copy {RCLONE_FLAGS} {_q(folder)} {RCLONE_REMOTE}:{bucket}"
    )


def storage_restore(work: Path, bucket: str) -> list[Step]:
    folder = work / "storage-restore"
    return [
        Step(
            "tar xzf storage",
            f"rm -rf {_q(folder)} && mkdir -p {_q(folder)} && tar xzf {_q(work / 'storage.tgz')} -C {_q(folder)}",
        ),
        storage_upload(folder, bucket),
    ]


# --- end to end ---------------------------------------------------------------------------------------


def archive_everything(work: Path) -> Step:
    """The cron script's last local step: one tgz of the dump, the elasticdump files and the objects."""
    return Step("tar czf everything", f"tar czf {_q(work / 'backup.tgz')} -C {_q(work)} pg es storage")


def upload_archive(work: Path, bucket: str, name: str) -> Step:
    return Step(
        "rclone copyto archive -> backup bucket",
        f"{tool('rclone')} copyto {RCLONE_FLAGS} {_q(work / 'backup.tgz')} {RCLONE_REMOTE}:{bucket}/{name}",
    )


def download_archive(work: Path, bucket: str, name: str) -> Step:
    return Step(
        "rclone copyto backup bucket -> archive",
        f"{tool('rclone')} copyto {RCLONE_FLAGS} {RCLONE_REMOTE}:{bucket}/{name} {_q(work / 'restore' / 'backup.tgz')}",
    )


def extract_everything(work: Path) -> Step:
    dest = work / "restore"
    return Step("tar xzf everything", f"tar xzf {_q(dest / 'backup.tgz')} -C {_q(dest)}")


def prepare(work: Path, es: ElasticsearchSettings | None = None) -> None:
    """A fresh work folder; with `es`, elasticdump's login in a 0600 file (`--httpAuthFile`), never argv."""
    if work.exists():
        shutil.rmtree(work)
    for sub in ("pg", "es", "storage", "restore"):
        (work / sub).mkdir(parents=True)
    if es is not None and es.user:
        auth = work / AUTH_FILE
        auth.touch(mode=0o600)
        auth.write_text(f"user={es.user}\npassword={es.password}\n")


def _auth(work: Path) -> str:
    return f" --httpAuthFile={_q(work / AUTH_FILE)}" if (work / AUTH_FILE).exists() else ""


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bash(command: str) -> list[str]:
    return ["bash", "-c", "set -euo pipefail; " + command]


__all__ = ["Step", "env", "versions", "prepare", "size_of", "bash", "os"]
