"""A split backup against the real servers, run part by part as the DAG's mapped tasks run it: a
large index read in slices of one point in time by several parts and joined as its one member,
indices whose names together pass the server's 4 KB request line, and storage ranges that cover
the bucket once. What comes back must equal what left."""

from __future__ import annotations

import io
import tarfile

import pytest
from elasticsearch import helpers

from archivist.errors import JobFailedError
from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.runner import backup, restore, split
from archivist.sources.base import DumpOptions
from archivist.sources.storage import job as storage_job
from archivist.transport import s3io
from archivist.transport.backup_bucket import BackupStore
from demo.fingerprint import es_snapshot, s3_snapshot, wipe_bucket, wipe_elasticsearch

SLICED = "bulk-events"
SLICED_DOCS = 12_000
# 40 names of 200 characters: 8 KB of names, twice what one request line may carry.
LONG_NAMES = [f"long-{i:02d}-" + "n" * 192 for i in range(40)]


@pytest.fixture
def split_stack(seeded, es_client, monkeypatch):
    """The demo stack, an index that dwarfs the others (documents with custom routing), and 40
    indices of long names; any index may be sliced, whatever its size."""
    monkeypatch.setenv("ARCHIVIST_SLICE_MIN_MB", "0")
    helpers.bulk(
        es_client,
        (
            {
                "_index": SLICED,
                "_id": f"evt-{i}",
                "_routing": f"r{i % 7}",
                "_source": {"n": i, "text": f"event number {i} ünïcödé " * 8, "tags": ["a", str(i % 13)]},
            }
            for i in range(SLICED_DOCS)
        ),
        refresh=True,
        chunk_size=2000,
    )
    for i, name in enumerate(LONG_NAMES):
        es_client.index(index=name, id=str(i), document={"i": i}, routing="x" if i % 2 else None)
    es_client.indices.refresh(index="long-*")
    yield
    for index in [SLICED, *LONG_NAMES]:
        es_client.options(ignore_status=404).indices.delete(index=index)


def _backup(store: BackupStore, es_settings, storage_settings, asked: int) -> tuple[dict, list[dict]]:
    """A backup of elasticsearch and storage as the DAG runs it: planned, each part a task of its
    own into its own staging folder, then joined by the upload."""
    key, options = BackupKey.new(), DumpOptions()
    staging = store.staging(key)
    results, planned = [], []
    for job, settings in (("elasticsearch", es_settings), ("storage", storage_settings)):
        parts = (
            split.plan_elasticsearch(settings, options, asked)
            if job == "elasticsearch"
            else split.plan_storage(settings, asked)
        )
        planned += parts if job == "elasticsearch" else []
        if not parts:
            results.append(backup.run_job(job, key, staging, settings, options))
        for part in parts:
            results.append(backup.run_job(job, key, staging, settings, split.part_options(options, job, part)))
    return backup.upload(store, key, results), planned


def _members(store: BackupStore, name: str) -> list[str]:
    body = store.open_bundle(BackupKey.parse(name)).read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return [m.name.partition("/")[2] for m in tar if m.isfile()]


def _round_trip(made: dict, store: BackupStore, es_settings, storage_settings, before: tuple) -> None:
    open_bundle = lambda: store.open_bundle(BackupKey.parse(made["key"]))  # noqa: E731
    report = restore.verify(open_bundle)
    assert report.checksummed and not report.warnings
    wipe_elasticsearch(es_settings)
    wipe_bucket(storage_settings)
    restored = {
        "elasticsearch": restore.restore_job("elasticsearch", open_bundle, es_settings, "empty"),
        "storage": restore.restore_job("storage", open_bundle, storage_settings, "empty"),
    }
    assert restore.compare(report.meta["counts"], restored) == []
    assert es_snapshot(es_settings) == before[0], "documents, ids, routing, mappings, aliases or templates differ"
    assert s3_snapshot(storage_settings) == before[1], "objects, content types or metadata differ"


