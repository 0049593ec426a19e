"""Tests of the bundle format (archivist.format.bundle): backup keys, meta.json, writing a bundle
and verifying it, member order, and every kind of damage verify must refuse.
Bundles are built in memory from artifacts held in a LocalStaging folder."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import random
import re
import tarfile

import pytest

from archivist.errors import BackupNotFoundError, VerificationError
from archivist.format import bundle
from archivist.format.artifact import Artifact
from archivist.format.bundle import BackupKey, JobResult
from archivist.transport.staging import LocalStaging

CI_KEYS = {
    "CI_COMMIT_MESSAGE",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_REF_SLUG",
    "CI_COMMIT_SHA",
    "CI_COMMIT_SHORT_SHA",
    "CI_COMMIT_TAG",
    "CI_JOB_ID",
    "CI_PIPELINE_IID",
    "CI_PROJECT_NAME",
    "CI_REGISTRY_IMAGE",
}
KEY = BackupKey(dt.date(2026, 11, 26), "qQUXdfPnayQ")
CREATED = dt.datetime(2026, 11, 26, 1, 0, 7, tzinfo=dt.UTC)


# --- keys -----------------------------------------------------------------------------------


def test_new_key_has_an_11_char_url_safe_id_and_the_spec_name():
    seen = set()
    for _ in range(200):
        key = BackupKey.new(dt.date(2026, 3, 4))
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", key.backup_id)
        assert key.name == f"bundle-2026-03-04-{key.backup_id}"
        assert key.object_key == f"{key.name}.tgz"
        assert str(key) == key.name
        assert BackupKey.parse(key.object_key) == key
        seen.add(key.backup_id)
    assert len(seen) == 200  # random, not derived from the date


def test_new_key_defaults_to_todays_utc_date():
    before = dt.datetime.now(dt.UTC).date()
    key = BackupKey.new()
    after = dt.datetime.now(dt.UTC).date()
    assert key.date in (before, after)
    assert re.fullmatch(r"bundle-\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{11}", key.name)


@pytest.mark.parametrize(
    "text",
    [
        "bundle-2026-11-26-qQUXdfPnayQ",
        "bundle-2026-11-26-qQUXdfPnayQ.tgz",
        "  bundle-2026-11-26-qQUXdfPnayQ.tgz\n",
        "s3://archivist-backups/bundle-2026-11-26-qQUXdfPnayQ.tgz",
    ],
)
def test_parse_with_or_without_tgz(text):
    assert BackupKey.parse(text) == KEY


def test_parse_keeps_dashes_and_underscores_of_the_id():
    key = BackupKey.parse("bundle-2025-01-31-a-b_c-d_e-f.tgz")
    assert (key.date, key.backup_id) == (dt.date(2025, 1, 31), "a-b_c-d_e-f")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "bundle",
        "bundle-2026-11-26",
        "bundle-2026-11-26-short",
        "bundle-2026-11-26-qQUXdfPnayQX",
        "bundle-2026-11-26-qQUXdfPna+Q",
        "bundle-2026-13-01-qQUXdfPnayQ",
        "bundle-2026-02-30-qQUXdfPnayQ",
        "bundle-26-11-26-qQUXdfPnayQ",
        "bundle-2026-11-26-qQUXdfPnayQ.tar.gz",
        "backup-2026-11-26-qQUXdfPnayQ.tgz",
        "notes.txt",
    ],
)
def test_parse_rejects_junk(text):
    with pytest.raises(BackupNotFoundError):
        BackupKey.parse(text)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bundle-2026-11-26-qQUXdfPnayQ.tgz", True),
        ("bundle-2026-11-26-qQUXdfPnayQ", False),
        ("bundle-notes.tgz", False),
        ("notes.txt", False),
        ("staging/bundle-2026-11-26-qQUXdfPnayQ.tgz", False),
        ("bundle-2026-11-26-qQUXdfPnayQ.tgz.tgz", False),
        ("bundle-2026-11-26-qQUXdfPnayQ.tgz.bak", False),
        ("xbundle-2026-11-26-qQUXdfPnayQ.tgz", False),
    ],
)
def test_is_bundle_object(name, expected):
    assert BackupKey.is_bundle_object(name) is expected


def test_is_bundle_object_agrees_with_parse_on_impossible_dates():
    name = "bundle-2026-02-30-qQUXdfPnayQ.tgz"
    parses = True
    try:
        BackupKey.parse(name)
    except BackupNotFoundError:
        parses = False
    assert BackupKey.is_bundle_object(name) is parses


def test_keys_order_by_date_first():
    older, newer = BackupKey(dt.date(2026, 1, 1), "zzzzzzzzzzz"), BackupKey(dt.date(2026, 1, 2), "AAAAAAAAAAA")
    assert sorted([newer, older]) == [older, newer]


# --- building artifacts ---------------------------------------------------------------------


@pytest.fixture
def staging():
    s = LocalStaging()
    yield s
    s.cleanup()


def _put(staging: LocalStaging, path: str, data: bytes) -> Artifact:
    with staging.writer(path) as out:
        out.write(data)
    return Artifact(path, out.size, out.sha256)


def _noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def results(staging) -> list[JobResult]:
    """One result per job, their artifacts in staging; data files big enough to span many gzip blocks."""
    bid = KEY.backup_id
    pg = JobResult(
        "postgres",
        [_put(staging, bundle.postgres_path(bid), b"-- dump\n" + _noise(120_000, 1))],
        {"tables": 3, "rows": 1200},
        1.25,
        "15.8",
    )
    es = JobResult(
        "elasticsearch",
        [
            _put(staging, bundle.elasticsearch_index_path("alpha", bid), b'{"a":1}\n' + _noise(60_000, 2)),
            _put(staging, bundle.elasticsearch_index_path("products", bid), b'{"p":1}\n' + _noise(60_000, 3)),
            _put(staging, bundle.templates_path(bid), json.dumps({"index_templates": []}).encode()),
            _put(staging, bundle.indices_path(bid), json.dumps({"alpha": {}, "products": {}}).encode()),
        ],
        {"indices": {"alpha": 10, "products": 20}},
        2.5,
        "8.19.0",
    )
    st = JobResult(
        "storage",
        [
            _put(staging, bundle.storage_path(bid), _noise(80_000, 4)),
            _put(staging, bundle.storage_manifest_path(bid), b'{"key":"a.png"}\n'),
        ],
        {"objects": 1, "bytes": 80_000},
        0.5,
        "minio",
    )
    return [st, es, pg]  # deliberately not in job order


def _write(results: list[JobResult], staging: LocalStaging, key: BackupKey = KEY) -> tuple[bytes, dict]:
    meta = bundle.build_meta(key, results, CREATED, "prod", "archivist_backup", "manual__1")
    artifacts = [a for r in results for a in r.artifacts]
    random.Random(7).shuffle(artifacts)  # write_bundle must order them itself
    out = io.BytesIO()
    bundle.write_bundle(out, key, meta, artifacts, staging.open)
    return out.getvalue(), meta


def _member_names(data: bytes) -> list[tuple[str, bool]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return [(m.name, m.isdir()) for m in tar.getmembers()]


def _hand_made(files: dict[str, bytes], folder: str = KEY.name) -> bytes:
    """A gzipped tar with `folder/` and the given files under it, in the given order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for path, body in files.items():
            info = tarfile.TarInfo(f"{folder}/{path}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


# --- meta.json ------------------------------------------------------------------------------


def test_build_meta_has_every_spec_field(results):
    meta = bundle.build_meta(KEY, results, CREATED, "prod", "archivist_backup", "scheduled__2026-11-26")
    assert list(meta)[:2] == ["archivist", "stats"]  # the spec's fields first
    assert set(meta["archivist"]) == CI_KEYS
    assert all(isinstance(v, str) for v in meta["archivist"].values())
    assert meta["archivist"]["CI_PROJECT_NAME"] == "archivist"
    assert meta["stats"] == {
        "jobs.elasticsearch": {"time_seconds": 2.5},
        "jobs.postgres": {"time_seconds": 1.25},
        "jobs.storage": {"time_seconds": 0.5},
    }
    assert meta["format_version"] == 1  # version 2 only for what a version 1 reader would misread
    assert meta["key"] == "bundle-2026-11-26-qQUXdfPnayQ"
    assert meta["backup_id"] == "qQUXdfPnayQ"
    assert dt.datetime.fromisoformat(meta["created_at"]) == CREATED
    assert meta["namespace"] == "prod"
    assert meta["airflow"] == {"dag_id": "archivist_backup", "run_id": "scheduled__2026-11-26"}
    assert meta["servers"] == {"postgres": "15.8", "elasticsearch": "8.19.0", "storage": "minio"}
    assert meta["counts"]["jobs.postgres"] == {"tables": 3, "rows": 1200}
    assert meta["counts"]["jobs.elasticsearch"] == {"indices": {"alpha": 10, "products": 20}}
    all_artifacts = [a for r in results for a in r.artifacts]
    assert meta["artifacts"] == {a.path: {"size": a.size, "sha256": a.sha256} for a in all_artifacts}
    json.dumps(meta)  # serialisable as is


def test_build_meta_ci_block_from_environment(monkeypatch, results):
    monkeypatch.setenv("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("CI_COMMIT_REF_NAME", "Feature/Big_Thing")
    monkeypatch.delenv("CI_COMMIT_SHORT_SHA", raising=False)
    monkeypatch.delenv("CI_COMMIT_REF_SLUG", raising=False)
    block = bundle.build_meta(KEY, results, CREATED)["archivist"]
    assert block["CI_COMMIT_SHA"] == "0123456789abcdef0123456789abcdef01234567"
    assert block["CI_COMMIT_SHORT_SHA"] == "01234567"
    assert block["CI_COMMIT_REF_SLUG"] == "feature-big-thing"


def test_build_meta_holds_no_secret(results, monkeypatch):
    monkeypatch.setenv("DATABASE_PASSWORD", "pw-never-in-meta")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sk-never-in-meta")
    text = json.dumps(bundle.build_meta(KEY, results, CREATED))
    assert "pw-never-in-meta" not in text and "sk-never-in-meta" not in text


# --- writing and verifying ------------------------------------------------------------------


def test_write_then_verify(results, staging):
    data, meta = _write(results, staging)
    report = bundle.verify(io.BytesIO(data))
    assert report.warnings == []
    assert report.checksummed
    assert report.meta == meta
    assert report.jobs == ["elasticsearch", "postgres", "storage"]
    expected = {a.path: a for r in results for a in r.artifacts}
    assert report.members == expected
    for path, artifact in expected.items():  # and the bytes really are the staged ones
        with staging.open(path) as f:
            assert hashlib.sha256(f.read()).hexdigest() == artifact.sha256


def test_bundle_layout_is_one_folder_with_job_folders(results, staging):
    data, _ = _write(results, staging)
    names = _member_names(data)
    assert names[0] == (KEY.name, True)
    assert all(n == KEY.name or n.startswith(KEY.name + "/") for n, _ in names)
    folders = {n for n, is_dir in names if is_dir}
    assert folders == {
        KEY.name,
        f"{KEY.name}/jobs.postgres",
        f"{KEY.name}/jobs.elasticsearch",
        f"{KEY.name}/jobs.storage",
    }
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert json.load(tar.extractfile(f"{KEY.name}/meta.json"))["key"] == KEY.name


def test_only_the_jobs_that_ran_get_a_folder(results, staging):
    pg_only = [r for r in results if r.job == "postgres"]
    data, meta = _write(pg_only, staging)
    folders = {n for n, is_dir in _member_names(data) if is_dir}
    assert folders == {KEY.name, f"{KEY.name}/jobs.postgres"}
    assert bundle.verify(io.BytesIO(data)).jobs == ["postgres"]
    assert list(meta["stats"]) == ["jobs.postgres"]


def test_meta_json_is_the_first_file_and_descriptions_come_before_data(results, staging):
    data, _ = _write(results, staging)
    files = [n.removeprefix(KEY.name + "/") for n, is_dir in _member_names(data) if not is_dir]
    assert files[0] == "meta.json"
    jobs_in_order = [bundle.job_of_path(f) for f in files[1:]]
    assert jobs_in_order == sorted(jobs_in_order, key=["postgres", "elasticsearch", "storage"].index)
    es = [f for f in files if f.startswith("jobs.elasticsearch/")]
    descriptions = [i for i, f in enumerate(es) if f.endswith(".json")]
    data_files = [i for i, f in enumerate(es) if f.endswith(".ndjson")]
    assert {es[i].split("/")[1].split("-")[0] for i in descriptions} == {"templates", "indices"}
    assert len(data_files) == 2
    assert max(descriptions) < min(data_files)
    storage = [f for f in files if f.startswith("jobs.storage/")]
    assert storage == [bundle.storage_manifest_path(KEY.backup_id), bundle.storage_path(KEY.backup_id)]


# --- damage verify must refuse --------------------------------------------------------------


def _verify_fails(data: bytes, *phrases: str) -> str:
    with pytest.raises(VerificationError) as info:
        bundle.verify(io.BytesIO(data))
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message
    return message


def test_truncated_bundle_fails(results, staging):
    data, _ = _write(results, staging)
    _verify_fails(data[: len(data) // 2])


@pytest.mark.parametrize("cut", [10, 100, -4, -1])
def test_bundle_cut_anywhere_fails(results, staging, cut):
    data, _ = _write(results, staging)
    _verify_fails(data[:cut])


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_one_flipped_byte_fails(results, staging, where):
    data, _ = _write(results, staging)
    damaged = bytearray(data)
    damaged[int(len(data) * where)] ^= 0xFF
    _verify_fails(bytes(damaged))


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_one_flipped_byte_in_compressed_data_fails(staging, where):
    """Text compresses, so the flip lands inside deflate codes rather than in stored blocks."""
    rows = "".join(f"INSERT INTO users VALUES ({i}, 'user{i}@example.com', {i * 7 % 13});\n" for i in range(20_000))
    sql = _put(staging, bundle.postgres_path(KEY.backup_id), rows.encode())
    data, _ = _write([JobResult("postgres", [sql], {"rows": 20_000}, 1.0)], staging)
    assert len(data) < sql.size // 3  # really compressed
    damaged = bytearray(data)
    damaged[int(len(data) * where)] ^= 0x55
    _verify_fails(bytes(damaged))


def test_random_bytes_fail():
    _verify_fails(random.Random(3).randbytes(50_000), "not a gzipped tar")


def test_empty_input_fails():
    _verify_fails(b"")


def test_gzip_of_plain_text_fails():
    _verify_fails(gzip.compress(b"this is not a tar archive\n" * 100))


def test_gzip_of_short_plain_text_fails():
    _verify_fails(gzip.compress(b"hello\n"))


def test_a_tar_that_is_not_a_bundle_fails():
    _verify_fails(_hand_made({"meta.json": b"{}"}, folder="backup"), "not a bundle")


def test_entry_outside_the_bundle_folder_fails(results, staging):
    meta = json.dumps({"format_version": 1}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, body in ((f"{KEY.name}/meta.json", meta), ("etc/passwd", b"root:x:0:0\n")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    _verify_fails(out.getvalue(), "outside")


def test_newer_format_version_fails():
    meta = {"archivist": {k: "" for k in CI_KEYS}, "stats": {}, "format_version": 99}
    _verify_fails(_hand_made({"meta.json": json.dumps(meta).encode()}), "format_version 99", "upgrade")


def test_non_integer_format_version_fails():
    _verify_fails(_hand_made({"meta.json": b'{"format_version": "1"}'}), "format_version")


def test_bundle_without_meta_json_fails():
    _verify_fails(_hand_made({"jobs.postgres/postgres-qQUXdfPnayQ.sql": b"select 1;\n"}), "no meta.json")


def test_meta_json_that_is_not_json_fails():
    _verify_fails(_hand_made({"meta.json": b"{not json"}), "meta.json")


def test_empty_archive_fails():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz"):
        pass
    _verify_fails(out.getvalue(), "empty")


def test_tampered_member_with_valid_gzip_fails(results, staging):
    """Re-packed with one artifact's bytes changed but the same size: only the sha256 can tell."""
    data, meta = _write(results, staging)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile():
                files[m.name.removeprefix(KEY.name + "/")] = tar.extractfile(m).read()
    sql = bundle.postgres_path(KEY.backup_id)
    files[sql] = files[sql][:-1] + bytes([files[sql][-1] ^ 1])
    _verify_fails(_hand_made(files), sql, "does not match meta.json")


def test_missing_listed_member_fails(results, staging):
    data, meta = _write(results, staging)
    files = {"meta.json": json.dumps(meta).encode()}  # artifacts listed, none present
    _verify_fails(_hand_made(files), "missing")


def test_unlisted_member_fails(results, staging):
    meta = bundle.build_meta(KEY, [], CREATED)
    files = {"meta.json": json.dumps(meta).encode(), "jobs.postgres/extra.sql": b"drop table users;\n"}
    _verify_fails(_hand_made(files), "jobs.postgres/extra.sql", "does not list")


def test_file_outside_the_job_folders_fails():
    meta = bundle.build_meta(KEY, [], CREATED)
    _verify_fails(_hand_made({"meta.json": json.dumps(meta).encode(), "README": b"hi"}), "README")


# --- a bundle of the original tool ----------------------------------------------------------


def test_bundle_made_from_the_spec_alone_is_refused_unless_asked_for():
    """The spec's meta.json: the archivist block and stats, no format_version, no artifacts. Such
    a bundle cannot be checked, so it passes only on request, and then with a warning."""
    bid = KEY.backup_id
    meta = {
        "archivist": {k: "" for k in CI_KEYS},
        "stats": {"jobs.postgres": {"time_seconds": 3}, "jobs.elasticsearch": {"time_seconds": 4}},
    }
    files = {
        "meta.json": json.dumps(meta).encode(),
        f"jobs.postgres/postgres-{bid}.sql": b"CREATE TABLE t (id int);\n",
        f"jobs.elasticsearch/templates-{bid}.json": b"{}",
        f"jobs.elasticsearch/elasticsearch-products-{bid}.ndjson": b'{"id": 1}\n',
    }
    with pytest.raises(VerificationError, match="no checksums.*allow_unchecked"):
        bundle.verify(io.BytesIO(_hand_made(files)))
    report = bundle.verify(io.BytesIO(_hand_made(files)), allow_unchecked=True)
    assert not report.checksummed
    assert len(report.warnings) == 1 and "no checksums" in report.warnings[0]
    assert report.jobs == ["elasticsearch", "postgres"]
    assert report.meta == meta
    assert report.members[f"jobs.postgres/postgres-{bid}.sql"].size == len(b"CREATE TABLE t (id int);\n")


def test_spec_bundle_is_still_checked_for_damage():
    meta = {"archivist": {k: "" for k in CI_KEYS}, "stats": {}}
    data = _hand_made(
        {"meta.json": json.dumps(meta).encode(), f"jobs.storage/storage-{KEY.backup_id}.tgz": _noise(100_000, 9)}
    )
    _verify_fails(data[: len(data) // 2])


# --- helpers used by restore ----------------------------------------------------------------


def test_index_of_path_and_job_of_path():
    assert bundle.index_of_path(bundle.elasticsearch_index_path("logs-2026.11", KEY.backup_id)) == "logs-2026.11"
    assert bundle.index_of_path(bundle.templates_path(KEY.backup_id)) is None
    assert bundle.job_of_path(bundle.storage_path(KEY.backup_id)) == "storage"
    assert bundle.job_of_path("meta.json") is None


def test_version_5_for_a_bundle_holding_a_data_stream_whatever_else_it_needs():
    ordinary = [bundle.postgres_path("abcdefghijk"), bundle.elasticsearch_index_path("logs-app", "abcdefghijk")]
    assert bundle.format_version_for(ordinary, data_streams=True) == 5
    assert bundle.format_version_for(ordinary, encrypted=True, data_streams=True) == 5
    assert bundle.format_version_for(ordinary, encrypted=True) == bundle.ENCRYPTED_VERSION == 4
    es = bundle.JobResult("elasticsearch", [], {"indices": {"logs-app": 3}, bundle.DATA_STREAMS_COUNT: ["logs-app"]}, 1)
    assert bundle.build_meta(KEY, [es], CREATED)["format_version"] == 5
    plain = bundle.JobResult("elasticsearch", [], {"indices": {"logs": 3}}, 1)
    assert bundle.build_meta(KEY, [plain], CREATED)["format_version"] == 1


def test_closest_keys():
    existing = ["bundle-2026-11-26-qQUXdfPnayQ", "bundle-2026-11-25-AAAAAAAAAAA", "zzz"]
    assert bundle.closest_keys("bundle-2026-11-26-qQUXdfPnayX.tgz", existing)[0] == "bundle-2026-11-26-qQUXdfPnayQ"
    assert "zzz" not in bundle.closest_keys("bundle-2026-11-26-qQUXdfPnayX", existing)


def test_version_2_only_for_what_a_version_1_reader_would_take_for_the_dump():
    ordinary = [bundle.postgres_path("abcdefghijk"), bundle.storage_path("abcdefghijk")]
    assert bundle.format_version_for(ordinary) == 1
    assert bundle.format_version_for([*ordinary, bundle.postgres_roles_path("abcdefghijk")]) == 2
    assert bundle.format_version_for([*ordinary, bundle.postgres_database_path("crm", "abcdefghijk")]) == 2


@pytest.mark.parametrize(
    ("path", "database", "is_dump"),
    [
        ("jobs.postgres/postgres-qQUXdfPnayQ.sql", None, True),
        ("jobs.postgres/postgres-a-b_c-d-e-f.sql", None, True),  # an id may hold dashes
        ("jobs.postgres/postgres-crm-qQUXdfPnayQ.sql", "crm", False),
        ("jobs.postgres/postgres-crm-2-qQUX-fPnayQ.sql", "crm-2", False),
        ("jobs.postgres/roles-qQUXdfPnayQ.sql", None, False),
        ("jobs.elasticsearch/postgres-qQUXdfPnayQ.sql", None, False),
    ],
)
def test_postgres_member_paths(path, database, is_dump):
    assert bundle.database_of_path(path) == database
    assert bundle.is_postgres_dump(path) is is_dump
