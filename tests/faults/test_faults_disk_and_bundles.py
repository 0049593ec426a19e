"""Local disk filling up, and bundles that are damaged, too new, too old or missing.

`simple-backup` is the only path that writes local files (the DAGs and `archivist
backup` stream through the bucket): on a full disk it fails naming the place and leaves
no partial file. Damaged bundles fail `verify` and `restore` before any target changes."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest

from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import pg_dump_text, wipe_postgres
from tests.support import ROOT


def archivist(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["archivist", *args], capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB filesystem: far too small for a bundle of the demo stack."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a 512 KiB tmpfs and needs root: run `make test` as root (CI does)", pytrace=False)
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_simple_backup_on_a_full_disk_fails_clearly_and_leaves_nothing(seeded, tiny_disk):
    run = archivist("simple-backup", "--output", str(tiny_disk))
    assert run.returncode == 7, run.stderr
    assert "ran out of local disk space writing under" in run.stderr and str(tiny_disk) in run.stderr, run.stderr
    assert os.listdir(tiny_disk) == [], "a partial bundle or staging file was left behind"


def test_bucket_backup_needs_no_local_space(seeded, tiny_disk, backups_settings):
    run = archivist("backup", env={"TMPDIR": str(tiny_disk)})
    assert run.returncode == 0, run.stderr
    assert os.listdir(tiny_disk) == []


def _rewrite_meta(data: bytes, change) -> bytes:
    """The same bundle with meta.json changed by `change` (for a newer format_version)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src,
        gzip.GzipFile(fileobj=out, mode="wb") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            body = src.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("/meta.json"):
                meta = json.loads(body)
                change(meta)
                body = json.dumps(meta).encode()
                member.size = len(body)
            dst.addfile(member, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


@pytest.fixture
def good_bundle(seeded, backups_settings):
    made = backup.run_backup(jobs=("postgres",))
    store = BackupStore(backups_settings)
    return store, made["key"], store.open_bundle(BackupKey.parse(made["key"])).read()


def damaged_variants(data: bytes) -> dict[str, tuple[bytes, str]]:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    return {
        "truncated": (data[: len(data) * 2 // 3], "damaged or truncated"),
        "flipped byte": (bytes(flipped), ""),
        "not a tar": (b"PK\x03\x04 a zip, not a bundle" * 50, "not a gzipped tar"),
        "newer format": (_rewrite_meta(data, lambda m: m.update(format_version=99)), "upgrade archivist"),
    }


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not a tar", "newer format"])
def test_damaged_bundle_fails_verify_and_restore_writes_nothing(damage, good_bundle, pg_settings, tmp_path):
    store, key, data = good_bundle
    bad, phrase = damaged_variants(data)[damage]
    wipe_postgres(pg_settings)  # an empty target accepts any restore, so a write would show
    before = pg_dump_text(pg_settings)
    local = tmp_path / f"{BackupKey.new().name}.tgz"
    local.write_bytes(bad)
    remote = BackupKey.new()
    store.s3.put_object(Bucket=store.bucket, Key=remote.object_key, Body=bad)
    try:
        for run in (
            archivist("verify", str(local)),
            archivist("simple-restore", str(local), "--jobs", "postgres"),
            archivist("restore", remote.name, "--jobs", "postgres", "--mode", "replace", "--yes"),
        ):
            assert run.returncode == 4, (damage, run.returncode, run.stderr)
            assert phrase in run.stderr, run.stderr
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=remote.object_key)
    assert pg_dump_text(pg_settings) == before


def test_unknown_key_lists_the_closest(good_bundle):
    _, key, _ = good_bundle
    run = archivist("restore", key[:-4] + "Zzzz", "--jobs", "postgres")
    assert run.returncode == 5 and f"closest: {key}" in run.stderr, run.stderr


def test_bundle_without_checksums_verifies_only_when_asked_and_with_a_warning(good_bundle, tmp_path):
    _, _, data = good_bundle
    seed_format = _rewrite_meta(data, lambda m: [m.pop(k) for k in list(m) if k not in ("archivist", "stats")])
    local = tmp_path / f"bundle-{uuid.uuid4().hex[:4]}.tgz"
    local.write_bytes(seed_format)
    refused = archivist("verify", str(local))
    assert refused.returncode == 4 and "--allow-unchecked" in refused.stderr, refused.stderr
    run = archivist("verify", str(local), "--allow-unchecked")
    assert run.returncode == 0, run.stderr
    assert "cannot be verified" in run.stdout + run.stderr
