"""A drill's verdict, kept beside the bundle as `drills/<key>.json` in the backup bucket.

Anyone who can write the backup bucket can write this object, so it is read as untrusted input:
size-capped, checked field by field, its text cleaned of control characters before it is shown.
It holds no secret: the key, when, the result, what differed (names and numbers), what was
checked and what was not, how long it took, and which run made it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from archivist.format.bundle import BackupKey
from archivist.transport.backup_bucket import BackupStore

log = logging.getLogger(__name__)

FOLDER = "drills/"
FORMAT = 1
MAX_BYTES = 64 * 1024
MAX_DIFFERENCES = 20
MAX_LINE = 300
RESULTS = ("matched", "differed", "failed")
CHECKED = ("tables", "rows", "indices", "documents", "objects", "bytes")


def _clean(text: Any, limit: int = MAX_LINE) -> str:
    line = "".join(c if c.isprintable() else "?" for c in str(text))
    return line[:limit] + ("…" if len(line) > limit else "")


@dataclass(frozen=True)
class Verdict:
    """What one drill of bundle `key` found: `matched`, `differed` (the restore ran, something
    did not match) or `failed` (the restore itself failed: `differences` says why)."""

    key: str
    result: str
    drilled_at: dt.datetime
    differences: tuple[str, ...] = ()
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    run: str = ""
    notes: tuple[str, ...] = ()  # what the drill did not check, and why (not a difference)

    @property
    def matched(self) -> bool:
        return self.result == "matched"

    def summary(self) -> str:
        """One line for `archivist list` and the Backups page."""
        day = self.drilled_at.date().isoformat()
        if self.matched:
            return f"restored and matched on {day}" + (f" ({self.notes[0]})" if self.notes else "")
        what = "differed" if self.result == "differed" else "failed"
        first = self.differences[0] if self.differences else "no detail recorded"
        more = f" (and {len(self.differences) - 1} more)" if len(self.differences) > 1 else ""
        return f"{what} on {day}: {first}{more}"

    def as_dict(self) -> dict[str, Any]:
        kept = [_clean(d) for d in self.differences[:MAX_DIFFERENCES]]
        if len(self.differences) > MAX_DIFFERENCES:
            kept.append(f"… and {len(self.differences) - MAX_DIFFERENCES} more differences (see the run's log)")
        return {
            "format": FORMAT,
            "key": self.key,
            "result": self.result,
            "drilled_at": self.drilled_at.isoformat(),
            "summary": Verdict(self.key, self.result, self.drilled_at, tuple(kept), notes=self.notes).summary(),
            "differences": kept,
            "checked": {k: int(v) for k, v in self.checked.items() if k in CHECKED},
            "seconds": round(float(self.seconds), 1),
            "run": _clean(self.run),
            "notes": [_clean(n) for n in self.notes[:MAX_DIFFERENCES]],
        }


def parse(body: bytes, key: str) -> Verdict:
    """A record read back; ValueError says what is wrong with it."""
    if len(body) > MAX_BYTES:
        raise ValueError(f"over {MAX_BYTES} bytes")
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a drill record of format {FORMAT}")
    if data.get("key") != key:
        raise ValueError("its key is not the bundle's it is named after")
    if data.get("result") not in RESULTS:
        raise ValueError(f"its result is not one of {', '.join(RESULTS)}")
    drilled_at = dt.datetime.fromisoformat(str(data.get("drilled_at")))
    if drilled_at.tzinfo is None:
        raise ValueError("its date has no time zone")
    differences = data.get("differences", [])
    checked = data.get("checked", {})
    seconds = data.get("seconds", 0)
    notes = data.get("notes", [])
    if not isinstance(differences, list) or not all(isinstance(d, str) for d in differences):
        raise ValueError("its differences are not a list of text")
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ValueError("its notes are not a list of text")
    if not isinstance(checked, dict) or not all(
        k in CHECKED and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in checked.items()
    ):
        raise ValueError("its checked counts are not whole numbers by name")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError("its duration is not a number of seconds")
    return Verdict(
        key,
        data["result"],
        drilled_at.astimezone(dt.UTC),
        tuple(_clean(d) for d in differences[: MAX_DIFFERENCES + 1]),
        dict(checked),
        float(seconds),
        _clean(data.get("run", "")),
        tuple(_clean(n) for n in notes[:MAX_DIFFERENCES]),
    )


def object_key(store: BackupStore, key: str) -> str:
    return store.object_key(f"{FOLDER}{key}.json")


def write(store: BackupStore, verdict: Verdict) -> str:
    """Writes the verdict beside its bundle, replacing an earlier drill's; returns the object key."""
    where = object_key(store, verdict.key)
    body = json.dumps(verdict.as_dict(), indent=1, ensure_ascii=False).encode()
    store.s3.put_object(Bucket=store.bucket, Key=where, Body=body, ContentType="application/json")
    log.info("drill verdict of %s written to %s in %s: %s", verdict.key, where, store.where, verdict.summary())
    return where


def read(store: BackupStore, key: str) -> Verdict | str | None:
    """The last drill's verdict of bundle `key`: None when it was never drilled, a line saying
    what is wrong when the record cannot be trusted."""
    try:
        got = store.s3.get_object(Bucket=store.bucket, Key=object_key(store, key), Range=f"bytes=0-{MAX_BYTES}")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return None
        return f"drill record unreadable: the bucket answered {_clean(code, 40)}"
    body = got["Body"].read(MAX_BYTES + 1)
    try:
        return parse(body, key)
    except (ValueError, TypeError) as exc:
        return f"drill record unreadable: {_clean(exc, 120)}"


def read_all(store: BackupStore) -> dict[str, Verdict | str]:
    """Every drill record under the store's prefix, by bundle key (one listing, a GET each)."""
    found: dict[str, Verdict | str] = {}
    for name, _ in _records(store):
        verdict = read(store, name)
        if verdict is not None:
            found[name] = verdict
    return found


def prune(store: BackupStore, kept: set[str]) -> list[str]:
    """Deletes the records of bundles no longer in the bucket (rotated away); returns their keys."""
    gone = []
    for name, object_key in _records(store):
        if name not in kept:
            store.s3.delete_object(Bucket=store.bucket, Key=object_key)
            gone.append(name)
    return gone


def _records(store: BackupStore) -> Iterator[tuple[str, str]]:
    """(bundle key, object key) of each drill record under the store's prefix; other objects there
    are not records and are left alone."""
    folder = store.object_key(FOLDER)
    for page in store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=folder):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(folder) :].removesuffix(".json")
            if "/" not in name and BackupKey.is_bundle_object(f"{name}.tgz"):
                yield name, obj["Key"]


def listed(verdict: Verdict | str | None) -> dict[str, Any] | None:
    """A bundle's last drill as `archivist list --json` and the Backups page give it: `result`
    (matched, differed, failed; None for a record that cannot be trusted), `drilled_at` and
    `summary`; None when the bundle was never drilled."""
    if verdict is None:
        return None
    if isinstance(verdict, str):
        return {"result": None, "drilled_at": None, "summary": verdict}
    return {"result": verdict.result, "drilled_at": verdict.drilled_at.isoformat(), "summary": verdict.summary()}
