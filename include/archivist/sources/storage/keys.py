"""What a storage restore refuses from an archive, which is as trustworthy as whoever could
write the backup bucket: object keys that are not keys of ours and sizes beyond what S3 can hold.
Headers that would cost memory, sparse files and entries cut short are refused while the archive
is read (`format.tar_entries`)."""

from __future__ import annotations

import tarfile

from archivist.errors import VerificationError

MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8
MAX_OBJECT_BYTES = 5 * 1024**4  # S3's limit on an object: 5 TiB


def key_problem(key: str) -> str | None:
    """Why a key from an archive must not be written, or None. Refused: what no object of ours
    can have (empty, over 1,024 bytes, not UTF-8) and what tools that map keys to paths would
    resolve elsewhere (`.` or `..` segments, an empty segment as in `a//b`). One leading `/` and
    one trailing `/` (a folder marker) are legal S3 keys that applications do use, so they pass."""
    if not key:
        return "is empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if size > MAX_KEY_BYTES:
        return f"is {size:,} bytes long, over S3's limit of {MAX_KEY_BYTES:,}"
    segments = key.removeprefix("/").removesuffix("/").split("/")
    if any(segment in (".", "..") for segment in segments):
        return "has a '.' or '..' segment"
    if "" in segments:
        return "has an empty segment"
    return None


def describe_key(key: str, limit: int = 80) -> str:
    """The key as a Python literal, shortened when long, for messages."""
    shown = repr(key)
    return shown if len(shown) <= limit else f"{shown[:limit]}… ({len(key)} characters)"


def check_member(member: tarfile.TarInfo, key: str) -> None:
    """Refuses an object larger than S3 can hold before any of it is read or sent."""
    if member.size > MAX_OBJECT_BYTES:
        raise VerificationError(
            f"the storage archive declares object {describe_key(key)} to be {member.size:,} "
            f"bytes, over S3's limit of {MAX_OBJECT_BYTES:,} (5 TiB): the archive is damaged "
            "or forged; nothing after it was restored"
        )
