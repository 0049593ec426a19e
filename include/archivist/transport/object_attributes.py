"""What S3 keeps with an object besides its bytes, as one value: its content type, the headers
S3 stores and serves back with it, its user metadata and its tag set; and the request arguments
that give an object all of them (a boto3 PUT or multipart upload, or awscrt's raw headers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 answers for an object stored without one

# The headers S3 stores with an object and serves back on every GET, by boto3's name for them.
STORED_HEADERS = {
    "CacheControl": "Cache-Control",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "Expires": "Expires",
}


@dataclass(frozen=True)
class ObjectAttributes:
    content_type: str = DEFAULT_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)  # HTTP name: value, of STORED_HEADERS only
    metadata: dict[str, str] = field(default_factory=dict)  # x-amz-meta-* without the prefix
    tags: dict[str, str] = field(default_factory=dict)

    def put_args(self) -> dict[str, Any]:
        """Keyword arguments of boto3's put_object and create_multipart_upload."""
        by_http = {http: name for name, http in STORED_HEADERS.items()}
        args: dict[str, Any] = {"ContentType": self.content_type, "Metadata": self.metadata}
        args.update({by_http[http]: value for http, value in self.headers.items()})
        if self.tags:
            args["Tagging"] = urlencode(self.tags)
        return args

    def http_headers(self) -> list[tuple[str, str]]:
        """The same as request headers, for a PUT sent without boto3."""
        return [
            ("Content-Type", self.content_type),
            *self.headers.items(),
            *((f"x-amz-meta-{name}", value) for name, value in self.metadata.items()),
            *([("x-amz-tagging", urlencode(self.tags))] if self.tags else []),
        ]


def from_get_object(answer: dict[str, Any], tags: dict[str, str] | None = None) -> ObjectAttributes:
    """The attributes in a boto3 GetObject or HeadObject answer (the tags come from GetObjectTagging)."""
    headers = {http: answer[name] for name, http in STORED_HEADERS.items() if answer.get(name) and name != "Expires"}
    # botocore parses Expires into a datetime (None when unparsable) and keeps the header as sent.
    expires = answer.get("ExpiresString") or (
        format_datetime(answer["Expires"], usegmt=True) if answer.get("Expires") else None
    )
    if expires:
        headers["Expires"] = expires
    return ObjectAttributes(
        content_type=answer.get("ContentType") or DEFAULT_CONTENT_TYPE,
        headers=dict(sorted(headers.items())),
        metadata=answer.get("Metadata") or {},
        tags=tags or {},
    )


def tag_set(answer: dict[str, Any]) -> dict[str, str]:
    """A GetObjectTagging answer's tags as a mapping."""
    return {tag["Key"]: tag["Value"] for tag in answer.get("TagSet", [])}
