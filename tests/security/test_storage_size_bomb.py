"""Storage archives whose entries lie about their size, restored through the real
`archivist simple-restore` in a process of its own whose peak RSS is measured: a header
claiming 14.5 TB (over S3's 5 TiB object limit) is refused naming the key; one claiming 4 TiB
followed by a few bytes, a pax header of 200 MB inflated from a small gzip, and a member cut
short all fail cleanly. None costs more than 50 MB over restoring a normal small bundle, none
hangs, and none leaves an object or an unfinished upload in the target bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from archivist.transport import s3io
from tests.security.forge import forge
from tests.security.hostile_support import (
    lying_entry,
    objects,
    s3_env,
    storage_entry,
    storage_files,
    storage_tgz,
    unfinished_uploads,
)
from tests.support import ROOT

MEASURED = """
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
print(json.dumps({"rc": run.returncode, "out": run.stdout, "err": run.stderr,
                  "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""
HEADROOM_KB = 50 * 1024
NORMAL = {"docs/a.txt": b"a" * 1000, "docs/b.bin": bytes(range(256)) * 40, "img/c.png": b"\x89PNG" * 2000}


def _restore(path, target) -> dict:
    """`archivist simple-restore PATH --jobs storage` into `target`, in a child whose peak RSS is read
    (the child of a fresh interpreter, so no earlier child's peak counts)."""
    run = subprocess.run(
        [sys.executable, "-c", MEASURED, "archivist", "simple-restore", str(path), "--jobs", "storage"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=360,
        env={**os.environ, **s3_env("S3_", target)},
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _bundle(tmp_path, tgz: bytes, name: str):
    _, data = forge(storage_files(tgz))
    path = tmp_path / f"{name}.tgz"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def normal_peak_kb(tmp_path_factory, storage_settings) -> int:
    """Peak RSS of restoring a normal small storage archive (into a bucket made for it)."""
    tmp = tmp_path_factory.mktemp("normal")
    s3 = s3io.client(storage_settings)
    name = f"archivist-sec-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    try:
        target = replace(storage_settings, bucket=name)
        done = _restore(_bundle(tmp, storage_tgz(*(storage_entry(k, b) for k, b in NORMAL.items())), "normal"), target)
        assert done["rc"] == 0, done["err"]
        assert objects(target) == NORMAL
        return done["peak_kb"]
    finally:
        for key in NORMAL:
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


BOMBS = {
    # a 14.5 TB claim: over S3's limit, refused before anything is read or sent
    "over-the-limit": (
        lambda: storage_tgz(lying_entry("bomb/huge.bin", 14_500_000_000_000, b"x" * 10), end=False),
        4,
        ["'bomb/huge.bin'", "14,500,000,000,000 bytes, over S3's limit", "(5 TiB)"],
    ),
    # 4 TiB: allowed by S3, so the restore starts a multipart upload, and the data is not there
    "under-the-limit": (
        lambda: storage_tgz(lying_entry("bomb/big.bin", 4 * 1024**4, b"x" * 100), end=False),
        4,
        ["the storage archive in the bundle is damaged", "unexpected end of data"],
    ),
    # a pax header of 200 MB inflated from about 200 KB
    "pax-header": (
        lambda: storage_tgz(storage_entry("bomb/meta.bin", b"x", **{"ARCHIVIST.pad": "a" * 200_000_000})),
        4,
        ["extended header of 200,000,", "the archive is forged"],
    ),
    # an honest small claim, cut short
    "truncated": (
        lambda: storage_tgz(
            storage_entry("ok.txt", b"fine"),
            lying_entry("cut/short.bin", 20 * 1024 * 1024, b"y" * 1024 * 1024),
            end=False,
        ),
        4,
        ["the storage archive in the bundle is damaged"],
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_lying_size_fails_cleanly_within_bounded_memory(name, normal_peak_kb, make_bucket, tmp_path):
    build, code, phrases = BOMBS[name]
    target = make_bucket()
    done = _restore(_bundle(tmp_path, build(), name), target)
    assert done["rc"] == code, done["out"] + done["err"]
    for phrase in phrases:
        assert phrase in done["err"], (phrase, done["err"])
    assert done["peak_kb"] - normal_peak_kb < HEADROOM_KB, (
        f"peak RSS {done['peak_kb']} kB against {normal_peak_kb} kB for a normal bundle"
    )
    assert set(objects(target)) <= {"ok.txt"}, "a lying entry was written"
    assert unfinished_uploads(target) == []
