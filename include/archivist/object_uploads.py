"""Many objects uploaded at once from a stream of them, within a fixed memory budget.

A storage restore reads objects one after another out of a tar and must not wait for each PUT:
every body (a whole small object, or one part of a large one) is handed to a pool of threads,
and the reader blocks only while the bodies in flight exceed the budget. Large objects become
multipart uploads whose parts go through the same pool, so a gigabyte object holds no more
memory than a small one, and the small objects around it keep flowing.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from botocore import handlers

PART = 8 * 1024 * 1024
MAX_PARTS = 9_000  # S3 allows 10,000 parts; larger objects get larger parts


def content_md5(body: bytes) -> str:
    """The Content-MD5 header the server checks the body against (as rclone sends it): cheaper
    here than botocore's CRC32, which it computes in a Python loop over the body."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()


class ObjectUploads:
    """Use as a context manager; `wait()` before leaving it to raise any upload's error."""

    def __init__(self, s3: Any, bucket: str, threads: int, budget: int, part: int = PART):
        # No `Expect: 100-continue` round trip (botocore adds it to every PUT): it spares sending
        # a large body the server would refuse, and costs a small one a third of its time.
        s3.meta.events.unregister("before-call.s3", handlers.add_expect_header)
        self._s3, self._bucket, self._budget, self._part = s3, bucket, budget, part
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="upload")
        self._pending: deque[tuple[int, Future]] = deque()
        self._held = 0

    def __enter__(self) -> ObjectUploads:
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)

    def _submit(self, size: int, call, **kwargs) -> Future:
        self._settle(self._budget - size)
        future = self._pool.submit(call, Bucket=self._bucket, **kwargs)
        self._pending.append((size, future))
        self._held += size
        return future

    def _settle(self, limit: int) -> None:
        """Waits for the oldest uploads until at most `limit` bytes are held; raises their errors."""
        while self._pending and (self._held > limit or self._pending[0][1].done()):
            size, future = self._pending.popleft()
            self._held -= size
            future.result()

    def put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> None:
        self._submit(len(body), self._s3.put_object, Key=key, Body=body, ContentMD5=content_md5(body),
                     ContentType=content_type, Metadata=metadata)

    def put_large(self, key: str, fileobj: IO[bytes], size: int, content_type: str, metadata: dict[str, str],
                  on_read=lambda n: None) -> None:
        """Reads the `size` bytes of `fileobj` as a multipart upload; returns when the object exists.
        On any failure the upload is aborted, so no part of it lingers in the bucket."""
        part = max(self._part, -(-size // MAX_PARTS))
        upload = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key, ContentType=content_type,
                                                  Metadata=metadata)["UploadId"]
        parts: list[Future] = []
        try:
            while chunk := fileobj.read(part):
                on_read(len(chunk))
                parts.append(self._submit(len(chunk), self._s3.upload_part, Key=key, UploadId=upload,
                                          PartNumber=len(parts) + 1, Body=chunk, ContentMD5=content_md5(chunk)))
            done = [{"PartNumber": n, "ETag": f.result()["ETag"]} for n, f in enumerate(parts, start=1)]
            self._s3.complete_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload,
                                               MultipartUpload={"Parts": done})
        except BaseException:
            for future in parts:
                future.cancel()
            concurrent.futures.wait(parts)
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload)
            raise

    def wait(self) -> None:
        self._settle(-1)
