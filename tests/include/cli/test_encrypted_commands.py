"""The `archivist` command with encryption on, as a user of the original tool runs it: recipients
in ENCRYPTION_RECIPIENTS, the identity in a file named by ENCRYPTION_IDENTITY_FILE, against the
real servers."""

from __future__ import annotations

import json
import subprocess

from pyrage import x25519

from demo.fingerprint import stack_snapshot as fingerprint
from demo.fingerprint import wipe_bucket, wipe_elasticsearch, wipe_postgres
from tests.spec_support import archivist


def _identity_file(tmp_path, identity: x25519.Identity):
    path = tmp_path / "archivist.key"
    # as `age-keygen -o` writes it
    path.write_text(f"# created: 2026-12-04T22:00:00Z\n# public key: {identity.to_public()}\n{identity}\n")
    return path


def test_encrypted_round_trip_through_the_command(
    seeded, spec_env, tmp_path, pg_settings, es_settings, storage_settings
):
    identity = x25519.Identity.generate()
    sealing = {**spec_env, "ENCRYPTION_RECIPIENTS": str(identity.to_public())}
    opening = {**sealing, "ENCRYPTION_IDENTITY_FILE": str(_identity_file(tmp_path, identity))}

    checked = archivist(sealing, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok   encryption: bundles encrypted with age to 1 recipient(s)" in checked.stdout

    run = archivist(sealing, "backup", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    made = json.loads(run.stdout)
    assert made["encrypted"] is True and made["object"] == f"{made['key']}.tgz.age"
    listed = archivist(sealing, "list")
    assert f"{made['key']}" in listed.stdout and "encrypted (age)" in listed.stdout
    rows = json.loads(archivist(sealing, "list", "--json").stdout)
    assert [r["encrypted"] for r in rows if r["key"] == made["key"]] == [True]

    missing = archivist(sealing, "verify", made["key"])
    assert missing.returncode == 4, missing.stdout + missing.stderr
    assert "is encrypted with age" in missing.stderr and "ENCRYPTION_IDENTITY_FILE" in missing.stderr

    verified = archivist(opening, "verify", made["key"], "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["format_version"] == 4

    before = fingerprint(pg_settings, es_settings, storage_settings)
    wipe_postgres(pg_settings)
    wipe_elasticsearch(es_settings)
    wipe_bucket(storage_settings)
    restored = archivist(opening, "restore", made["key"])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "encrypted with age" in restored.stdout
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_simple_backup_writes_an_age_file_tar_cannot_list(seeded, spec_env, tmp_path):
    identity = x25519.Identity.generate()
    sealing = {**spec_env, "ENCRYPTION_RECIPIENTS": str(identity.to_public())}
    run = archivist(sealing, "simple-backup", "--json", "--output", str(tmp_path), "--jobs", "postgres")
    assert run.returncode == 0, run.stdout + run.stderr
    made = json.loads(run.stdout)
    assert made["path"] == str(tmp_path / f"{made['key']}.tgz.age") and made["encrypted"] is True

    listing = subprocess.run(["tar", "-tzf", made["path"]], capture_output=True, text=True, timeout=60)
    assert listing.returncode != 0, listing.stdout

    missing = archivist(sealing, "verify", made["path"])
    assert missing.returncode == 4 and "holds no identity" in missing.stderr, missing.stderr
    wrong = archivist(
        {**sealing, "ENCRYPTION_IDENTITY_FILE": str(_identity_file(tmp_path, x25519.Identity.generate()))},
        "simple-restore",
        made["path"],
        "--mode",
        "replace",
        "--yes",
    )
    assert wrong.returncode == 4 and "encrypted to other keys" in wrong.stderr, wrong.stderr
    opened = archivist(
        {**sealing, "ENCRYPTION_IDENTITY_FILE": str(_identity_file(tmp_path, identity))}, "verify", made["path"]
    )
    assert opened.returncode == 0, opened.stdout + opened.stderr


def test_info_shows_the_recipients_and_masks_the_identity(spec_env, tmp_path):
    identity = x25519.Identity.generate()
    key_file = _identity_file(tmp_path, identity)
    run = archivist(
        {**spec_env, "ENCRYPTION_RECIPIENTS": str(identity.to_public()), "ENCRYPTION_IDENTITY_FILE": str(key_file)},
        "info",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(identity) not in run.stdout + run.stderr
    rows = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert str(identity.to_public()) in rows["ENCRYPTION_RECIPIENTS"]
    assert "(environment)" in rows["ENCRYPTION_RECIPIENTS"]
    assert str(key_file) in rows["ENCRYPTION_IDENTITY_FILE"]
    assert "****" in rows["ENCRYPTION_IDENTITY"] and "(ENCRYPTION_IDENTITY_FILE)" in rows["ENCRYPTION_IDENTITY"]

    plain = archivist(spec_env, "info")
    rows = {line.split()[0]: line for line in plain.stdout.splitlines()}
    assert "backups are not encrypted" in rows["ENCRYPTION_RECIPIENTS"]
