"""The bundle format: names, meta.json, writing and verifying. Described in docs/FORMAT.md.

A bundle is a gzipped tar named `bundle-YYYY-MM-DD-<id>.tgz` holding one folder
`bundle-YYYY-MM-DD-<id>/` with `meta.json` and a `jobs.<name>/` folder per job.
meta.json is written first, so a reader knows what to expect before the data.
"""

from __future__ import annotations

import datetime as dt
import difflib
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from isal import igzip

from archivist import __version__
from archivist.errors import BackupNotFoundError, ConfigurationError, VerificationError
from archivist.format import bundle_index, limits
from archivist.format.artifact import Artifact
from archivist.format.bundle_index import INFLATE_ERRORS
from archivist.format.deflate import Engine, GzipWriter
from archivist.format.streams import Readable, Writable, with_readinto
from archivist.format.tar_entries import TarEntries

# The newest format this archivist reads; it writes version 1 unless a bundle needs version 2, 3, 4
# or 5 (format_version_for), so readers of version 1 keep reading every bundle they can.
FORMAT_VERSION = 5
ENCRYPTED_VERSION = 4  # the version encryption needs: a bundle of version 5 may be encrypted too
# counts.jobs.elasticsearch's list of the data streams a bundle holds (version 5).
DATA_STREAMS_COUNT = "data_streams"
META = "meta.json"
JOB_DIRS = {"postgres": "jobs.postgres", "elasticsearch": "jobs.elasticsearch", "storage": "jobs.storage"}
KEY_RE = re.compile(r"^bundle-(\d{4}-\d{2}-\d{2})-([A-Za-z0-9_-]{11})$")
# ISA-L's level 3 deflates 4-5x faster per core than zlib's level 4 for bundles 2-4% larger
# (docs/PERFORMANCE.md#deflate-engine-and-level-of-the-bundle).
GZIP_ENGINE: Engine = "isal"
GZIP_LEVEL = 3
COPY_CHUNK = 1024 * 1024
# An encrypted bundle's object: the plain bundle's bytes encrypted with age, named with this suffix.
ENCRYPTED_SUFFIX = ".age"
ENCRYPTION_SCHEME = "age"
MAX_META_BYTES = limits.META_BYTES


def new_backup_id() -> str:
    """A random URL-safe id of 11 characters, like the spec's `qQUXdfPnayQ`."""
    return secrets.token_urlsafe(8)


@dataclass(frozen=True, order=True)
class BackupKey:
    """The name of one backup: `bundle-YYYY-MM-DD-<id>`; its object adds `.tgz`."""

    date: dt.date
    backup_id: str

    @classmethod
    def new(cls, today: dt.date | None = None) -> BackupKey:
        return cls(today or dt.datetime.now(dt.UTC).date(), new_backup_id())

    @classmethod
    def parse(cls, text: str) -> BackupKey:
        """Reads a key with or without `.tgz` or `.tgz.age` (and without any folder in front)."""
        name = text.strip().rsplit("/", 1)[-1].removesuffix(ENCRYPTED_SUFFIX).removesuffix(".tgz")
        match = KEY_RE.match(name)
        if not match:
            raise BackupNotFoundError(
                f"{text!r} is not a backup key: keys look like bundle-2026-11-26-qQUXdfPnayQ (or use 'latest')"
            )
        try:
            day = dt.date.fromisoformat(match.group(1))
        except ValueError:
            raise BackupNotFoundError(f"{text!r} is not a backup key: {match.group(1)} is not a date") from None
        return cls(day, match.group(2))

    @classmethod
    def is_bundle_object(cls, object_key: str) -> bool:
        """Whether an object key is a bundle name (plain or encrypted), and so may ever be rotated away."""
        plain = object_key.removesuffix(ENCRYPTED_SUFFIX)
        if not plain.endswith(".tgz") or not KEY_RE.match(plain[: -len(".tgz")]):
            return False
        try:
            cls.parse(object_key)
        except BackupNotFoundError:  # the right shape but an impossible date: not ours
            return False
        return True

    @property
    def name(self) -> str:
        return f"bundle-{self.date:%Y-%m-%d}-{self.backup_id}"

    @property
    def object_key(self) -> str:
        return f"{self.name}.tgz"

    def object_key_for(self, encrypted: bool) -> str:
        """The object's name: `.tgz`, or `.tgz.age` for a bundle encrypted with age."""
        return self.object_key + (ENCRYPTED_SUFFIX if encrypted else "")

    def __str__(self) -> str:
        return self.name


