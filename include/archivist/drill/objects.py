"""Object storage in a drill: each object as the bundle's storage archive and manifest hold it,
and as the scratch prefix holds it after the restore, by size and sha256.

The manifest (docs/FORMAT.md §5.6) lists each object's key and size but no sha256; the archive's
entries are hashed here, and the archive itself is checked against meta.json's sha256 as read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from archivist.errors import VerificationError
from archivist.format import limits
from archivist.format.bundle import DAMAGE_ERRORS
from archivist.format.streams import Readable
from archivist.format.tar_stream import read_tgz
from archivist.sources.storage import pax

BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Stored:
    size: int
    sha256: str


def _sha256(body: Readable) -> Stored:
    digest, size = hashlib.sha256(), 0
    while data := body.read(BLOCK):
        digest.update(data)
        size += len(data)
    return Stored(size, digest.hexdigest())


def read_archive(tgz: Readable) -> dict[str, Stored]:
    """Each regular entry of the storage archive by its object key, with its size and sha256."""
    found: dict[str, Stored] = {}
    try:
        for member, body in read_tgz(tgz):
            if body is not None:
                found[member.pax_headers.get(pax.KEY, member.name)] = _sha256(body)
    except DAMAGE_ERRORS as exc:
        raise VerificationError(f"the storage archive in the bundle is damaged: {exc}") from None
    return found


def read_manifest(manifest: Readable) -> dict[str, int]:
    """Each manifest line's key and size; a line of another shape is refused."""
    found: dict[str, int] = {}
    for line in _lines(manifest):
        try:
            entry = orjson.loads(line)
            found[str(entry["key"])] = int(entry["size"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise VerificationError("the storage manifest holds a line that is not an object's entry") from None
    return found


def _lines(stream: Readable) -> list[bytes]:
    # A manifest is small beside its archive: a line per object, each under the ndjson line cap.
    lines, partial = [], b""
    while data := stream.read(BLOCK):
        parts = (partial + data).split(b"\n")
        partial = parts.pop()
        if len(partial) > limits.NDJSON_LINE_BYTES:
            raise VerificationError("a line of the storage manifest is too long to be one object's entry")
        lines += [p for p in parts if p.strip()]
    return lines + ([partial] if partial.strip() else [])


def read_prefix(s3: Any, bucket: str, prefix: str) -> dict[str, Stored]:
    """Every object under `prefix` of `bucket`, by its key with the prefix taken off."""
    found: dict[str, Stored] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
            try:
                found[obj["Key"][len(prefix) :]] = _sha256(body)
            finally:
                body.close()
    return found
