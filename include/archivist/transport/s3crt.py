"""Single-request PUTs through the AWS Common Runtime's S3 client (awscrt).

A storage restore sends thousands of small objects. botocore spends about 1.5 ms of Python per
request (events, serializing, signing, parsing) under the GIL; awscrt signs and sends from native
threads for about a third of that (docs/PERFORMANCE.md#small-objects-through-awscrt).
Requests go where `s3io.client`'s would (path-style or virtual-hosted, as botocore resolves the
bucket's URL), signed with the same credentials, including an assumed role's as they renew, and
with the same connect timeout and number of retries. Errors come back as
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
from awscrt.io import (
    ClientBootstrap,
    ClientTlsContext,
    DefaultHostResolver,
    EventLoopGroup,
    TlsConnectionOptions,
    TlsContextOptions,
)
from botocore.exceptions import ClientError

from archivist.config import S3Settings
from archivist.transport import s3io, s3session

# The least awscrt accepts. Its buffer pool grows only as bodies are copied into it, and the bodies
# sent here are small and few at a time (object_uploads.NATIVE_PUT, REQUESTS_IN_FLIGHT).
MEMORY_LIMIT = 256 * 1024 * 1024
# Bodies sent here are below this, so every one is a single PutObject, never a multipart upload.
SINGLE_REQUEST_LIMIT = 5 * 1024 * 1024 * 1024


def usable(settings: S3Settings) -> bool:
    """Whether awscrt can reach the bucket: it has no proxy support, so a connection whose
    config_kwargs name proxies sends every request through botocore instead."""
    return not s3io.client_config(settings).proxies


class NativePuts:
    """PutObject requests to one bucket; `put` returns a Future of the request."""

    def __init__(self, settings: S3Settings, max_part: int):
        """PUTs into `settings.bucket`, addressed, signed, timed out and retried as its boto3 clients are."""
        bucket_url = urlsplit(s3io.bucket_url(settings))
        self._host, self._prefix = bucket_url.netloc, bucket_url.path
        self._bucket = settings.bucket
        loops = EventLoopGroup(1)  # one native thread sends; the restore's reader keeps the other core
        bootstrap = ClientBootstrap(loops, DefaultHostResolver(loops))
        config = s3io.client_config(settings)
        self._client = s3.S3Client(
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