def closest_keys(wanted: str, existing: list[str], n: int = 3) -> list[str]:
    """The existing keys that look most like `wanted`, for a helpful not-found message."""
    return difflib.get_close_matches(wanted.removesuffix(".tgz"), existing, n=n, cutoff=0.3)


# --- member paths, relative to the bundle folder ------------------------------------------


def postgres_path(backup_id: str) -> str:
    return f"jobs.postgres/postgres-{backup_id}.sql"


def postgres_database_path(dbname: str, backup_id: str) -> str:
    """Version 2: the dump of a database backed up beside the connection's own."""
    return f"jobs.postgres/postgres-{dbname}-{backup_id}.sql"


def postgres_roles_path(backup_id: str) -> str:
    """Version 2: the cluster's role definitions, without passwords."""
    return f"jobs.postgres/roles-{backup_id}.sql"


_MAIN_DUMP = re.compile(r"^jobs\.postgres/postgres-[A-Za-z0-9_-]{11}\.sql$")
_DATABASE_DUMP = re.compile(r"^jobs\.postgres/postgres-(.+)-[A-Za-z0-9_-]{11}\.sql$")
_ROLES = re.compile(r"^jobs\.postgres/roles-[A-Za-z0-9_-]{11}\.sql$")


def database_of_path(path: str) -> str | None:
    """The database name in `jobs.postgres/postgres-<database>-<id>.sql`, else None."""
    match = _DATABASE_DUMP.match(path)
    return match.group(1) if match and not _MAIN_DUMP.match(path) else None


def is_postgres_dump(path: str) -> bool:
    """The dump of the connection's database: the postgres job's one `.sql` file in version 0 and 1
    bundles, and in version 2 the one that is neither another database's dump nor the roles."""
    return (
        path.startswith("jobs.postgres/")
        and path.endswith(".sql")
        and not is_postgres_roles(path)
        and database_of_path(path) is None
    )


def is_postgres_roles(path: str) -> bool:
    return bool(_ROLES.match(path))


def format_version_for(paths: list[str], encrypted: bool = False, data_streams: bool = False) -> int:
    """5 for a bundle holding an Elasticsearch data stream (an older reader would restore it as a
    plain index of the same name); else 4 for a bundle stored encrypted with age (its meta.json
    says so); else 3 when the storage job's objects are split over several archives (a reader of
    an older version would restore the first alone); else 2 when the bundle holds an artifact a
    version 1 reader would take for the one dump of the postgres job (another database's dump, the
    roles); else 1."""
    if data_streams:
        return 5
    if encrypted:
        return ENCRYPTED_VERSION
    if any(is_storage_part(p) for p in paths):
        return 3
    return 2 if any(database_of_path(p) or is_postgres_roles(p) for p in paths) else 1


def elasticsearch_index_path(index: str, backup_id: str) -> str:
    return f"jobs.elasticsearch/elasticsearch-{index}-{backup_id}.ndjson"


def templates_path(backup_id: str) -> str:
    return f"jobs.elasticsearch/templates-{backup_id}.json"


def indices_path(backup_id: str) -> str:
    """Our addition: each index's settings, mappings and aliases."""
    return f"jobs.elasticsearch/indices-{backup_id}.json"


def storage_path(backup_id: str, part: int | None = None) -> str:
    """The objects' archive; version 3: with `part`, one of several, each a range of the keys."""
    return f"jobs.storage/storage-{backup_id}{_part_suffix(part)}.tgz"


def storage_manifest_path(backup_id: str, part: int | None = None) -> str:
    """Our addition: one JSON line per object with its key, size, content type and metadata
    (version 3: with `part`, the objects of that part's archive)."""
    return f"jobs.storage/manifest-{backup_id}{_part_suffix(part)}.ndjson"


def _part_suffix(part: int | None) -> str:
    return "" if part is None else f".part-{part:04d}"


_STORAGE_PART = re.compile(r"^jobs\.storage/(storage|manifest)-[A-Za-z0-9_-]{11}\.part-\d{4}\.(tgz|ndjson)$")


def is_storage_part(path: str) -> bool:
    """An archive or manifest of one part of a split storage job (version 3)."""
    return bool(_STORAGE_PART.match(path))


