"""Single-request PUTs through the AWS Common Runtime's S3 client (awscrt).

A storage restore sends thousands of small objects. botocore spends about 1.5 ms of Python per
request (events, serializing, signing, parsing) under the GIL; awscrt signs and sends from native
threads for about a third of that (docs/PERFORMANCE.md#small-objects-through-awscrt).
Addressing is path-style, as in `s3io.client`, so MinIO and AWS both work. Errors come back as
botocore's `ClientError` (an S3 error response) or `ConnectionError` (no response), the types the
rest of archivist already explains.
"""

from __future__ import annotations

import concurrent.futures
import io
import xml.etree.ElementTree as ElementTree
from concurrent.futures import Future
from urllib.parse import quote, urlsplit

from awscrt import auth, http, s3
from awscrt.exceptions import AwsCrtError
from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup
from botocore.exceptions import ClientError

from archivist.config import S3Settings

# The least awscrt accepts. Its buffer pool grows only as bodies are copied into it, and the bodies
# sent here are small and few at a time (object_uploads.NATIVE_PUT, REQUESTS_IN_FLIGHT).
MEMORY_LIMIT = 256 * 1024 * 1024
# Bodies sent here are below this, so every one is a single PutObject, never a multipart upload.
SINGLE_REQUEST_LIMIT = 5 * 1024 * 1024 * 1024


class NativePuts:
    """PutObject requests to one bucket; `put` returns a Future of the request."""

    def __init__(self, settings: S3Settings, max_part: int):
        """PUTs into `settings.bucket`."""
        bucket = settings.bucket
        endpoint = urlsplit(settings.endpoint_url or f"https://s3.{settings.region_name or 'us-east-1'}.amazonaws.com")
        self._host, self._prefix = endpoint.netloc, f"{endpoint.path.rstrip('/')}/{quote(bucket, safe='')}/"
        self._bucket = bucket
        loops = EventLoopGroup(1)  # one native thread sends; the restore's reader keeps the other core
        bootstrap = ClientBootstrap(loops, DefaultHostResolver(loops))
        if settings.access_key_id:
            credentials = auth.AwsCredentialsProvider.new_static(
                settings.access_key_id, settings.secret_access_key, settings.session_token or None
            )
        else:
            credentials = auth.AwsCredentialsProvider.new_default_chain(bootstrap)
        self._client = s3.S3Client(
            bootstrap=bootstrap,
            region=settings.region_name or "us-east-1",
            credential_provider=credentials,
            tls_mode=s3.S3RequestTlsMode.ENABLED if endpoint.scheme == "https" else s3.S3RequestTlsMode.DISABLED,
            part_size=max_part,
            multipart_upload_threshold=SINGLE_REQUEST_LIMIT,
            memory_limit=MEMORY_LIMIT,
        )

    def put(self, key: str, body: bytes | bytearray, headers: list[tuple[str, str]]) -> Future:
        """Sends `body` as the object `key` with `headers` (Content-Type, Content-MD5, x-amz-meta-*)."""
        request = http.HttpRequest(
            "PUT",
            self._prefix + quote(key, safe="/~"),
            http.HttpHeaders([("Host", self._host), ("Content-Length", str(len(body))), *headers]),
            io.BytesIO(body),
        )
        done: Future = Future()
        done.set_running_or_notify_cancel()  # sent at once: it cannot be cancelled, only waited for
        sent = self._client.make_request(type=s3.S3RequestType.PUT_OBJECT, request=request)
        sent.finished_future.add_done_callback(lambda f: _settle(f, done, self._bucket, key))
        return done


def _settle(finished: concurrent.futures.Future, done: Future, bucket: str, key: str) -> None:
    error = finished.exception()
    if error is None:
        done.set_result(None)
    elif isinstance(error, s3.S3ResponseError) and error.status_code:
        done.set_exception(_client_error(error, bucket, key))
    elif isinstance(error, AwsCrtError):
        done.set_exception(
            ConnectionError(f"PUT of {key!r} to bucket {bucket!r} got no answer: {error.name}: {error.message}")
        )
    else:
        done.set_exception(error)


def _client_error(error: s3.S3ResponseError, bucket: str, key: str) -> ClientError:
    """The S3 error response as botocore reports one: the Error's Code and Message from its XML body."""
    fields = {"Code": str(error.status_code), "Message": ""}
    try:
        root = ElementTree.fromstring(error.body or b"")
        fields.update({child.tag: child.text or "" for child in root if child.tag in ("Code", "Message")})
    except ElementTree.ParseError:
        pass
    fields.update(BucketName=bucket, Key=key)
    return ClientError({"Error": fields, "ResponseMetadata": {"HTTPStatusCode": error.status_code}}, "PutObject")
