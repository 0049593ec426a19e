"""The storage job: every object of the application bucket into one tgz, and back.

Objects go into the tar in listing order. Small ones are fetched ahead (by
awscrt's native client) within a memory budget, large ones stream straight from
S3 into the tar; the tar is deflated by several threads (`deflate.GzipWriter`), which
store blocks that do not compress (images, archives) instead of deflating them.
A restore reads the tar once and hands every object to `ObjectUploads`
(small ones sent by awscrt's native client, large ones as multipart uploads),
again within a memory budget.
Each tar entry carries the object's exact key and everything S3 keeps with
it (content type, stored headers, user metadata, tags) in its pax records
(`pax.py`), so a restore needs nothing else; a manifest with the same facts,
one JSON line per object, sits beside the tgz for other tools. Only the
current version of each object is read, on a versioned bucket too.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import tarfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import orjson

from archivist import runtime
from archivist.config import S3Settings
from archivist.errors import JobFailedError, TargetNotEmptyError, VerificationError
from archivist.format import bundle, deflate, limits
from archivist.format.bundle import JobResult
from archivist.format.streams import Readable
from archivist.format.tar_stream import StreamedTarFile, read_tgz
from archivist.progress import Progress, ProgressReader
from archivist.sources.storage import pax
from archivist.sources.storage.keys import check_member, describe_key, key_problem
from archivist.transport import object_attributes, s3crt, s3io
from archivist.transport.object_uploads import ObjectUploads

log = logging.getLogger(__name__)

# Objects are often compressed already; ISA-L's lightest level keeps the job fast (and blocks that
# do not compress are stored, see deflate.GzipWriter) (docs/PERFORMANCE.md#storage-gzip-level).
GZIP_ENGINE: deflate.Engine = "isal"
GZIP_LEVEL = 1
# Objects up to SMALL_OBJECT bytes are fetched (backup) or uploaded (restore) whole by TRANSFER_THREADS
# threads, with at most IN_FLIGHT_BYTES of them in memory; larger ones stream.
SMALL_OBJECT = 1024 * 1024
TRANSFER_THREADS = 8
IN_FLIGHT_BYTES = 16 * 1024 * 1024
# Small objects' GETs in flight through awscrt (docs/PERFORMANCE.md#small-objects-through-awscrt).
NATIVE_GETS = 32
MANIFEST_READ_BUFFER = 16 * 1024


def check_bucket(settings: S3Settings, s3: Any | None = None) -> None:
    s3 = s3 or s3io.client(settings)
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except Exception as exc:
        raise s3io.explain(exc, settings, "reach") from None


def iter_objects(
    s3: Any, bucket: str, key_range: tuple[str | None, str | None] = (None, None), prefix: str = ""
) -> Iterator[dict[str, Any]]:
    """The bucket's objects (under `prefix`) in key order; with `key_range` (after, last) those after
    `after` up to and including `last`. S3 lists keys in the order of their UTF-8 bytes, which is the
    order in which Python compares the strings."""
    after, last = key_range
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, **({"StartAfter": after} if after else {})
    )
    for page in pages:
        for listed in page.get("Contents", []):
            if last is not None and listed["Key"] > last:
                return
            yield listed


def _tar_name(key: str) -> str:
    """A relative path for the key; the exact key is in the PAX header."""
    return key.lstrip("/") or "_"


class Fetched(NamedTuple):
    answer: dict[str, Any]  # GetObject's (a large object's with its streaming body)
    body: bytes | bytearray | None  # read whole for a small object
    tags: dict[str, str]


def _get(s3: Any, gets: s3crt.NativeGets | None, bucket: str, key: str, whole: bool) -> Fetched | None:
    """The object (its body read when `whole`) and its tags, or None when it was deleted since it
    was listed. The tags cost a request only for an object the GET says has some. A whole body comes
    through awscrt when `gets` is there and it reads the answer as botocore would."""
    if whole and gets is not None:
        try:
            got = gets.get(key).result()
        except s3crt.NotNative:
            pass
        else:
            if got is None:
                return None
            answer, body = got
            return Fetched(answer, body, _tags(s3, bucket, key, answer))
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
        tags = _tags(s3, bucket, key, obj)
    except s3.exceptions.NoSuchKey:
        return None
    if not whole:
        return Fetched(obj, None, tags)
    try:
        return Fetched(obj, obj["Body"].read(), tags)
    finally:
        obj["Body"].close()


def _tags(s3: Any, bucket: str, key: str, answer: dict[str, Any]) -> dict[str, str]:
    return object_attributes.tag_set(s3.get_object_tagging(Bucket=bucket, Key=key)) if answer.get("TagCount") else {}


def iter_fetched(
    s3: Any, bucket: str, key_range: tuple[str | None, str | None] = (None, None), gets: s3crt.NativeGets | None = None
) -> Iterator[tuple[str, Fetched | None]]:
    """Every object of the bucket in listing order as (key, what was fetched).

    Objects up to SMALL_OBJECT bytes come with their body, fetched ahead (through awscrt when
    `gets` is given) with at most IN_FLIGHT_BYTES of them held at once; a larger one comes with a
    streaming body to read. The answer is None for an object deleted since it was listed."""
    listing = iter_objects(s3, bucket, key_range)
    ahead: deque[tuple[str, int, Future | None]] = deque()
    held = 0
    # Each thread mostly waits for its native request (NATIVE_GETS in flight) or runs botocore's.
    threads = NATIVE_GETS if gets is not None else TRANSFER_THREADS
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch") as pool:
        try:
            while True:
                while held < IN_FLIGHT_BYTES and len(ahead) < 4 * threads:
                    listed = next(listing, None)
                    if listed is None:
                        break
                    small = listed["Size"] <= SMALL_OBJECT
                    future = pool.submit(_get, s3, gets, bucket, listed["Key"], True) if small else None
                    ahead.append((listed["Key"], listed["Size"] if small else 0, future))
                    held += listed["Size"] if small else 0
                if not ahead:
                    return
                key, size, future = ahead.popleft()
                got = future.result() if future is not None else _get(s3, None, bucket, key, False)
                held -= size
                yield key, got
        finally:
            for _, _, future in ahead:
                if future is not None:
                    future.cancel()


def dump(
    settings: S3Settings,
    staging,
    backup_id: str,
    key_range: tuple[str | None, str | None] = (None, None),
    part: int | None = None,
) -> JobResult:
    """Streams every object of the bucket into `jobs.storage/storage-<id>.tgz` plus its manifest;
    one part of a split job takes the objects of its key range into the part's archive."""
    with runtime.malloc_arenas(2):  # the fetch threads' bodies would otherwise fragment a heap each
        return _dump(settings, staging, backup_id, key_range, part)


