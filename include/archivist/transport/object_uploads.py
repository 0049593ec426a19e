"""Many objects uploaded at once from a stream of them, within a fixed memory budget.

A storage restore reads objects one after another out of a tar and must not wait for each PUT:
every body (a whole small object, or one part of a large one) is handed to a pool of threads,
and the reader blocks only while the bodies in flight exceed the budget. Large objects become
multipart uploads whose parts go through the same pool, so a gigabyte object holds no more
memory than a small one, and the small objects around it keep flowing.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore import handlers

from archivist.config import S3Settings
from archivist.format.streams import Readable, read_exactly
from archivist.transport import s3crt, s3io
from archivist.transport.multipart import CHECKSUM, PART, MultipartUpload, crc32c, part_size_for
from archivist.transport.object_attributes import ObjectAttributes

# Whole-object PUTs in flight at once: enough to keep MinIO or S3 busy while the next bodies are read.
REQUESTS_IN_FLIGHT = 32
# Bodies up to this go through awscrt, where the per-request cost matters; larger ones through
# botocore, as awscrt copies every body it sends (docs/PERFORMANCE.md#small-objects-through-awscrt).
NATIVE_PUT = 1024 * 1024
OnRead = Callable[[int], object]  # told how many bytes were read, for progress


def _ignore(n: int) -> None:
    """Progress nobody asked for."""


# Every body carries the CRC32C the server checks it against (`x-amz-checksum-crc32c`), as the
# MultipartWriter's parts do: computed in hardware, where an MD5 (Content-MD5) took the reading
# thread 1.4 CPU-seconds a GB and botocore's own CRC32 a Python loop over the body
# (docs/PERFORMANCE.md#upload-checksums-and-signing).
CHECKSUM_HEADER = "x-amz-checksum-crc32c"


class ObjectUploads:
    """Use as a context manager; `wait()` before leaving it to raise any upload's error."""

    def __init__(self, settings: S3Settings, threads: int, budget: int, part: int = PART):
        """Into `settings.bucket`: parts on `threads` threads, at most `budget` bytes of bodies held."""
        self._s3 = s3io.client(settings, checksums=False)  # bodies carry their own CRC32C instead
        # No `Expect: 100-continue` round trip (botocore adds it to every PUT): it spares sending
        # a large body the server would refuse, and costs a part a round trip.
        self._s3.meta.events.unregister("before-call.s3", handlers.add_expect_header)
        self._puts = s3crt.NativePuts(settings, part) if s3crt.usable(settings) else None
        self._bucket, self._budget, self._part = settings.bucket, budget, part
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="upload")
        self._pending: deque[tuple[int, Future]] = deque()
        self._held = 0

    def __enter__(self) -> ObjectUploads:
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, future in self._pending:
            future.cancel()
        concurrent.futures.wait([future for _, future in self._pending])  # requests already sent end first
        self._pool.shutdown(wait=True)

    def _submit(self, size: int, call, **kwargs) -> Future:
        return self._submit_call(size, call, Bucket=self._bucket, **kwargs)

    def _submit_call(self, size: int, call, *args, **kwargs) -> Future:
        self._settle(self._budget - size)
        return self._hold(size, self._pool.submit(call, *args, **kwargs))

    def _hold(self, size: int, future: Future) -> Future:
        self._pending.append((size, future))
        self._held += size
        return future

    def _settle(self, limit: int, requests: int = REQUESTS_IN_FLIGHT) -> None:
        """Waits for the oldest uploads until at most `limit` bytes and fewer than `requests`
        uploads are held; raises their errors."""
        while self._pending and (self._held > limit or len(self._pending) >= requests or self._pending[0][1].done()):
            size, future = self._pending.popleft()
            self._held -= size
            future.result()

    def put(self, key: str, body: bytes | bytearray, attributes: ObjectAttributes) -> None:
        """Sends a whole object (at most a part's size) in one PUT."""
        if len(body) > NATIVE_PUT or self._puts is None:
            self._submit(
                len(body), self._s3.put_object, Key=key, Body=body, ChecksumCRC32C=crc32c(body), **attributes.put_args()
            )
            return
        self._settle(self._budget - len(body))
        headers = [(CHECKSUM_HEADER, crc32c(body)), *attributes.http_headers()]
        self._hold(len(body), self._puts.put(key, body, headers))

    def send(
        self, key: str, fileobj: Readable, size: int, attributes: ObjectAttributes, on_read: OnRead = _ignore
    ) -> None:
        """Reads the `size` bytes of `fileobj` (a tar member, say) and uploads them the way their size
        calls for: a small body in one bytes object sent as it is, a larger one read a window at a
        time (see read_exactly), one over a part as a multipart upload."""
        if size > self._part:
            self.put_large(key, fileobj, size, attributes, on_read)
            return
        body = fileobj.read() if size <= NATIVE_PUT else read_exactly(fileobj, size, PART)
        on_read(len(body))
        self.put(key, body, attributes)

    def put_large(
        self, key: str, fileobj: Readable, size: int, attributes: ObjectAttributes, on_read: OnRead = _ignore
    ) -> None:
        """Reads the `size` bytes of `fileobj` as a multipart upload; returns when the object exists.
        On any failure the upload is aborted, so no part of it lingers in the bucket."""
        part = part_size_for(size, self._part)
        upload = MultipartUpload(self._s3, self._bucket, key, ChecksumAlgorithm=CHECKSUM, **attributes.put_args())
        parts: list[Future] = []
        try:
            for offset in range(0, size, part):
                n = min(part, size - offset)
                self._settle(self._budget - n)  # before reading, so the part read counts in the budget
                chunk = read_exactly(fileobj, n, PART)
                on_read(n)
                parts.append(
                    self._submit_call(n, upload.send_part, len(parts) + 1, chunk, ChecksumCRC32C=crc32c(chunk))
                )
            upload.complete([future.result() for future in parts])
        except BaseException:
            for future in parts:
                future.cancel()
            concurrent.futures.wait(parts)
            upload.abort()
            raise

    def wait(self) -> None:
        self._settle(-1)
