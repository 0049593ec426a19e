"""Where a storage restore writes: the connection's bucket and each object's own key, or, for a
restore elsewhere, another bucket (RestoreOptions.storage_bucket) and a prefix before every key
(storage_prefix). Both are user input, checked against S3's rules before anything is read."""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from archivist.config import S3Settings
from archivist.errors import ConfigurationError
from archivist.sources.base import RestoreOptions
from archivist.sources.storage.keys import key_problem

# S3's bucket naming rules (general purpose buckets): 3 to 63 lowercase letters, digits, dots and
# hyphens, a letter or digit at each end, and names S3 keeps for itself refused.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_STARTS = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_ENDS = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_problem(name: str) -> str | None:
    """Why S3 refuses `name` as a bucket name, or None."""
    if not _BUCKET.match(name):
        return "is not 3 to 63 lowercase letters, digits, '.' or '-' beginning and ending with a letter or digit"
    if ".." in name:
        return "has two dots in a row"
    try:
        ipaddress.IPv4Address(name)
        return "looks like an IP address"
    except ValueError:
        pass
    if name.startswith(_RESERVED_STARTS) or name.endswith(_RESERVED_ENDS):
        return "starts or ends with a part S3 keeps for itself"
    return None


def check_options(options: RestoreOptions) -> None:
    if options.storage_bucket is not None and (why := bucket_problem(options.storage_bucket)):
        raise ConfigurationError(f"storage_bucket {options.storage_bucket!r} {why}")
    if options.storage_prefix and (why := key_problem(options.storage_prefix + "x")):
        raise ConfigurationError(
            f"storage_prefix {options.storage_prefix!r} cannot begin an object key: the key it makes {why}"
        )


def target(settings: S3Settings, options: RestoreOptions) -> S3Settings:
    """The settings of the bucket the restore writes (the connection's keys, another bucket)."""
    if options.storage_bucket is None or options.storage_bucket == settings.bucket:
        return settings
    return dataclasses.replace(
        settings, bucket=options.storage_bucket, source=f"storage_bucket, through {settings.source}"
    )
