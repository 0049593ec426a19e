"""One backup or restore at a time per stack: a lock object in the backup bucket.

Every backup and every restore that writes (either mode; not a dry run, not `verify`) holds
`<key prefix>archivist.lock` while it runs, whether it runs as a DAG or as the `archivist`
command, on any machine. The object is only ever changed by a conditional PUT: `If-None-Match: *`
makes it, `If-Match: <ETag>` changes it, so of two writers racing exactly one wins. Releasing
rewrites it as free rather than deleting it, because MinIO ignores `If-Match` on DELETE.

A holder shows it is alive by rewriting the object (its Last-Modified is the sign of life, read
with the server's own clock). A holder silent for longer than the lease it declared, or holding it
longer than a run may last (ARCHIVIST_RUN_TIMEOUT_HOURS), is taken over with a warning. Anyone who
can write to the bucket can write this object, so its body is untrusted: it is size-capped,
validated, and its strings are shown only after cleaning.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from archivist.errors import LockHeldError, LockLostError
from archivist.transport.heartbeat import beating

log = logging.getLogger(__name__)

LOCK_OBJECT = "archivist.lock"
KINDS = ("backup", "restore")
FORMAT = 1
MAX_BYTES = 4096
BEAT_EVERY = 60.0  # seconds between a running holder's rewrites
# A DAG run holds the lock across its tasks, and between two of them (a retry's delay is at most
# 10 minutes) nothing rewrites it; the command holds it in one process that rewrites it every minute.
DAG_LEASE = dt.timedelta(minutes=30)
COMMAND_LEASE = dt.timedelta(minutes=5)
MIN_LEASE, MAX_LEASE = dt.timedelta(minutes=1), dt.timedelta(hours=1)
CLEAR_HINT = "`archivist unlock`"


def owner_here() -> str:
    """Who is asking: the DAG run when called from an Airflow task (its tasks share the lock),
    else this process (host, pid and a token, so a reused pid is another owner)."""
    dag_id, run_id = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    if dag_id and run_id:
        return f"{dag_id}/{run_id}"
    return f"archivist command on {socket.gethostname()} pid {os.getpid()} #{_PROCESS_TOKEN}"


_PROCESS_TOKEN = secrets.token_hex(4)


def _clean(value: Any, limit: int = 200) -> str:
    """A string from the lock's body, safe for a log line or a message. An owner may be longer (a
    DAG id and a run id of up to 250 characters each): it must still equal the one that wrote it."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text[:limit] + ("…" if len(text) > limit else "")