def index_of_path(path: str) -> str | None:
    """The index name in `jobs.elasticsearch/elasticsearch-<index>-<id>.ndjson`, else None."""
    match = re.match(r"^jobs\.elasticsearch/elasticsearch-(.+)-([A-Za-z0-9_-]{11})\.ndjson$", path)
    return match.group(1) if match else None


def job_of_path(path: str) -> str | None:
    folder = path.split("/", 1)[0]
    return next((job for job, d in JOB_DIRS.items() if d == folder), None)


# --- meta.json -----------------------------------------------------------------------------


@dataclass
class JobResult:
    """What one job hands on: its artifacts, its counts and how long it took."""

    job: str
    artifacts: list[Artifact]
    counts: dict[str, Any]
    time_seconds: float
    server_version: str = ""
    # The part of a split job this is (its artifacts wait in the part's own staging folder), or None.
    part: int | None = None
    # A part that read slices of one index (runner/split.py): the index, the point in time, which
    # slices of how many, and the point in time's total; never written into the bundle.
    slices: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "artifacts": [a.as_dict() for a in self.artifacts],
            "counts": self.counts,
            "time_seconds": self.time_seconds,
            "server_version": self.server_version,
            "part": self.part,
            "slices": self.slices,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        return cls(
            job=data["job"],
            artifacts=[Artifact(**a) for a in data["artifacts"]],
            counts=data["counts"],
            time_seconds=data["time_seconds"],
            server_version=data.get("server_version", ""),
            part=data.get("part"),
            slices=data.get("slices"),
        )


def _git(*args: str) -> str:
    try:
        root = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def ci_block() -> dict[str, str]:
    """The spec's `archivist` block: CI_* from the environment, else from git, else "local"."""
    sha = os.environ.get("CI_COMMIT_SHA") or _git("rev-parse", "HEAD") or "local"
    ref = os.environ.get("CI_COMMIT_REF_NAME") or _git("rev-parse", "--abbrev-ref", "HEAD") or "local"
    return {
        "CI_COMMIT_MESSAGE": os.environ.get("CI_COMMIT_MESSAGE", ""),
        "CI_COMMIT_REF_NAME": ref,
        "CI_COMMIT_REF_SLUG": os.environ.get("CI_COMMIT_REF_SLUG")
        or re.sub(r"[^a-z0-9]+", "-", ref.lower()).strip("-"),
        "CI_COMMIT_SHA": sha,
        "CI_COMMIT_SHORT_SHA": os.environ.get("CI_COMMIT_SHORT_SHA") or (sha[:8] if sha != "local" else "local"),
        "CI_COMMIT_TAG": os.environ.get("CI_COMMIT_TAG", f"v{__version__}"),
        "CI_JOB_ID": os.environ.get("CI_JOB_ID", ""),
        "CI_PIPELINE_IID": os.environ.get("CI_PIPELINE_IID", ""),
        "CI_PROJECT_NAME": "archivist",
        "CI_REGISTRY_IMAGE": os.environ.get("CI_REGISTRY_IMAGE", ""),
    }


def build_meta(
    key: BackupKey,
    results: list[JobResult],
    created_at: dt.datetime,
    namespace: str = "",
    dag_id: str | None = None,
    run_id: str | None = None,
    encrypted: bool = False,
) -> dict[str, Any]:
    """meta.json: the spec's fields first, then ours. Holds no secret by construction; an
    encrypted bundle's says which scheme, never a key."""
    results = sorted(results, key=lambda r: r.job)
    meta: dict[str, Any] = {
        "archivist": ci_block(),
        "stats": {JOB_DIRS[r.job]: {"time_seconds": r.time_seconds} for r in results},
        "format_version": format_version_for(
            [a.path for r in results for a in r.artifacts],
            encrypted,
            any(r.counts.get(DATA_STREAMS_COUNT) for r in results if r.job == "elasticsearch"),
        ),
        "archivist_version": __version__,
        "key": key.name,
        "backup_id": key.backup_id,
        "created_at": created_at.astimezone(dt.UTC).isoformat(),
        "namespace": namespace,
        "airflow": {"dag_id": dag_id, "run_id": run_id},
        "servers": {r.job: r.server_version for r in results},
        "counts": {JOB_DIRS[r.job]: r.counts for r in results},
        "artifacts": {a.path: {"size": a.size, "sha256": a.sha256} for r in results for a in r.artifacts},
    }
    if encrypted:
        meta["encryption"] = ENCRYPTION_SCHEME
    return meta


# --- writing -------------------------------------------------------------------------------


