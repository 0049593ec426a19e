"""Single-request PUTs and GETs through the AWS Common Runtime's S3 client (awscrt).

A storage backup fetches thousands of small objects and a restore sends them back. botocore
spends about 1.5 ms of Python per request (events, serializing, signing, parsing) under the GIL;
awscrt signs and sends from native threads for about a third of that
(docs/PERFORMANCE.md#small-objects-through-awscrt).
Requests go where `s3io.client`'s would (path-style or virtual-hosted, as botocore resolves the
bucket's URL), signed with the same credentials, including an assumed role's as they renew, and
with the same connect timeout and number of retries. Errors come back as
botocore's `ClientError` (an S3 error response) or `ConnectionError` (no response), the types the
rest of archivist already explains.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from concurrent.futures import Future
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from awscrt import auth, checksums, http, s3
from awscrt.exceptions import AwsCrtError
from awscrt.io import (
    ClientBootstrap,
    ClientTlsContext,
    DefaultHostResolver,
    EventLoopGroup,
    TlsConnectionOptions,
    TlsContextOptions,
)
from botocore.exceptions import ClientError, FlexibleChecksumError
from isal import isal_zlib

from archivist.config import S3Settings
from archivist.transport import s3io, s3session
from archivist.transport.multipart import crc32c

# The least awscrt accepts. Its buffer pool grows only as bodies are copied into it, and the bodies
# sent here are small and few at a time (object_uploads.NATIVE_PUT, REQUESTS_IN_FLIGHT).
MEMORY_LIMIT = 256 * 1024 * 1024
# Bodies sent here are below this, so every one is a single PutObject, never a multipart upload.
SINGLE_REQUEST_LIMIT = 5 * 1024 * 1024 * 1024
# The GET client's part size, which its single requests never use.
SINGLE_PART = 8 * 1024 * 1024


def usable(settings: S3Settings) -> bool:
    """Whether awscrt can reach the bucket: it has no proxy support, so a connection whose
    config_kwargs name proxies sends every request through botocore instead."""
    return not s3io.client_config(settings).proxies


def _client(settings: S3Settings, max_part: int) -> tuple[s3.S3Client, str, str]:
    """An awscrt client for `settings.bucket`, addressed, signed, timed out and retried as its boto3
    clients are, with the host and path prefix of the bucket's URL."""
    bucket_url = urlsplit(s3io.bucket_url(settings))
    loops = EventLoopGroup(1)  # one native thread sends; the job's reader keeps the other core
    bootstrap = ClientBootstrap(loops, DefaultHostResolver(loops))
    config = s3io.client_config(settings)
    client = s3.S3Client(
        bootstrap=bootstrap,
        region=s3session.region(settings),
        credential_provider=credentials_provider(settings, bootstrap),
        tls_mode=s3.S3RequestTlsMode.ENABLED if bucket_url.scheme == "https" else s3.S3RequestTlsMode.DISABLED,
        tls_connection_options=tls_options(s3session.client_source(settings).verify),
        part_size=max_part,
        multipart_upload_threshold=SINGLE_REQUEST_LIMIT,
        memory_limit=MEMORY_LIMIT,
        connect_timeout_ms=int(config.connect_timeout * 1000),
        retry_config=s3.S3RetryConfig(max_retries=retries(config.retries)),
    )
    return client, bucket_url.netloc, bucket_url.path


class NativePuts:
    """PutObject requests to one bucket; `put` returns a Future of the request."""

    def __init__(self, settings: S3Settings, max_part: int):
        """PUTs into `settings.bucket`, addressed, signed, timed out and retried as its boto3 clients are."""
        self._client, self._host, self._prefix = _client(settings, max_part)
        self._bucket = settings.bucket

    def put(self, key: str, body: bytes | bytearray, headers: list[tuple[str, str]]) -> Future:
        """Sends `body` as the object `key` with `headers` (Content-Type, x-amz-checksum-crc32c, x-amz-meta-*)."""
        request = http.HttpRequest(
            "PUT",
            self._prefix + quote(key, safe="/~"),
            http.HttpHeaders([("Host", self._host), ("Content-Length", str(len(body))), *headers]),
            io.BytesIO(body),
        )
        done: Future = Future()
        done.set_running_or_notify_cancel()  # sent at once: it cannot be cancelled, only waited for
        sent = self._client.make_request(type=s3.S3RequestType.PUT_OBJECT, request=request)
        sent.finished_future.add_done_callback(lambda f: _settle(f, done, self._bucket, key, "PUT", lambda: None))
        return done


