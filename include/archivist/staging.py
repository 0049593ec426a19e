"""Where jobs leave their artifacts until the bundle is built.

In a DAG the jobs may run on different machines, so each streams its artifact
to a staging prefix of the backup bucket and `bundle_and_upload` reads them
back from there. `simple-backup` needs no bucket and stages in a local folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol

from archivist import s3io
from archivist.s3io import Artifact, HashingWriter

STAGING_ROOT = "staging/"


class Staging(Protocol):
    """A place to write artifacts to and read them back from."""

    def writer(self, path: str, content_type: str = ...) -> Any: ...

    def open(self, path: str) -> IO[bytes]: ...

    def cleanup(self) -> int: ...


class S3Staging:
    """Artifacts under `staging/<bundle name>/` in the backup bucket."""

    def __init__(self, s3: Any, bucket: str, bundle_name: str):
        self.s3, self.bucket = s3, bucket
        self.prefix = f"{STAGING_ROOT}{bundle_name}/"

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

    def put_stream(self, path: str, stream: IO[bytes]) -> Artifact:
        with self.writer(path) as out:
            shutil.copyfileobj(stream, out, s3io.CHUNK)
        return Artifact(path, out.size, out.sha256)

    def open(self, path: str) -> IO[bytes]:
        return open(os.path.join(self.root, path), "rb")

    def cleanup(self) -> int:
        shutil.rmtree(self.root, ignore_errors=True)
        return 1