def write_bundle(
    out: Writable,
    key: BackupKey,
    meta: dict[str, Any],
    artifacts: list[Artifact],
    open_artifact: Callable[[str], Readable],
    compresslevel: int = GZIP_LEVEL,
    engine: Engine = GZIP_ENGINE,
) -> None:
    """Streams the bundle into `out`: folders, meta.json, then each artifact from `open_artifact`."""
    mtime = int(dt.datetime.fromisoformat(meta["created_at"]).timestamp())
    starts: list[tuple[str, int, int]] = []  # (file, where its restart point is, CRC32 of the span before)
    with GzipWriter(out, compresslevel=compresslevel, mtime=mtime, engine=engine) as gz:
        # "w:" rather than the stream mode: tarfile then writes straight through, so a restart
        # point falls exactly where a file's tar header begins.
        # typeshed's tarfile.open lacks copybufsize, which it hands to TarFile
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=gz, mode="w:", format=tarfile.PAX_FORMAT, copybufsize=COPY_CHUNK
        ) as tar:
            folders = [key.name] + [
                f"{key.name}/{JOB_DIRS[job]}" for job in JOB_DIRS if any(job_of_path(a.path) == job for a in artifacts)
            ]
            for folder in folders:
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                tar.addfile(info)
            body = json.dumps(meta, indent=2, sort_keys=False).encode()
            if len(body) > MAX_META_BYTES:  # readers would refuse the bundle
                raise ConfigurationError(
                    f"meta.json would be {len(body)} bytes, more than the {limits.human(MAX_META_BYTES)} readers "
                    "accept (docs/FORMAT.md): back up fewer indices per bundle with the param index_pattern"
                )
            starts.append((META, *gz.restart_point()))
            tar.addfile(_file_info(f"{key.name}/{META}", len(body), mtime), io.BytesIO(body))
            for artifact in sorted(artifacts, key=member_order):
                source = open_artifact(artifact.path)
                try:
                    starts.append((artifact.path, *gz.restart_point()))
                    tar.addfile(_file_info(f"{key.name}/{artifact.path}", artifact.size, mtime), source)
                finally:
                    getattr(source, "close", lambda: None)()
        index = bundle_index.index_block(bundle_index.spans(starts, *gz.restart_point()))
        if index is not None:
            gz.append_stored(index)  # after the tar's end-of-archive blocks, where tar readers stop


def member_order(artifact: Artifact) -> tuple[int, int, str]:
    """Jobs in a fixed order, and in each job the small descriptions before the data,
    so a streaming restore has templates, mappings and the manifest before it needs them."""
    is_data = (
        artifact.path.endswith((".ndjson", ".sql", ".tgz"))
        and "/manifest-" not in artifact.path
        and not is_postgres_roles(artifact.path)  # roles come first: a restore creates them before the owners
    )
    return (list(JOB_DIRS).index(job_of_path(artifact.path) or "postgres"), int(is_data), artifact.path)


def _file_info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, mtime
    return info


# --- reading and verifying -----------------------------------------------------------------

# What reading a damaged or cut bundle raises, from tarfile, gzip and either inflater.
DAMAGE_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, gzip.BadGzipFile, *INFLATE_ERRORS)
# What reading a bundle's first bytes may raise when the range read ends mid-member.
_CUT_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, *DAMAGE_ERRORS)


# After the tar's end: the end-of-archive blocks and record padding (zeros), then at most one
# seek index (a stored block of at most 65,535 bytes). Anything more is refused.
MAX_TRAILER = tarfile.RECORDSIZE + 2 * tarfile.BLOCKSIZE + 65535


