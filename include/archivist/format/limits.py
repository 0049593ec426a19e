"""The most a reader takes from a bundle where the bundle says how much there is.

Whoever can write the backup bucket chooses a bundle's bytes, and a few kilobytes of gzip inflate
to gigabytes. So every part that is read into memory whole has a cap, checked before or while it
is read, never after: docs/FORMAT.md, "Limits a reader enforces", gives each cap and why it is
far above what archivist writes.
"""

from __future__ import annotations

from archivist.errors import VerificationError
from archivist.format.streams import Readable

MiB = 1024 * 1024
# meta.json: about 230 bytes per backed-up index (its count and its artifact's size and sha256),
# so 1 MiB holds some 4,500 indices of 20-character names; a writer refuses to make a bigger one.
META_BYTES = 1 * MiB
# templates-<id>.json and indices-<id>.json, parsed whole.
ES_JSON_BYTES = 64 * MiB
# One ndjson line, without its newline: Elasticsearch's default http.max_content_length (100mb)
# bounds the document it could have taken; the extra MiB leaves room for `_index`, `_id`, `_routing`.
NDJSON_LINE_BYTES = 101 * MiB
# A tar extended (pax) or GNU long-name header, which tarfile reads whole before the file: ours
# hold a path and a few records.
TAR_HEADER_BYTES = 1 * MiB


def read_at_most(fileobj: Readable, cap: int, what: str) -> bytes:
    """The whole of `fileobj`, refused with a VerificationError naming `what` when it is longer
    than `cap` bytes; no more than cap + 1 bytes are ever held."""
    data = fileobj.read(cap + 1)
    if len(data) > cap:
        raise VerificationError(
            f"{what} is larger than {human(cap)}, the most a reader accepts (docs/FORMAT.md, "
            '"Limits a reader enforces"): the bundle is not one archivist made'
        )
    return data


def human(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"