def _dump(
    settings: S3Settings, staging, backup_id: str, key_range: tuple[str | None, str | None], part: int | None
) -> JobResult:
    started = time.monotonic()
    s3 = s3io.client(settings)
    check_bucket(settings, s3)
    gets = s3crt.NativeGets(settings) if s3crt.usable(settings) else None
    objects = total = 0
    progress = Progress(f"storage {settings.bucket}")
    tgz_path, manifest_path = bundle.storage_path(backup_id, part), bundle.storage_manifest_path(backup_id, part)
    # typeshed's tarfile.open lacks copybufsize, which it hands to TarFile
    with (
        staging.writer(tgz_path, "application/gzip") as out,
        staging.writer(manifest_path, "application/x-ndjson") as manifest,
        deflate.GzipWriter(out, compresslevel=GZIP_LEVEL, mtime=0, engine=GZIP_ENGINE) as gz,
        StreamedTarFile.open(  # type: ignore[call-overload]
            fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT, bufsize=bundle.COPY_CHUNK, copybufsize=bundle.COPY_CHUNK
        ) as tar,
    ):
        for key, got in iter_fetched(s3, settings.bucket, key_range, gets):
            if got is None:  # deleted since it was listed: not part of this backup
                log.warning("object %s was deleted during the backup; skipped", key)
                continue
            obj = got.answer
            attributes = object_attributes.from_get_object(obj, got.tags)
            info = tarfile.TarInfo(_tar_name(key))
            info.size, info.mode = obj["ContentLength"], 0o644
            info.mtime = int(obj["LastModified"].timestamp())
            info.pax_headers = pax.records(key, attributes)
            if got.body is not None:
                tar.addfile(info, ProgressReader(io.BytesIO(got.body), progress))
            else:
                try:
                    tar.addfile(info, ProgressReader(obj["Body"], progress))
                finally:
                    obj["Body"].close()
            manifest.write(orjson.dumps(_manifest_line(key, info.size, attributes, obj)) + b"\n")
            objects += 1
            total += info.size
    progress.done()
    artifacts = [
        bundle.Artifact(tgz_path, out.size, out.sha256),
        bundle.Artifact(manifest_path, manifest.size, manifest.sha256),
    ]
    counts = {"objects": objects, "bytes": total}
    return JobResult("storage", artifacts, counts, time.monotonic() - started, "S3", part)


