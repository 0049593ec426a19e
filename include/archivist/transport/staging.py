"""Where jobs leave their artifacts until the bundle is built.

In a DAG the jobs may run on different machines, so each streams its artifact
to a staging prefix of the backup bucket and `bundle_and_upload` reads them
back from there. `simple-backup` needs no bucket and stages in a local folder.

A backup's staging prefix also holds its lease, an object its tasks rewrite every minute while
they run: the sweep of stale staging (`BackupStore.sweep_stale_staging`) leaves a prefix alone
while its lease is fresh, whichever machine the tasks run on.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import IO, Any, Protocol

from archivist.format.artifact import Artifact, HashingWriter
from archivist.transport import s3io
from archivist.transport.heartbeat import beating

log = logging.getLogger(__name__)

STAGING_ROOT = "staging/"
LEASE = "lease.json"  # in the staging prefix, beside the jobs' folders
LEASE_EVERY = 60.0  # seconds between refreshes of a running backup's lease


class Staging(Protocol):
    """A place to write artifacts to and read them back from."""

    def writer(self, path: str, content_type: str = ...) -> Any: ...

    def open(self, path: str) -> IO[bytes]: ...

    def cleanup(self) -> int: ...

    def alive(self) -> Any: ...


class S3Staging:
    """Artifacts under `prefix` (`[<stack prefix>]staging/<bundle name>/`) in the backup bucket."""

    def __init__(self, s3: Any, bucket: str, prefix: str):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def part(self, job: str, part: int) -> S3Staging:
        """The folder of one part of a split job: its artifacts keep their names in the bundle, so
        each part stages them apart from the others' (`bundle_and_upload` reads them from there).
        Inside this prefix, so the lease, the sweep and `cleanup` cover it."""
        return S3Staging(self.s3, self.bucket, f"{self.prefix}parts/{job}-{part:04d}/")

    def touch(self) -> None:
        """Writes the lease now: the backup is running. Its Last-Modified is what the sweep reads;
        the body only tells a person looking at the bucket who holds it."""
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": dt.datetime.now(dt.UTC).isoformat()})
        self.s3.put_object(
            Bucket=self.bucket, Key=self.prefix + LEASE, Body=body.encode(), ContentType="application/json"
        )

    @contextmanager
    def alive(self, every: float | None = None) -> Iterator[None]:
        """Keeps the lease fresh while the block runs (a thread rewrites it every `every` seconds,
        LEASE_EVERY by default)."""
        self.touch()

        def refresh() -> bool:
            try:
                self.touch()
            except Exception as exc:  # the job itself will meet a lost bucket and say so
                log.warning("could not refresh the staging lease %s%s: %s", self.prefix, LEASE, exc)
            return True

        with beating(every or LEASE_EVERY, refresh, "staging-lease"):
            yield

    @contextmanager
    def writer(self, path: str, content_type: str = "application/octet-stream") -> Iterator[HashingWriter]:
        with s3io.upload_writer(self.s3, self.bucket, self.prefix + path, content_type) as out:
            yield out

    def put_stream(self, path: str, stream: IO[bytes]) -> Artifact:
        reader = s3io.upload_reader(self.s3, self.bucket, self.prefix + path, stream)
        return Artifact(path, reader.size, reader.sha256)

    def open(self, path: str) -> IO[bytes]:
        return s3io.open_object(self.s3, self.bucket, self.prefix + path)

    def cleanup(self) -> int:
        """Deletes the staged artifacts, and the parts of any upload a killed task left behind."""
        s3io.abort_uploads(self.s3, self.bucket, self.prefix)
        return s3io.delete_prefix(self.s3, self.bucket, self.prefix)


class LocalStaging:
    """Artifacts in a local temporary folder (for `simple-backup`)."""

    def __init__(self, parent: str | None = None):
        self.root = tempfile.mkdtemp(prefix="archivist-staging-", dir=parent)

    @contextmanager
    def writer(self, path: str, content_type: str = "application/octet-stream") -> Iterator[HashingWriter]:
        target = os.path.join(self.root, path)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                yield HashingWriter(f)
        except OSError as exc:
            if exc.errno == errno.ENOSPC and not exc.filename:  # say where, so the user knows which disk
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.root) from exc
            raise

    def alive(self) -> Any:
        return nullcontext()  # a local folder: no sweep elsewhere can reach it

    def put_stream(self, path: str, stream: IO[bytes]) -> Artifact:
        with self.writer(path) as out:
            shutil.copyfileobj(stream, out, s3io.CHUNK)
        return Artifact(path, out.size, out.sha256)

    def open(self, path: str) -> IO[bytes]:
        return open(os.path.join(self.root, path), "rb")

    def cleanup(self) -> int:
        shutil.rmtree(self.root, ignore_errors=True)
        return 1
