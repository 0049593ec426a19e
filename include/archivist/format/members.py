"""Reading chosen files out of a bundle, each checked against meta.json as it is read.

A bundle with a seek index is read by byte range, one member at a time; one without is
streamed once more. Either way memory stays bounded and a restore job reads only its own
members, so jobs can run on different machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson

from archivist.errors import VerificationError
from archivist.format import bundle, bundle_index, limits
from archivist.format.bundle import META
from archivist.format.bundle_index import BundleSource, CheckedReader

BundleOpener = Callable[[], IO[bytes]]
Wanted = Callable[[str], bool]


def members(open_bundle: BundleOpener, wanted: Wanted, checked: bool = True) -> Iterator[tuple[str, IO[bytes]]]:
    """Yields (path, file) for each member `wanted` selects. With `checked`, each file is hashed
    as it is read and must match meta.json's checksums (see CheckedReader)."""
    known = checksums(open_bundle) if checked else None
    for path, fileobj in _unchecked(open_bundle, wanted):
        want = (known or {}).get(path)
        if path == META:  # not in its own list; pinned to the object verify read
            yield path, fileobj
            continue
        if known is not None and want is None:
            raise VerificationError(f"{path} is not listed in the bundle's meta.json")
        yield path, CheckedReader(fileobj, path, want["size"], want["sha256"]) if want else fileobj


def _unchecked(open_bundle: BundleOpener, wanted: Wanted) -> Iterator[tuple[str, IO[bytes]]]:
    indexed = bundle_index.iter_indexed(open_bundle, wanted)
    if indexed is not None:
        yield from indexed
        return
    stream = open_bundle()
    try:
        for path, _info, fileobj in bundle.iter_members(stream):
            if wanted(path):
                yield path, fileobj
    finally:
        getattr(stream, "close", lambda: None)()


def checksums(open_bundle: BundleOpener) -> dict[str, Any] | None:
    """meta.json's `artifacts` (None for a bundle without checksums), read from the bundle once."""
    known = getattr(open_bundle, "checksums", None)
    if known is not None:
        return known
    for _, fileobj in _unchecked(open_bundle, lambda p: p == META):
        data = fileobj.read(bundle.MAX_META_BYTES + 1)
        if len(data) > bundle.MAX_META_BYTES:
            raise VerificationError(f"meta.json is over {bundle.MAX_META_BYTES} bytes: not a bundle's meta.json")
        try:
            known = orjson.loads(data).get("artifacts")
        except (orjson.JSONDecodeError, AttributeError):
            raise VerificationError("meta.json is not a JSON object") from None
        break
    if isinstance(open_bundle, BundleSource):
        open_bundle.checksums = known
    return known


def finish(fileobj: IO[bytes]) -> None:
    """Reads what a job left of a member, so its checksum is checked in full."""
    if isinstance(fileobj, CheckedReader):
        fileobj.finish()


def read_json(fileobj: IO[bytes], cap: int, path: str) -> Any:
    """A JSON member of at most `cap` bytes, parsed."""
    try:
        return orjson.loads(limits.read_at_most(fileobj, cap, path))
    except orjson.JSONDecodeError as exc:
        raise VerificationError(f"{path} is not valid JSON: {exc}") from None