def _manifest_line(key: str, size: int, attributes: object_attributes.ObjectAttributes, obj: dict) -> dict:
    """One object in the manifest (docs/FORMAT.md#56-jobsstoragemanifest-idndjson-v1): headers and
    tags only when it has some."""
    line: dict[str, Any] = {
        "key": key,
        "size": size,
        "content_type": attributes.content_type,
        "metadata": attributes.metadata,
        "etag": obj.get("ETag", "").strip('"'),
    }
    if attributes.headers:
        line["headers"] = attributes.headers
    if attributes.tags:
        line["tags"] = attributes.tags
    return line


def manifest_keys(manifest: Readable) -> set[str]:
    """The object keys a bundle's storage manifest lists, one JSON line each."""
    keys = set()
    reader = io.BufferedReader(manifest, MANIFEST_READ_BUFFER)  # type: ignore[type-var]
    while line := reader.readline(limits.NDJSON_LINE_BYTES + 1):
        if len(line) > limits.NDJSON_LINE_BYTES:
            raise VerificationError("a line of the storage manifest is too long to be one object's entry")
        try:
            keys.add(str(orjson.loads(line)["key"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise VerificationError("the storage manifest holds a line that is not an object's entry") from None
    return keys


def bucket_is_empty(s3: Any, bucket: str, prefix: str = "") -> bool:
    """No object in the bucket (under `prefix`, when given)."""
    return not s3.list_objects_v2(Bucket=bucket, MaxKeys=1, Prefix=prefix).get("Contents")


def restore(settings: S3Settings, tgz: Readable, mode: str = "empty", prefix: str = "") -> dict[str, int]:
    """Puts every object of the tgz back under its key (after `prefix`), with everything S3 kept with it.

    An object whose key `key_problem` refuses, or whose pax records `pax.attributes` refuses, is
    skipped with an error naming it and the others are restored; then JobFailedError names every
    object skipped."""
    s3 = s3io.client(settings)
    check_bucket(settings, s3)
    if mode == "empty" and not bucket_is_empty(s3, settings.bucket, prefix):
        under = f" under {prefix!r}" if prefix else ""
        raise TargetNotEmptyError(
            f"bucket '{settings.bucket}' ({settings.source}) already holds objects{under}: restore with mode "
            "'replace' to overwrite the objects the bundle contains, or empty the bucket first"
        )
    objects = total = 0
    skipped: list[str] = []
    progress = Progress(f"restore storage {settings.bucket}")
    with runtime.malloc_arenas(2), ObjectUploads(settings, TRANSFER_THREADS, IN_FLIGHT_BYTES) as uploads:
        try:
            for member, body in read_tgz(tgz):
                own = member.pax_headers.get(pax.KEY, member.name)
                key = prefix + own
                check_member(member, key)
                if body is None:  # a folder or a link, which archivist never writes
                    continue
                problem = key_problem(own) or key_problem(key)
                if problem is None:
                    try:
                        attributes = pax.attributes(member.pax_headers, mimetypes.guess_type(key)[0])
                    except pax.AttributeProblem as exc:
                        problem = str(exc)
                if problem:  # its bytes are skipped with the next entry
                    log.error("object %s not restored: %s", describe_key(key), problem)
                    skipped.append(f"{describe_key(key)} ({problem})")
                    continue
                uploads.send(key, body, member.size, attributes, on_read=progress.add)
                objects += 1
                total += member.size
            uploads.wait()
        except bundle.DAMAGE_ERRORS as exc:  # a failing connection or disk (other OSErrors) goes on as it is
            raise VerificationError(f"the storage archive in the bundle is damaged: {exc}") from None
    progress.done()
    if skipped:
        raise JobFailedError(
            f"{len(skipped)} object(s) of the storage archive were not restored into bucket "
            f"'{settings.bucket}', refused: {'; '.join(skipped)}. The other "
            f"{objects} object(s) were restored"
        )
    return {"objects": objects, "bytes": total}
