"""What a storage restore refuses from an archive, which is as trustworthy as whoever could
write the backup bucket: object keys that are not keys of ours, sizes beyond what S3 can hold,
and headers or skipped entries that would cost memory or time the archive does not hold."""

from __future__ import annotations

import tarfile

from archivist.errors import VerificationError

MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8
MAX_OBJECT_BYTES = 5 * 1024**4  # S3's limit on an object: 5 TiB
SKIP_WINDOW = 1024 * 1024


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


def skip_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    """Reads past the data of a member that is not restored. tarfile would seek past it in its
    stream by reading block after block, without noticing when the archive ends first: a
    declared size of terabytes would keep it reading nothing for hours."""
    data = tar.extractfile(member) if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES else None
    while data is not None and data.read(SKIP_WINDOW):
        pass


def check_member(member: tarfile.TarInfo, key: str) -> None:
    """Refuses what archivist never writes and that would cost more than the archive holds."""
    if member.size > MAX_OBJECT_BYTES:
        raise VerificationError(
            f"the storage archive declares object {describe_key(key)} to be {member.size:,} "
            f"bytes, over S3's limit of {MAX_OBJECT_BYTES:,} (5 TiB): the archive is damaged "
            "or forged; nothing after it was restored"
        )
    if member.issparse():  # its holes would be restored as zeros that the archive does not hold
        raise VerificationError(
            f"the storage archive holds object {describe_key(key)} as a sparse file, which "
            "archivist never writes: the archive is forged; nothing after it was restored"
        )