def iter_members(
    stream: Readable,
    trailer: list[bytes] | None = None,
    inflated: bool = False,
    places: dict[str, tuple[int, int]] | None = None,
) -> Iterator[tuple[str, tarfile.TarInfo, Readable]]:
    """Streams a bundle's files as (path inside the bundle folder, tar info, file object).

    Reads the archive once, front to back, in bounded memory. Damage of any kind
    (truncation, a flipped byte, something that is not a gzipped tar) surfaces
    as VerificationError; the gzip trailer's CRC is checked at the end. Whatever follows
    the tar's end-of-archive blocks must be zeros and at most one seek index: its bytes
    (the index, or b"") are appended to `trailer` when given. An `inflated` stream is the tar
    itself (bundle_index.IndexedReading). `places` gets each file's offsets in the tar: where its
    entry's headers begin, and where its bytes do.
    """
    # igzip (ISA-L) inflates several times faster than the standard library's gzip
    gz = stream if inflated else igzip.GzipFile(fileobj=with_readinto(stream), mode="rb")
    try:
        entries = TarEntries(gz)
        top = None
        for member, fileobj in entries:
            first, _, rel = member.name.partition("/")
            if top is None:
                if not KEY_RE.match(first):
                    raise VerificationError(
                        f"not a bundle: its first entry {member.name!r} is not a bundle-YYYY-MM-DD-<id> folder"
                    )
                top = first
            elif first != top:
                raise VerificationError(f"not a bundle: entry {member.name!r} lies outside the folder {top}/")
            if fileobj is not None:
                if places is not None:
                    places[rel] = (entries.entry_start, entries.offset)
                yield rel, member, fileobj
        if top is None:
            raise VerificationError("not a bundle: the archive is empty")
        rest = entries.end_block
        while len(rest) <= MAX_TRAILER and (chunk := gz.read(COPY_CHUNK)):
            rest += chunk  # to the gzip trailer, whose CRC and length are then checked
        if len(rest) > MAX_TRAILER:
            raise VerificationError(
                "the bundle holds data after the tar's end that is neither padding nor its seek index: refused"
            )
        index = rest.lstrip(b"\0")
        if index and not bundle_index.is_index_block(index):
            raise VerificationError(
                "the bundle holds data after the tar's end that is neither padding nor its seek index: refused"
            )
        if trailer is not None:
            trailer.append(index)
    except DAMAGE_ERRORS as exc:
        raise VerificationError(f"the bundle is damaged or truncated, or is not a gzipped tar: {exc}") from None
    except OSError as exc:
        if "gzip" in str(exc).lower() or "compressed" in str(exc).lower():
            raise VerificationError(f"the bundle is not a gzipped tar: {exc}") from None
        raise


@dataclass
class VerifyReport:
    """What `verify` found: the meta.json, each member's size and sha256, and any warnings."""

    meta: dict[str, Any]
    members: dict[str, Artifact] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    index: bytes = b""  # the seek index found after the tar's end, as its bytes
    meta_member: Artifact | None = None
    # each file's (meta.json's too) offsets in the tar: where its entry's headers begin, where its bytes do
    places: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def checksummed(self) -> bool:
        return "artifacts" in self.meta

    @property
    def jobs(self) -> list[str]:
        return sorted({j for p in self.members if (j := job_of_path(p))})


def _read_all(
    stream: Readable, inflated: bool, places: dict[str, tuple[int, int]]
) -> tuple[dict[str, Any] | None, dict[str, Artifact], bytes]:
    """Hashes every member (meta.json too) and parses meta.json, reading the stream once; also
    returns the seek index found after the tar's end."""
    meta: dict[str, Any] | None = None
    members: dict[str, Artifact] = {}
    trailer: list[bytes] = []
    for path, info, fileobj in iter_members(stream, trailer, inflated, places):
        digest, size = hashlib.sha256(), 0
        chunks: list[bytes] | None = [] if path == META else None
        if path == META and info.size > MAX_META_BYTES:
            raise VerificationError(f"meta.json is {info.size} bytes, too large to be a bundle's meta.json")
        if path in members or (path == META and meta is not None):
            raise VerificationError(f"the bundle holds {path} twice")
        while chunk := fileobj.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if chunks is not None:
                chunks.append(chunk)
        if size != info.size:
            raise VerificationError(f"member {path} is truncated: {size} of {info.size} bytes")
        if path == META:
            meta = parse_meta(b"".join(chunks or []))
            check_format_version(meta)
        members[path] = Artifact(path, size, digest.hexdigest())
    return meta, members, trailer[0] if trailer else b""


def parse_meta(body: bytes) -> dict[str, Any]:
    """meta.json's bytes as the object they must be; anything else is a VerificationError."""
    try:
        meta = json.loads(body)
    except ValueError as exc:
        raise VerificationError(f"{META} is not valid JSON: {exc}") from None
    except RecursionError:
        raise VerificationError(f"{META} nests deeper than a JSON parser follows") from None
    if not isinstance(meta, dict):
        raise VerificationError(f"{META} is not a JSON object")
    return meta


class MetaNeedsMore(Exception):
    """The bytes read so far end before meta.json does."""


class NotABundleError(VerificationError):
    """What a bundle's first bytes show for certain, however many more there are."""


