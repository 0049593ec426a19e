"""A writable stream that becomes one S3 object, uploaded a part at a time while it is written.

Bytes are copied once, into a part buffer; a full part is sent from a thread of its own while
the next one fills, and its buffer is reused once the part is sent. There is no pipe and no
transfer manager between the writer and the request, so no second copy, no thread hand-off per
64 KiB and no fresh mapping of every 8 MiB part (docs/PERFORMANCE.md#multipart-writer). The object appears
only when `close` completes the upload; `abort` (or an error) leaves nothing.
"""

from __future__ import annotations

import base64
import queue
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from awscrt import checksums

from archivist.errors import JobFailedError
from archivist.format.finishing import FinishingWriter
from archivist.format.streams import Readable

PART = 8 * 1024 * 1024
IN_FLIGHT = 1  # parts being sent while the next one fills: memory is (IN_FLIGHT + 1) parts
MAX_PARTS = 10_000  # S3's limit for one upload
READ = 1024 * 1024  # what `copy_from` reads at a time: below glibc's mmap threshold, so reused
# Parts grow by PART every GROW_EVERY parts, so an object of unknown size can reach
# 8 MiB x 2,000 x (1 + 2 + 3 + 4 + 5) = 240 GB (8 MiB parts throughout would stop at 80 GB).
GROW_EVERY = 2_000
# CRC32C, not botocore's default CRC32: computed in hardware (SSE 4.2) here and sent as a header,
# so botocore neither computes a sum nor copies the part for a trailer
# (docs/PERFORMANCE.md#multipart-writer).
CHECKSUM = "CRC32C"


def crc32c(body: bytes | bytearray) -> str:
    """The base64 CRC32C S3 expects in `x-amz-checksum-crc32c`."""
    return base64.b64encode(checksums.crc32c(body).to_bytes(4, "big")).decode()


def part_size(number: int) -> int:
    """The size of part `number` (from 1) of an object of unknown size: PART, one PART more every
    GROW_EVERY parts."""
    return PART * (1 + (number - 1) // GROW_EVERY)


def part_size_for(size: int, smallest: int = PART) -> int:
    """The part size of an object of known `size`: `smallest`, or larger so it fits MAX_PARTS parts."""
    return max(smallest, -(-size // MAX_PARTS))


class MultipartUpload:
    """One S3 multipart upload: started on creation, then parts, then `complete` or `abort`.
    The one place that speaks S3's multipart calls, for every upload path."""

    def __init__(self, s3: Any, bucket: str, key: str, **create: Any):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]

    def send_part(self, number: int, body: bytes | bytearray, **checksum: str) -> dict[str, Any]:
        """Sends part `number`; returns its entry for `complete` (ETag, and the checksum if sent)."""
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body, **checksum
        )
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        entry.update({name: answer[name] for name in checksum if name.startswith("Checksum")})
        return entry

    def complete(self, parts: list[dict[str, Any]]) -> None:
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        """Drops the upload; the server frees the parts sent."""
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class MultipartWriter(FinishingWriter):
    """Writes `key` in `bucket` through the boto3 client `s3`; use as a context manager, or call
    `close` to finish the object and `abort` to drop it."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        content_type: str = "application/octet-stream",
        in_flight: int = IN_FLIGHT,
        metadata: dict[str, str] | None = None,
    ):
        self._s3, self._bucket, self._key = s3, bucket, key
        self._stored = {"ContentType": content_type, **({"Metadata": metadata} if metadata else {})}
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix=f"upload:{key}")
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._buffers, self._most = 1, in_flight + 1
        self._number = 1
        self._buf, self._fill = bytearray(part_size(1)), 0
        self._upload: MultipartUpload | None = None
        self._sent: list[Future] = []
        self._checked = 0  # parts in _sent known to have been sent
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        length = len(view)
        while view:
            take = min(len(view), len(self._buf) - self._fill)
            self._buf[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == len(self._buf):
                self._send_full_part()
        return length

    def copy_from(self, stream: Readable) -> int:
        """Writes everything `stream` yields, READ bytes at a time; returns how many bytes."""
        total = 0
        while chunk := stream.read(READ):
            total += self.write(chunk)
        return total

    def flush(self) -> None:
        """Nothing to do: bytes leave a part at a time."""

    def close(self) -> None:
        """Sends what is left and completes the object (a single PUT when it fits one part)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._upload is None:
                body = self._tail()
                self._s3.put_object(
                    Bucket=self._bucket, Key=self._key, Body=body, ChecksumCRC32C=crc32c(body), **self._stored
                )
            else:
                if self._fill:
                    self._send(self._tail())
                self._upload.complete([future.result() for future in self._sent])
        except BaseException:
            self._drop()
            raise
        finally:
            self._pool.shutdown(wait=True)
            self._buf = bytearray()

    def abort(self) -> None:
        """Drops the upload: no object appears, and the server frees the parts sent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._drop()
        finally:
            self._buf = bytearray()

    # --- parts ----------------------------------------------------------------------------

    def _tail(self) -> bytearray:
        """The part being filled, cut to what it holds: the last one, so its buffer is not reused,
        and cut in place rather than copied."""
        body, self._buf = self._buf, bytearray()
        del body[self._fill :]
        return body

    def _send_full_part(self) -> None:
        self._send(self._buf)
        self._buf, self._fill = self._next_buffer(part_size(self._number)), 0

    def _send(self, body: bytearray) -> None:
        if self._number > MAX_PARTS:
            raise JobFailedError(
                f"{self._key} grew past what one S3 upload of {MAX_PARTS:,} parts can hold "
                f"({sum(part_size(n) for n in range(1, MAX_PARTS + 1)) / 1e9:,.0f} GB); "
                "nothing was kept"
            )
        # A part that failed stops the writer at its next part. Only parts sent since the last look
        # are looked at, not all of up to 10,000 each time; with one sending thread they finish in
        # order (with more, a failure behind an unfinished part would surface a part later).
        while self._checked < len(self._sent) and self._sent[self._checked].done():
            error = self._sent[self._checked].exception()
            if error is not None:
                raise error
            self._checked += 1
        if self._upload is None:
            self._upload = MultipartUpload(
                self._s3, self._bucket, self._key, ChecksumAlgorithm=CHECKSUM, **self._stored
            )
        self._sent.append(self._pool.submit(self._upload_part, self._number, body))
        self._number += 1

    def _upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        assert self._upload is not None  # started before any part is queued
        try:
            return self._upload.send_part(number, body, ChecksumCRC32C=crc32c(body))
        finally:
            self._free.put(body)

    def _next_buffer(self, size: int) -> bytearray:
        """A buffer for the next part: one already sent if there is one, else a new one until
        IN_FLIGHT + 1 exist, else whichever is sent first (waiting for it); grown when parts grow.
        Against a fast server the parts are sent before the next is full, and two buffers serve."""
        try:
            buf = self._free.get_nowait()
        except queue.Empty:
            if self._buffers < self._most:
                self._buffers += 1
                return bytearray(size)
            buf = self._free.get()
        if len(buf) < size:
            buf = bytearray(size)
        return buf

    def _drop(self) -> None:
        for future in self._sent:
            future.cancel()
        self._pool.shutdown(wait=True)
        if self._upload is not None:
            try:
                self._upload.abort()
            except Exception:  # the first error matters; the staging sweep removes what is left
                pass