def _utc(text: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(text))
    if when.tzinfo is None:
        raise ValueError("no time zone")
    return when.astimezone(dt.UTC)


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its body states, and when the server last saw it rewritten."""

    owner: str
    kind: str
    host: str
    pid: int
    started_at: dt.datetime
    lease: dt.timedelta
    last_beat: dt.datetime
    problem: str = ""  # set when the body is not a lock archivist wrote

    def describe(self, now: dt.datetime) -> str:
        age = _duration(now - self.last_beat)
        if self.problem:
            written = f"{self.last_beat:%Y-%m-%d %H:%M:%S}"
            return f"an object archivist did not write ({self.problem}), written {written} UTC"
        return (
            f"{self.kind} '{self.owner}' on host {self.host} (pid {self.pid}), since "
            f"{self.started_at:%Y-%m-%d %H:%M:%S} UTC, last sign of life {age} ago"
        )

    def stale_reason(self, now: dt.datetime, run_timeout: dt.timedelta) -> str | None:
        """Why the lock may be taken over, or None while its holder counts as alive."""
        silent, held = now - self.last_beat, now - self.started_at
        if silent > self.lease:
            return f"no sign of life for {_duration(silent)}, longer than its lease of {_duration(self.lease)}"
        if held > run_timeout:
            return f"held for {_duration(held)}, longer than a run may last ({_duration(run_timeout)})"
        return None


def _duration(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def parse_holder(body: bytes, last_modified: dt.datetime) -> Holder | None:
    """The holder the body names, or None when it says the lock is free. A body that is not a
    lock of this format still counts as held (its writer may be running), with `problem` set and
    the longest lease, so it is taken over only after that: it cannot block anyone for good."""
    try:
        if len(body) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("archivist_lock") != FORMAT:
            raise ValueError(f"not an archivist lock of format {FORMAT}")
        if data.get("state") == "free":
            return None
        if data.get("state") != "held" or data.get("kind") not in KINDS:
            raise ValueError("unknown state or kind")
        pid, lease = data.get("pid"), data.get("lease_seconds")
        if type(pid) is not int or type(lease) is not int or pid < 0:
            raise ValueError("pid or lease_seconds is not a whole number")
        started = _utc(data.get("started_at"))
        if started > last_modified + dt.timedelta(minutes=5):
            raise ValueError("started after it was written")
        bounded = min(max(dt.timedelta(seconds=lease), MIN_LEASE), MAX_LEASE)
        return Holder(
            _clean(data.get("owner"), 600), data["kind"], _clean(data.get("host")), pid, started, bounded, last_modified
        )
    except (ValueError, TypeError, OverflowError) as exc:
        return Holder("unknown", "unknown", "unknown", 0, last_modified, MAX_LEASE, last_modified, _clean(exc, 120))


@dataclass(frozen=True)
class Seen:
    """The lock object as one read found it: its holder (None: free), ETag and the server's time."""

    holder: Holder | None
    etag: str
    now: dt.datetime


def _failed_precondition(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict") or exc.response.get(
        "ResponseMetadata", {}
    ).get("HTTPStatusCode") in (409, 412)


