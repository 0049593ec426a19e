"""A storage restore into another bucket and under a key prefix, against the real S3 server: every
object comes back with its bytes, content type, stored headers, metadata and tags under the new
key, and the bucket backed up, fingerprinted before and after, is never touched."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from archivist.errors import ConfigurationError, TargetNotEmptyError
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, restore
from archivist.sources.base import RestoreOptions
from archivist.transport import s3io
from archivist.transport.staging import LocalStaging

MIB = 1024 * 1024
OBJECTS = {
    "docs/report.pdf": (b"%PDF-1.7 quarterly" * 100, {"ContentType": "application/pdf", "Metadata": {"owner": "ana"}}),
    "media/clip.bin": (bytes(range(256)) * (12 * MIB // 256), {"ContentType": "video/mp4", "Tagging": "kind=clip"}),
    "notes/ünïcödé name.txt": (b"text", {"ContentType": "text/plain; charset=utf-8", "CacheControl": "max-age=60"}),
    "folder/": (b"", {"ContentType": "application/x-directory"}),
}


def _fingerprint(settings, prefix: str = "") -> dict:
    """Each object under `prefix` by its key without it: sha256, content type, headers, metadata, tags."""
    s3 = s3io.client(settings)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            got = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])
            tags = s3.get_object_tagging(Bucket=settings.bucket, Key=obj["Key"])["TagSet"]
            found[obj["Key"].removeprefix(prefix)] = (
                hashlib.sha256(got["Body"].read()).hexdigest(),
                got["ContentType"],
                got.get("CacheControl"),
                got.get("Metadata"),
                sorted((t["Key"], t["Value"]) for t in tags),
            )
    return found


@pytest.fixture
def original(make_bucket, tmp_path):
    """A bucket with OBJECTS, and a local bundle of it: (its settings, the bundle's path, its key)."""
    settings = make_bucket()
    s3 = s3io.client(settings)
    for key, (body, extra) in OBJECTS.items():
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body, **extra)
    key = BackupKey.new()
    staging = LocalStaging(parent=str(tmp_path))
    made = backup.run_job("storage", key, staging, settings)
    path = tmp_path / key.object_key
    with open(path, "wb") as out:
        backup.assemble(out, key, [made], staging.open)
    return settings, str(path), key.name


def _restore(path: str, key: str, settings, mode: str = "empty", dry_run: bool = False, **options):
    return restore.run_restore(
        BundleSource.file(path), key, ("storage",), mode, RestoreOptions(**options), dry_run,
        settings={"storage": settings},
    )  # fmt: skip


def test_a_restore_into_another_bucket_under_a_prefix_leaves_the_original(original, make_bucket):
    settings, path, key = original
    other = make_bucket()
    before = _fingerprint(settings)
    assert before.keys() == OBJECTS.keys()

    dry = _restore(path, key, settings, storage_bucket=other.bucket, storage_prefix="restored/", dry_run=True)
    assert dry["restored"]["storage"]["bucket"] == other.bucket and not _fingerprint(other)

    result = _restore(path, key, settings, storage_bucket=other.bucket, storage_prefix="restored/")
    assert result["problems"] == []
    assert result["restored"]["storage"]["bucket"] == other.bucket
    assert result["restored"]["storage"]["prefix"] == "restored/"
    assert _fingerprint(other, "restored/") == before, "an object came back different"
    assert _fingerprint(other).keys() == {f"restored/{k}" for k in OBJECTS}
    assert _fingerprint(settings) == before, "the bucket backed up was touched"

    with pytest.raises(TargetNotEmptyError, match=f"bucket '{other.bucket}' holds objects under 'restored/'"):
        _restore(path, key, settings, storage_bucket=other.bucket, storage_prefix="restored/")
    # another prefix of the same bucket is empty, so empty mode may go ahead
    assert _restore(path, key, settings, storage_bucket=other.bucket, storage_prefix="again-")["problems"] == []
    assert _fingerprint(other, "again-") == before


def test_a_prefix_in_the_bucket_backed_up_keeps_its_objects_and_replace_stays_under_it(original):
    settings, path, key = original
    before = _fingerprint(settings)
    result = _restore(path, key, settings, storage_prefix="copy/")
    assert result["problems"] == [] and result["restored"]["storage"]["objects"] == len(OBJECTS)
    s3 = s3io.client(settings)
    s3.put_object(Bucket=settings.bucket, Key="copy/docs/report.pdf", Body=b"changed")

    drops: dict = {}
    replaced = restore.run_restore(
        BundleSource.file(path), key, ("storage",), "replace", RestoreOptions(storage_prefix="copy/"),
        settings={"storage": settings}, confirm=drops.update,
    )  # fmt: skip
    assert replaced["problems"] == []
    assert drops["storage"] and "copy/docs/report.pdf" in drops["storage"][0], drops
    assert "docs/report.pdf," not in drops["storage"][0].replace("copy/docs/report.pdf", "")
    assert _fingerprint(settings, "copy/") == before
    assert {k: v for k, v in _fingerprint(settings).items() if not k.startswith("copy/")} == before
    wrong = {"objects": len(OBJECTS) - 1, "bytes": 1, "bucket": settings.bucket, "prefix": "copy/"}
    assert restore.compare(replaced["counts"], {"storage": wrong}) == [
        f"storage: {len(OBJECTS) - 1} objects / 1 bytes restored, bundle has {len(OBJECTS)} / "
        f"{sum(len(b) for b, _ in OBJECTS.values())}"
    ]


def test_a_bucket_that_does_not_exist_is_named(original):
    settings, path, key = original
    missing = dataclasses.replace(settings, bucket="archivist-test-missing-bucket").bucket
    with pytest.raises(ConfigurationError, match=f"bucket '{missing}' .*storage_bucket.* does not exist"):
        _restore(path, key, settings, storage_bucket=missing)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RestoreOptions(storage_bucket="Uppercase"), "storage_bucket 'Uppercase' is not 3 to 63 lowercase"),
        (RestoreOptions(storage_bucket="ab"), "storage_bucket 'ab' is not 3 to 63"),
        (RestoreOptions(storage_bucket="a..b"), "two dots in a row"),
        (RestoreOptions(storage_bucket="192.168.1.1"), "looks like an IP address"),
        (RestoreOptions(storage_bucket="xn--bucket"), "keeps for itself"),
        (RestoreOptions(storage_prefix="../up/"), "storage_prefix '../up/' cannot begin an object key: .* '..'"),
        (RestoreOptions(storage_prefix="a//"), "has an empty segment"),
        (RestoreOptions(storage_prefix="x" * 1024), "over S3's limit"),
    ],
)
def test_a_bucket_or_prefix_s3_refuses_is_refused_before_the_bundle_is_read(options, message):
    with pytest.raises(ConfigurationError, match=message):
        restore.run_restore(lambda: pytest.fail("the bundle was read"), "k", ("storage",), options=options)
