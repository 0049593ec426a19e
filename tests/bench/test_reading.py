"""bench/reading.py: each step of reading a bundle file measured in a process of its own, the bytes
each job reads being its members' (and the storage archive's objects'), and a damaged bundle failing
the measurement."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from tests.support import ROOT, bundle_bytes, sample_files

pytestmark = pytest.mark.unit
KEY = BackupKey(dt.date(2026, 12, 6), "rEaDiNgBeNc")
OBJECTS = {f"img/{i}.png": random.Random(i).randbytes(1000 * i) for i in range(1, 6)}


def _storage_tgz() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for key, body in OBJECTS.items():
            info = tarfile.TarInfo(key)
            info.size, info.pax_headers = len(body), {"ARCHIVIST.key": key}
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(out.getvalue(), mtime=0)


FILES = {**sample_files(KEY.backup_id), bundle.storage_path(KEY.backup_id): _storage_tgz()}


def _bundle_file(path: Path) -> Path:
    path.write_bytes(bundle_bytes(KEY, FILES, dt.datetime(2026, 12, 6, 1, tzinfo=dt.UTC)))
    return path


def _reading(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.reading", str(path), "--rounds", "1", "--no-wait"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # the library on the path as pytest has it (pyproject.toml), also without .local/env.sh
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "include"), os.environ.get("PYTHONPATH")])),
        },
    )


def test_each_step_is_measured_with_the_bytes_its_job_reads(tmp_path):
    run = _reading(_bundle_file(tmp_path / f"{KEY.name}.tgz"))
    assert run.returncode == 0, run.stderr[-3000:]
    cells = [line.split(" | ") for line in run.stdout.splitlines() if line.startswith("| ")]
    rows = {row[0].strip("| "): row for row in cells}
    for job in ("postgres", "elasticsearch", "storage"):
        want = sum(len(data) for member, data in FILES.items() if bundle.job_of_path(member) == job)
        assert rows[job][1] == f"{want:,}"
    assert rows["storage objects"][1] == f"{sum(len(body) for body in OBJECTS.values()):,}"
    assert rows["verify"][1] == f"{(tmp_path / f'{KEY.name}.tgz').stat().st_size:,}"


def test_a_damaged_bundle_fails_the_measurement(tmp_path):
    path = _bundle_file(tmp_path / f"{KEY.name}.tgz")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    run = _reading(path)
    assert run.returncode != 0
    assert "damaged" in run.stdout + run.stderr or "does not match" in run.stdout + run.stderr