def meta_from_prefix(stream: Readable, complete: bool) -> dict[str, Any]:
    """meta.json from a bundle's first bytes, where our bundles keep it; `complete` tells whether
    they are the whole object. Raises MetaNeedsMore when more bytes could tell."""
    try:
        for path, info, fileobj in iter_members(stream):
            if path != META:
                raise NotABundleError(f"its first file is {path!r}, not {META}")
            if info.size > MAX_META_BYTES:
                raise NotABundleError(f"{META} is {info.size} bytes, too large to be a bundle's {META}")
            body = fileobj.read()
            if len(body) != info.size:
                raise MetaNeedsMore()
            return parse_meta(body)
    except NotABundleError:
        raise
    except VerificationError:  # iter_members' own errors may only mean "read further"
        if complete:
            raise
        raise MetaNeedsMore() from None
    except _CUT_ERRORS as exc:  # the range ended mid-member
        if complete:
            raise VerificationError(f"the bundle is damaged or truncated: {exc}") from None
        raise MetaNeedsMore() from None
    raise VerificationError(f"not a bundle: it holds no {META}")


UNCHECKED_HINT = (
    "to restore it anyway, knowing that nothing in it can be checked, ask for it: the restore "
    "param allow_unchecked, `--allow-unchecked` on the command line, or the Backups page's "
    "'restore without checksums' box"
)


def verify(stream: Readable, allow_unchecked: bool = False, inflated: bool = False) -> VerifyReport:
    """Reads the whole bundle once and checks it against its meta.json (`inflated`: the stream is
    the tar, already inflated).

    Our bundles must match every size and sha256 listed. A bundle of the original tool (no
    `artifacts`, no `format_version` in meta.json) cannot be checked: it is refused unless
    `allow_unchecked`, and then passes with a warning. A meta.json that claims archivist's
    format but lists no checksums is refused: stripping them must not be a way around them.
    """
    places: dict[str, tuple[int, int]] = {}
    try:
        meta, members, index = _read_all(stream, inflated, places)
    except DAMAGE_ERRORS as exc:  # damage found while reading a member's bytes
        raise VerificationError(f"the bundle is damaged or truncated: {exc}") from None
    if meta is None:
        raise VerificationError("not a bundle: it has no meta.json")
    meta_member = members.pop(META)
    report = VerifyReport(meta=meta, members=members, index=index, meta_member=meta_member, places=places)
    for path in members:
        if job_of_path(path) is None:
            raise VerificationError(f"unexpected file {path} outside the jobs.* folders")
    expected = meta.get("artifacts")
    if expected is None:
        if "format_version" in meta:
            raise VerificationError(
                f"meta.json claims archivist's format_version {meta['format_version']!r} but lists no "
                "checksums (`artifacts`): refused, a bundle of ours always has them and this one may "
                "have been altered"
            )
        if not allow_unchecked:
            raise VerificationError(
                "this bundle has no checksums (the original tool's format): its contents cannot be "
                f"verified, so it is not restored; {UNCHECKED_HINT}"
            )
        report.warnings.append(
            "this bundle has no checksums (made by the original tool): its structure was checked but "
            "its contents cannot be verified; restoring it because that was asked for"
        )
        return report
    if not isinstance(expected, dict) or not all(
        isinstance(w, dict) and isinstance(w.get("size"), int) and isinstance(w.get("sha256"), str)
        for w in expected.values()
    ):
        raise VerificationError("meta.json's `artifacts` is not a map of path to {size, sha256}")
    missing = sorted(set(expected) - set(members))
    extra = sorted(set(members) - set(expected))
    if missing:
        raise VerificationError(f"bundle is missing {', '.join(missing)} listed in meta.json")
    if extra:
        raise VerificationError(f"bundle holds {', '.join(extra)}, which meta.json does not list")
    for path, want in expected.items():
        got = members[path]
        if got.size != want["size"] or got.sha256 != want["sha256"]:
            raise VerificationError(
                f"{path} does not match meta.json: size {got.size} (expected {want['size']}), "
                f"sha256 {got.sha256[:12]}… (expected {want['sha256'][:12]}…)"
            )
    return report


def check_format_version(meta: dict[str, Any]) -> None:
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise VerificationError(
            f"this bundle has format_version {version!r}, newer than the {FORMAT_VERSION} this archivist "
            f"({__version__}) reads: upgrade archivist to restore it"
        )
