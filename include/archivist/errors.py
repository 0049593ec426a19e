"""Exceptions a user can act on. Each carries the CLI exit code for its kind."""


class ArchivistError(Exception):
    """Base of every error archivist raises on purpose."""

    exit_code = 1


class ConfigurationError(ArchivistError):
    """A setting or connection is missing or invalid."""

    exit_code = 2


class UnreachableError(ArchivistError):
    """A server or bucket cannot be reached with the given settings."""

    exit_code = 3


class VerificationError(ArchivistError):
    """A bundle is corrupt, truncated, not a bundle, or of an unknown format."""

    exit_code = 4


class BackupNotFoundError(ArchivistError):
    """No bundle matches the backup key."""

    exit_code = 5


class TargetNotEmptyError(ArchivistError):
    """A restore in `empty` mode found data in its target."""

    exit_code = 6


class JobFailedError(ArchivistError):
    """A backup or restore job failed while running."""

    exit_code = 7
