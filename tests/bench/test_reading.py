"""bench/reading.py: each step of reading a bundle file measured in a process of its own, the bytes
each job reads being its members', and a damaged bundle failing the measurement."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from tests.support import ROOT, bundle_bytes, sample_files

pytestmark = pytest.mark.unit
KEY = BackupKey(dt.date(2026, 12, 6), "rEaDiNgBeNc")
FILES = sample_files(KEY.backup_id)


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
    assert rows["verify"][1] == f"{(tmp_path / f'{KEY.name}.tgz').stat().st_size:,}"


def test_a_damaged_bundle_fails_the_measurement(tmp_path):
    path = _bundle_file(tmp_path / f"{KEY.name}.tgz")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    run = _reading(path)
    assert run.returncode != 0
    assert "damaged" in run.stdout + run.stderr or "does not match" in run.stdout + run.stderr