@pytest.mark.parametrize("asked", [1, 4], ids=["unsplit", "split"])
def test_a_backup_with_one_index_in_slices_and_long_names_comes_back_exact(
    split_stack, asked, es_settings, storage_settings, backups_settings
):
    before = (es_snapshot(es_settings), s3_snapshot(storage_settings))
    store = BackupStore(backups_settings)
    made, planned = _backup(store, es_settings, storage_settings, asked)

    slices = [p["slices"] for p in planned if "slices" in p]
    if asked > 1:
        assert {s["index"] for s in slices} == {SLICED}, planned
        assert len(slices) >= 2 and len({s["pit"] for s in slices}) == 1, "the slices share one point in time"
        whole = [i for p in planned for i in p.get("indices", [])]
        assert sorted(whole) == sorted(set(before[0]["indices"]) - {SLICED})
    else:
        assert planned == [] and slices == []
    members = _members(store, made["key"])
    sliced_members = [m for m in members if bundle.index_of_path(m) == SLICED]
    assert len(sliced_members) == 1, "the slices of an index are one member"
    assert made["counts"]["jobs.elasticsearch"]["indices"][SLICED] == SLICED_DOCS
    assert sum(bundle.index_of_path(m) in LONG_NAMES for m in members) == len(LONG_NAMES)
    _round_trip(made, store, es_settings, storage_settings, before)


def test_a_slice_part_run_twice_reads_the_same_point_in_time(split_stack, es_settings, backups_settings, es_client):
    """A retried part, on whichever worker, writes its slice again from the planning's snapshot:
    documents written since are in no slice, and the index is whole once."""
    store, key, options = BackupStore(backups_settings), BackupKey.new(), DumpOptions(index_pattern=SLICED)
    parts = split.plan_elasticsearch(es_settings, options, 3)
    assert [p["slices"]["index"] for p in parts] == [SLICED] * 3
    es_client.index(index=SLICED, id="written-after-planning", document={"n": -1}, refresh=True)
    staging = store.staging(key)
    run = lambda part: backup.run_job(  # noqa: E731
        "elasticsearch", key, staging, es_settings, split.part_options(options, "elasticsearch", part)
    )
    results = [run(part) for part in parts]
    results[1] = run(parts[1])  # the retry
    made = backup.upload(store, key, results)
    assert made["counts"]["jobs.elasticsearch"]["indices"] == {SLICED: SLICED_DOCS}
    body = store.open_bundle(BackupKey.parse(made["key"])).read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = next(m for m in tar if bundle.index_of_path(m.name.partition("/")[2]) == SLICED)
        lines = tar.extractfile(member).read().splitlines()
    ids = [line.split(b'"_id":"', 1)[1].split(b'"', 1)[0] for line in lines]
    assert len(ids) == len(set(ids)) == SLICED_DOCS
    assert b"written-after-planning" not in ids
    pit = parts[0]["slices"]["pit"]
    assert es_client.options(ignore_status=404).close_point_in_time(id=pit).meta.status == 404, "the join closed it"


def test_a_slice_part_after_its_point_in_time_is_gone_says_what_to_do(split_stack, es_settings, backups_settings):
    store, key, options = BackupStore(backups_settings), BackupKey.new(), DumpOptions(index_pattern=SLICED)
    parts = split.plan_elasticsearch(es_settings, options, 2)
    from archivist.sources.elasticsearch import cluster

    cluster.client(es_settings).close_point_in_time(id=parts[0]["slices"]["pit"])
    with pytest.raises(JobFailedError, match=r"point in time that split_elasticsearch opened .* is gone.*Clear"):
        backup.run_job(
            "elasticsearch",
            key,
            store.staging(key),
            es_settings,
            split.part_options(options, "elasticsearch", parts[0]),
        )
    store.staging(key).cleanup()


def test_storage_ranges_cover_every_key_of_the_bucket_exactly_once(scratch_bucket):
    s3 = s3io.client(scratch_bucket)
    keys = sorted({f"{prefix}/{i:04d}-{'x' * (i % 5)}" for prefix in ("a", "b/c", "ü", "z") for i in range(150)})
    for i, key in enumerate(keys):
        s3.put_object(Bucket=scratch_bucket.bucket, Key=key, Body=b"o" * (i % 7 * 1000))
    parts = split.plan_storage(scratch_bucket, 5)
    assert len(parts) == 5 and parts[0]["after"] is None and parts[-1]["last"] is None
    found = [
        listed["Key"]
        for part in parts
        for listed in storage_job.iter_objects(s3, scratch_bucket.bucket, (part["after"], part["last"]))
    ]
    assert sorted(found) == keys and len(found) == len(set(found))