class NotNative(Exception):
    """An answer this client does not read the way botocore would: fetch the object through botocore."""


# The GetObject headers archivist keeps, by the names a boto3 answer gives them (Expires as sent).
ANSWER_HEADERS = {
    "content-type": "ContentType",
    "etag": "ETag",
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "expires": "ExpiresString",
}
METADATA_PREFIX = "x-amz-meta-"
# The checksums a GET answer may carry, each computed over the body as the header gives it (base64
# of the big-endian CRC or of the digest), as botocore checks one of them on every GetObject.
CHECKSUMS: dict[str, Callable[[bytes | bytearray], str]] = {
    "x-amz-checksum-crc32c": crc32c,
    "x-amz-checksum-crc32": lambda body: _b64(isal_zlib.crc32(body).to_bytes(4, "big")),  # awscrt's: 1-2 GB/s
    "x-amz-checksum-crc64nvme": lambda body: _b64(checksums.crc64nvme(body).to_bytes(8, "big")),
    "x-amz-checksum-sha256": lambda body: _b64(hashlib.sha256(body).digest()),
    "x-amz-checksum-sha1": lambda body: _b64(hashlib.sha1(body).digest()),
}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class NativeGets:
    """GetObject requests for whole small objects of one bucket; `get` returns a Future of the answer."""

    def __init__(self, settings: S3Settings):
        """GETs from `settings.bucket`, addressed, signed, timed out and retried as its boto3 clients are."""
        self._client, self._host, self._prefix = _client(settings, SINGLE_PART)
        self._bucket = settings.bucket

    def get(self, key: str) -> Future:
        """The object `key`, read whole: a Future of (answer, body), the answer holding what a boto3
        GetObject answer holds under the same names for the headers archivist keeps (ContentLength,
        LastModified, ETag, ContentType, the stored headers, Metadata, TagCount), or of None when there
        is no such key (deleted since it was listed). The body is checked against the checksum the
        server sends, as botocore checks it. Fails with NotNative for an answer not read here as botocore
        would read it, and with ClientError or ConnectionError as `NativePuts.put` does."""
        request = http.HttpRequest(
            "GET",
            self._prefix + quote(key, safe="/~"),
            http.HttpHeaders([("Host", self._host), ("x-amz-checksum-mode", "ENABLED")]),
        )
        answer: list[tuple[str, str]] = []
        body = bytearray()

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            answer[:] = headers  # a retried request answers again from the start
            body.clear()

        def on_body(chunk: bytes, offset: int, **_: Any) -> None:
            body.extend(chunk)

        done: Future = Future()
        done.set_running_or_notify_cancel()
        sent = self._client.make_request(
            type=s3.S3RequestType.DEFAULT,
            request=request,
            operation_name="GetObject",
            on_headers=on_headers,
            on_body=on_body,
        )
        sent.finished_future.add_done_callback(
            lambda f: _settle(f, done, self._bucket, key, "GET", lambda: read_answer(answer, body, key))
        )
        return done


def read_answer(headers: list[tuple[str, str]], body: bytearray, key: str) -> tuple[dict[str, Any], bytearray]:
    """The answer as botocore parses the headers archivist keeps, the body checked."""
    kept: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if (
            lower in ANSWER_HEADERS
            or lower.startswith(METADATA_PREFIX)
            or lower in CHECKSUMS
            or lower in ("content-length", "last-modified", "x-amz-tagging-count")
        ):
            if lower in kept or not value.isascii():  # botocore would join the values, or decode them otherwise
                raise NotNative(f"header {name} of {key!r}")
            kept[lower] = value
            if lower.startswith(METADATA_PREFIX):
                metadata[name[len(METADATA_PREFIX) :]] = value  # the name's case as sent, as botocore keeps it
    answer: dict[str, Any] = {boto: kept[http_name] for http_name, boto in ANSWER_HEADERS.items() if http_name in kept}
    answer["Metadata"] = metadata
    try:
        answer["ContentLength"] = int(kept["content-length"])
        answer["LastModified"] = parsedate_to_datetime(kept["last-modified"])
        if "x-amz-tagging-count" in kept:
            answer["TagCount"] = int(kept["x-amz-tagging-count"])
    except (KeyError, ValueError, TypeError) as exc:
        raise NotNative(f"answer for {key!r}: {exc}") from None
    if answer["ContentLength"] != len(body):
        raise ConnectionError(f"GET of {key!r} ended after {len(body)} of its {answer['ContentLength']} bytes")
    for header, compute in CHECKSUMS.items():
        expected = kept.get(header)
        if expected is not None and "-" not in expected:  # "-N": a checksum of the parts' checksums
            if compute(body) != expected:
                raise FlexibleChecksumError(
                    error_msg=f"Expected checksum {expected} did not match calculated checksum of {key!r}"
                )
            break
    return answer, body