class OperationLock:
    """The lock object `key` in `bucket`; `where` names the store in messages."""

    def __init__(self, s3: Any, bucket: str, key: str, where: str, run_timeout: dt.timedelta):
        self.s3, self.bucket, self.key, self.where, self.run_timeout = s3, bucket, key, where, run_timeout

    def read(self) -> Seen | None:
        """The lock as it is now, or None when the object does not exist."""
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        with got["Body"] as body:
            data = body.read(MAX_BYTES + 1)
        date = got["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        now = email.utils.parsedate_to_datetime(date) if date else dt.datetime.now(dt.UTC)
        return Seen(parse_holder(data, got["LastModified"]), got["ETag"], now.astimezone(dt.UTC))

    def _put(self, body: dict[str, Any], etag: str | None) -> bool:
        """Writes `body` if the object is still at `etag` (None: if there is no object); False if not."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        # "written" makes every body differ, so an ETag never comes back (no ABA)
        written = f"{dt.datetime.now(dt.UTC).isoformat()} {secrets.token_hex(4)}"
        data = json.dumps({"archivist_lock": FORMAT, **body, "written": written}).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/json", **condition)
        except ClientError as exc:
            if _failed_precondition(exc):
                return False
            raise
        return True

    def _held_body(self, kind: str, owner: str, lease: dt.timedelta, started: dt.datetime | None = None) -> dict:
        return {
            "state": "held",
            "kind": kind,
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": (started or dt.datetime.now(dt.UTC)).isoformat(),
            "lease_seconds": int(lease.total_seconds()),
        }

    def acquire(self, kind: str, owner: str | None = None, lease: dt.timedelta = COMMAND_LEASE) -> None:
        """Takes the lock for `owner` (this DAG run or process), or keeps it if `owner` holds it
        already. Raises LockHeldError naming the holder when another live one holds it."""
        owner = owner or owner_here()
        for _ in range(10):  # each turn lost means someone else wrote first: look again
            seen = self.read()
            if seen is None:
                if self._put(self._held_body(kind, owner, lease), None):
                    break
                continue
            holder = seen.holder
            if holder is not None and holder.owner == owner and not holder.problem:
                if self._put(self._held_body(kind, owner, lease, holder.started_at), seen.etag):
                    break
                continue
            if holder is not None:
                stale = holder.stale_reason(seen.now, self.run_timeout)
                if stale is None:
                    raise LockHeldError(
                        f"another backup or restore is running: {self.where} is locked by "
                        f"{holder.describe(seen.now)}. This {kind} did not start. The lock is taken over "
                        f"once its holder shows no sign of life for {_duration(holder.lease)}; if it is "
                        f"no longer running, clear the lock now with {CLEAR_HINT} (or delete the object "
                        f"'{self.key}' in bucket '{self.bucket}')"
                    )
                log.warning("taking over the lock of %s from %s: %s", self.where, holder.describe(seen.now), stale)
            if self._put(self._held_body(kind, owner, lease), seen.etag):
                break
        else:
            raise LockHeldError(f"could not take the lock of {self.where}: others kept writing it; try again")
        log.info("%s holds the lock of %s for a %s", owner, self.where, kind)

    def beat(self, owner: str | None = None) -> None:
        """Shows that `owner` is alive; raises LockLostError when someone else holds the lock now."""
        owner = owner or owner_here()
        for _ in range(10):
            seen = self.read()
            holder = seen.holder if seen else None
            if seen is None or holder is None or holder.owner != owner or holder.problem:
                whom = holder.describe(seen.now) if seen and holder else "nobody (it was cleared)"
                raise LockLostError(
                    f"this run no longer holds the lock of {self.where}: it is held by {whom}. Another "
                    "backup or restore may have run at the same time; check both before trusting either"
                )
            body = self._held_body(holder.kind, owner, holder.lease, holder.started_at)
            if self._put(body, seen.etag):
                return
        raise LockLostError(f"could not refresh the lock of {self.where}: others kept writing it")

    def release(self, owner: str | None = None) -> bool:
        """Frees the lock if `owner` holds it; returns whether it did."""
        owner = owner or owner_here()
        for _ in range(10):
            seen = self.read()
            if seen is None or seen.holder is None or seen.holder.owner != owner or seen.holder.problem:
                return False
            if self._put({"state": "free"}, seen.etag):
                log.info("%s released the lock of %s", owner, self.where)
                return True
        return False

    def clear(self) -> Holder | None:
        """Frees the lock whoever holds it (`archivist unlock`); returns who held it."""
        for _ in range(10):
            seen = self.read()
            if seen is None or seen.holder is None:
                return None
            if self._put({"state": "free"}, seen.etag):
                log.warning("cleared the lock of %s, held by %s", self.where, seen.holder.describe(seen.now))
                return seen.holder
        raise LockHeldError(f"could not clear the lock of {self.where}: others kept writing it; try again")

    @contextmanager
    def alive(self, owner: str | None = None, every: float = BEAT_EVERY) -> Iterator[None]:
        """Keeps `owner`'s hold fresh while the block runs; fails at once if it is not the holder,
        and after the block if it lost the lock meanwhile."""
        owner = owner or owner_here()
        self.beat(owner)
        lost: list[LockLostError] = []

        def refresh() -> bool:
            try:
                self.beat(owner)
            except LockLostError as exc:
                log.error("%s", exc)
                lost.append(exc)
                return False
            except Exception as exc:  # the work itself will meet a lost bucket and say so
                log.warning("could not refresh the lock of %s: %s", self.where, exc)
            return True

        with beating(every, refresh, "operation-lock"):
            yield
        if lost:
            raise lost[0]

    @contextmanager
    def held(self, kind: str, lease: dt.timedelta = COMMAND_LEASE, every: float = BEAT_EVERY) -> Iterator[None]:
        """Holds the lock for this process while the block runs; released however it ends."""
        owner = owner_here()
        self.acquire(kind, owner, lease)
        try:
            with self.alive(owner, every):
                yield
        finally:
            try:
                self.release(owner)
            except Exception as exc:  # the holder's silence frees it after its lease
                log.warning("could not release the lock of %s (%s); it frees itself after %s", self.where, exc, lease)
