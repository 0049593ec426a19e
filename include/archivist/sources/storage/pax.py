"""The pax records of a storage archive entry: the object's exact key and what S3 keeps with it.

Read back, the records are as trustworthy as whoever could write the backup bucket, and each one
reaches a request header: only the headers S3 stores with an object pass, and no name or value
may hold a control character (which would split a header) or exceed S3's own limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from archivist.transport.object_attributes import DEFAULT_CONTENT_TYPE, STORED_HEADERS, ObjectAttributes

KEY = "ARCHIVIST.key"
CONTENT_TYPE = "ARCHIVIST.content_type"
METADATA = "ARCHIVIST.metadata"
HEADERS = "ARCHIVIST.headers"
TAGS = "ARCHIVIST.tags"

MAX_TAGS = 10  # S3's limits on an object's tag set
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_VALUE = 8192  # far above any header S3 accepts, and bounded
METADATA_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AttributeProblem(ValueError):
    """A record of the entry that must not reach a request; its text says which and why."""


def records(key: str, attributes: ObjectAttributes) -> dict[str, str]:
    """The pax records for an object; headers and tags only when it has some."""
    out = {KEY: key, CONTENT_TYPE: attributes.content_type, METADATA: orjson.dumps(attributes.metadata).decode()}
    if attributes.headers:
        out[HEADERS] = orjson.dumps(attributes.headers).decode()
    if attributes.tags:
        out[TAGS] = orjson.dumps(attributes.tags).decode()
    return out


def _text(value: Any, what: str, limit: int = MAX_VALUE) -> str:
    if not isinstance(value, str):
        raise AttributeProblem(f"{what} is not text")
    if CONTROL.search(value):
        raise AttributeProblem(f"{what} holds a control character")
    if len(value) > limit:
        raise AttributeProblem(f"{what} is longer than {limit:,} characters")
    return value


def _mapping(pax: Mapping[str, str], record: str) -> dict[str, Any]:
    text = pax.get(record)
    if text is None:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise AttributeProblem(f"its {record} record is not JSON") from None
    if not isinstance(value, dict):
        raise AttributeProblem(f"its {record} record is not a JSON object")
    return value


def attributes(pax: Mapping[str, str], guessed_type: str | None) -> ObjectAttributes:
    """The object's attributes from the entry's pax records, or AttributeProblem. An entry without
    them (the original tool's archives) gets `guessed_type` and nothing else."""
    content_type = _text(pax.get(CONTENT_TYPE) or guessed_type or DEFAULT_CONTENT_TYPE, "its content type")
    metadata = {_name(name): _text(value, f"user metadata {name!r}") for name, value in _mapping(pax, METADATA).items()}
    allowed = set(STORED_HEADERS.values())
    headers = {}
    for name, value in _mapping(pax, HEADERS).items():
        if name not in allowed:
            raise AttributeProblem(f"header {name[:40]!r} is not one S3 stores with an object")
        headers[name] = _text(value, f"header {name}")
    tags = _mapping(pax, TAGS)
    if len(tags) > MAX_TAGS:
        raise AttributeProblem(f"it has {len(tags)} tags, over S3's limit of {MAX_TAGS}")
    tags = {
        _text(name, "a tag key", MAX_TAG_KEY): _text(value, f"tag {name[:40]!r}", MAX_TAG_VALUE)
        for name, value in tags.items()
    }
    return ObjectAttributes(content_type, headers, metadata, tags)


def _name(name: str) -> str:
    if not METADATA_NAME.match(name) or len(name) > MAX_VALUE:
        raise AttributeProblem(f"user metadata name {name[:40]!r} is not a valid header name")
    return name