def _settle(
    finished: concurrent.futures.Future, done: Future, bucket: str, key: str, method: str, result: Callable[[], Any]
) -> None:
    """Ends `done` as the request ended: with `result()` once it succeeded, else with the error
    archivist explains (a GET of a key that is not there ends with None)."""
    error = finished.exception()
    if error is None:
        try:
            done.set_result(result())
        except Exception as exc:  # noqa: BLE001 - the request's caller gets it
            done.set_exception(exc)
    elif isinstance(error, s3.S3ResponseError) and error.status_code:
        fields = _error_fields(error)
        if method == "GET" and fields["Code"] == "NoSuchKey":
            done.set_result(None)
        else:
            done.set_exception(
                _client_error(error, fields, bucket, key, "PutObject" if method == "PUT" else "GetObject")
            )
    elif isinstance(error, AwsCrtError):
        where = f"{'to' if method == 'PUT' else 'from'} bucket {bucket!r}"
        done.set_exception(ConnectionError(f"{method} of {key!r} {where} got no answer: {error.name}: {error.message}"))
    else:
        done.set_exception(error)


def _error_fields(error: s3.S3ResponseError) -> dict[str, str]:
    """The Code and Message of the S3 error response's XML body."""
    fields = {"Code": str(error.status_code), "Message": ""}
    try:
        root = ElementTree.fromstring(error.body or b"")
        fields.update({child.tag: child.text or "" for child in root if child.tag in ("Code", "Message")})
    except ElementTree.ParseError:
        pass
    return fields


def _client_error(
    error: s3.S3ResponseError, fields: dict[str, str], bucket: str, key: str, operation: str
) -> ClientError:
    """The S3 error response as botocore reports one: the Error's Code and Message from its XML body."""
    fields = {**fields, "BucketName": bucket, "Key": key}
    return ClientError({"Error": fields, "ResponseMetadata": {"HTTPStatusCode": error.status_code}}, operation)


def credentials_provider(settings: S3Settings, bootstrap: ClientBootstrap) -> auth.AwsCredentialsProvider:
    """The keys of the variables as they are; a connection's from its AwsBaseHook session, asked
    again for each request, so the credentials of an assumed role are renewed here as in boto3."""
    session_credentials = s3session.client_source(settings).session.get_credentials() if settings.conn_id else None
    if session_credentials is not None:

        def current() -> auth.AwsCredentials:
            frozen = session_credentials.get_frozen_credentials()  # refreshes credentials about to expire
            return auth.AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token or None)

        return auth.AwsCredentialsProvider.new_delegate(current)
    if settings.access_key_id:
        return auth.AwsCredentialsProvider.new_static(
            settings.access_key_id, settings.secret_access_key, settings.session_token or None
        )
    return auth.AwsCredentialsProvider.new_default_chain(bootstrap)


def tls_options(verify: bool | str | None) -> TlsConnectionOptions | None:
    """The connection's `verify` for awscrt: False checks no certificate, a path names the CA
    bundle to trust; None (or True) keeps the system's trust store."""
    if verify is None or verify is True:
        return None
    options = TlsContextOptions()
    if verify is False:
        options.verify_peer = False
    else:
        options.override_default_trust_store_from_path(None, str(verify))
    return ClientTlsContext(options).new_connection_options()


def retries(retry_config: dict | None) -> int:
    """How many times awscrt retries a request, from botocore's retry options: `total_max_attempts`
    counts the first attempt, `max_attempts` only the retries. 0 leaves awscrt's default."""
    retry_config = retry_config or {}
    if "total_max_attempts" in retry_config:
        return max(int(retry_config["total_max_attempts"]) - 1, 0)
    return int(retry_config.get("max_attempts", 0))
