"""--json and --quiet on every command, run as a script runs them: stdout a pipe, against the real
servers. Each JSON document is parsed here, field by field as docs/CLI.md lists them."""

from __future__ import annotations

import json

from demo.fingerprint import stack_snapshot as fingerprint
from tests.spec_support import archivist

JOBS = ["elasticsearch", "postgres", "storage"]


def as_json(run) -> dict | list:
    """The one JSON document a command printed on stdout (json.loads refuses anything more)."""
    return json.loads(run.stdout)


def test_every_command_prints_one_json_document(seeded, spec_env, pg_settings, es_settings, storage_settings, tmp_path):
    before = fingerprint(pg_settings, es_settings, storage_settings)

    checked = as_json(archivist(spec_env, "check", "--json"))
    assert checked["ok"] is True
    assert [(c["item"], c["ok"], c["exit_code"]) for c in checked["checks"]] == [
        ("BACKUPS_KEPT", True, 0),
        ("database", True, 0),
        ("elasticsearch", True, 0),
        ("storage", True, 0),
        ("backup bucket", True, 0),
    ]
    assert "database 'archivist_demo'" in checked["checks"][1]["message"]
    simple = as_json(archivist(spec_env, "simple-check", "--json", "--jobs", "postgres"))
    assert simple["ok"] is True and [c["item"] for c in simple["checks"]] == ["database"]

    options = {row["name"]: row for row in as_json(archivist(spec_env, "info", "--json"))["options"]}
    assert options["DATABASE_PASSWORD"]["value"] == "****" and options["DATABASE_PASSWORD"]["origin"] == "environment"
    assert options["NAMESPACE"]["value"] == "global-namespace"

    run = archivist(spec_env, "backup", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    made = as_json(run)
    assert set(made) == {"key", "object", "encrypted", "size", "jobs", "seconds", "rotated"}
    assert made["encrypted"] is False
    assert made["object"] == f"{made['key']}.tgz" and made["size"] > 0 and made["seconds"] > 0
    assert sorted(made["jobs"]) == JOBS and isinstance(made["rotated"], list)
    assert made["jobs"]["postgres"]["counts"]["tables"] == 5 and made["jobs"]["postgres"]["seconds"] > 0
    assert made["jobs"]["storage"]["counts"]["objects"] == 318
    assert made["jobs"]["elasticsearch"]["counts"]["indices"]["products"] == 200
    key = made["key"]

    listed = as_json(archivist(spec_env, "list", "--json"))
    assert [row for row in listed if row["key"] == key][0]["size"] == made["size"]

    verified = as_json(archivist(spec_env, "verify", key, "--json"))
    assert verified["key"] == key and verified["ok"] is True and verified["problems"] == []
    assert verified["format_version"] == 1 and verified["checksummed"] is True
    assert verified["jobs"] == JOBS and verified["members"] > 3

    dry = as_json(archivist(spec_env, "restore", key, "--dry-run", "--mode", "replace", "--json"))
    assert dry["key"] == key and dry["mode"] == "replace" and dry["dry_run"] is True and dry["problems"] == []
    assert {job: state["status"] for job, state in dry["jobs"].items()} == dict.fromkeys(JOBS, "dry_run")
    assert "schema app" in dry["jobs"]["postgres"]["would_restore"]["replace_drops"]

    rotated = as_json(archivist(spec_env, "rotate", "--dry-run", "--json"))
    assert rotated["keep"] == 30 and rotated["dry_run"] is True and isinstance(rotated["deleted"], list)

    local = as_json(archivist(spec_env, "simple-backup", "--json", "--output", str(tmp_path)))
    assert set(local) == {"key", "path", "encrypted", "size", "jobs", "seconds"} and sorted(local["jobs"]) == JOBS
    assert local["path"] == str(tmp_path / f"{local['key']}.tgz")

    run = archivist(spec_env, "simple-restore", local["path"], "--mode", "replace", "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    restored = as_json(run)
    assert restored["key"] == local["key"] and restored["mode"] == "replace" and restored["dry_run"] is False
    assert restored["problems"] == [] and restored["replaced"] is None  # --yes: nothing was asked
    assert {job: state["status"] for job, state in restored["jobs"].items()} == dict.fromkeys(JOBS, "restored")
    assert restored["jobs"]["storage"]["counts"] == {
        "objects": 318,
        "bytes": made["jobs"]["storage"]["counts"]["bytes"],
    }
    assert fingerprint(pg_settings, es_settings, storage_settings) == before


def test_errors_in_json_mode_are_a_json_document_with_the_exit_code(spec_env, tmp_path):
    missing = archivist(spec_env, "restore", "bundle-2000-01-01-aaaaaaaaaaa", "--json")
    assert missing.returncode == 5
    document = as_json(missing)
    assert document["exit_code"] == 5 and "no bundle named 'bundle-2000-01-01-aaaaaaaaaaa'" in document["error"]
    assert missing.stderr.startswith("error: no bundle named")  # people still read the one line

    damaged = tmp_path / "bundle-2000-01-01-bbbbbbbbbbb.tgz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00 certainly not a whole gzip stream")
    refused = archivist(spec_env, "verify", str(damaged), "--json")
    assert refused.returncode == 4
    document = as_json(refused)
    assert document["key"] == "bundle-2000-01-01-bbbbbbbbbbb" and document["ok"] is False
    assert document["exit_code"] == 4 and "damaged or truncated" in document["problems"][0]

    too_few = archivist({**spec_env, "BACKUPS_KEPT": "5"}, "check", "--json")
    assert too_few.returncode == 2
    document = as_json(too_few)
    assert document["ok"] is False and document["exit_code"] == 2 and "BACKUPS_KEPT" in document["error"]
    failed = [c for c in document["checks"] if not c["ok"]]
    assert [(c["item"], c["exit_code"]) for c in failed] == [("BACKUPS_KEPT", 2)] and "minimum is 7" in failed[0][
        "message"
    ]

    usage = archivist(spec_env, "list", "--json", "--no-such-option")
    assert usage.returncode == 2 and as_json(usage) == {"error": "No such option '--no-such-option'.", "exit_code": 2}

    no_terminal = archivist(spec_env, "restore", "latest", "--mode", "replace", "--json")
    assert no_terminal.returncode == 2 and "add --yes" in as_json(no_terminal)["error"]


def test_quiet_prints_nothing_on_success_and_only_the_error_on_failure(spec_env, tmp_path):
    for args in (["check"], ["simple-check"], ["info"], ["list"], ["rotate", "--dry-run"]):
        run = archivist(spec_env, *args, "--quiet")
        assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), args
    made = archivist(spec_env, "simple-backup", "-q", "--jobs", "postgres", "--output", str(tmp_path))
    assert (made.returncode, made.stdout, made.stderr) == (0, "", "")
    (path,) = tmp_path.glob("bundle-*.tgz")
    checked = archivist(spec_env, "verify", str(path), "-q")
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")

    failed = archivist(spec_env, "restore", "bundle-2000-01-01-aaaaaaaaaaa", "--quiet")
    assert failed.returncode == 5 and failed.stdout == ""
    assert failed.stderr.startswith("error: no bundle named") and len(failed.stderr.splitlines()) == 1
