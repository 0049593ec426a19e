"""What age encryption costs a backup: the bundle built from the same staged artifacts, plain and
encrypted, in interleaved rounds (median kept), each in its own process as `bundle_and_upload`
runs (`python -m bench.run_job bundle_plain|bundle_encrypted`). Only that task changes when
encryption is on, so the whole backup's cost is the jobs' time plus each bundle's.

    python -m bench.run --scale 0.1 --only-encryption      (this comparison alone)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from pyrage import x25519

from archivist.format.encryption import EncryptingWriter

TASKS = ("bundle_plain", "bundle_encrypted")
BACKUP_JOBS = ("postgres", "elasticsearch", "storage")


def compare(measure_task: Callable[[str], dict], tasks: dict[str, dict], rounds: int) -> dict:
    """Measures both bundles `rounds` times in turn with `measure_task(name)` (which records into
    `tasks[name]`); returns the row: each one's median seconds, the difference and the ratios."""
    seen: dict[str, list[dict]] = {name: [] for name in TASKS}
    for _ in range(max(1, rounds)):
        for name in TASKS:
            measure_task(name)
            seen[name].append(tasks[name])
    median = (max(1, rounds) - 1) // 2
    kept = {name: sorted(runs, key=lambda m: m["seconds"])[median] for name, runs in seen.items()}
    for name, runs in seen.items():
        tasks[name] = {
            **kept[name],
            "peak_rss_mb": max(m["peak_rss_mb"] for m in runs),
            "rounds_seconds": [m["seconds"] for m in runs],
        }
    plain, sealed = tasks["bundle_plain"], tasks["bundle_encrypted"]
    jobs = round(sum(tasks[job]["seconds"] for job in BACKUP_JOBS if job in tasks), 3)
    return {
        "bundle_plain": {k: v for k, v in plain.items() if k != "result"},
        "bundle_encrypted": {k: v for k, v in sealed.items() if k != "result"},
        "plain_bytes": plain["result"]["size"],
        "encrypted_bytes": sealed["result"]["size"],
        "extra_seconds": round(sealed["seconds"] - plain["seconds"], 3),
        "bundle_ratio": round(sealed["seconds"] / plain["seconds"], 3) if plain["seconds"] else 0.0,
        "jobs_seconds": jobs,
        "backup_plain_seconds": round(jobs + plain["seconds"], 3),
        "backup_encrypted_seconds": round(jobs + sealed["seconds"], 3),
        "age_alone": age_alone(plain["result"]["size"]),
        "backup_ratio": round((jobs + sealed["seconds"]) / (jobs + plain["seconds"]), 3)
        if jobs + plain["seconds"]
        else 0.0,
    }


class _Dropped:
    """A sink that keeps nothing."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        """Nothing held."""


def age_alone(size: int) -> dict:
    """age on `size` bytes through the same pipe and thread as a backup, into a sink that drops
    them: the floor of what encryption adds, without the noise of the jobs and the upload."""
    block, blocks = os.urandom(1 << 20), max(1, size >> 20)
    recipient = x25519.Identity.generate().to_public()
    started, cpu = time.perf_counter(), time.process_time()
    with EncryptingWriter(_Dropped(), [recipient]) as out:
        for _ in range(blocks):
            out.write(block)
    seconds = time.perf_counter() - started
    return {
        "bytes": blocks << 20,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "MB_per_s": round(blocks / seconds, 1),
    }


def markdown(row: dict) -> list[str]:
    """The section of the results' Markdown."""
    p, e = row["bundle_plain"], row["bundle_encrypted"]
    return [
        "",
        "## Encryption (age)",
        "",
        "The bundle built from the same staged artifacts, plain and encrypted to one age recipient, in "
        "interleaved rounds (median shown); a backup with encryption differs only in this task.",
        "",
        "| measure | without encryption | with encryption | extra | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| bundle (`bundle_and_upload`) | {p['seconds']:.2f} s | {e['seconds']:.2f} s | "
        f"{row['extra_seconds']:+.2f} s | **{row['bundle_ratio']:.2f}×** |",
        f"| backup (jobs {row['jobs_seconds']:.1f} s + bundle) | {row['backup_plain_seconds']:.1f} s | "
        f"{row['backup_encrypted_seconds']:.1f} s | {row['extra_seconds']:+.2f} s | **{row['backup_ratio']:.3f}×** |",
        f"| bundle size | {row['plain_bytes']:,} B | {row['encrypted_bytes']:,} B | "
        f"{row['encrypted_bytes'] - row['plain_bytes']:+,} B | |",
        f"| peak RSS of the bundle task | {p['peak_rss_mb']:.0f} MB | {e['peak_rss_mb']:.0f} MB | | |",
        *(
            [
                f"| age alone on the bundle's bytes (same pipe, no upload) | | {a['seconds']:.2f} s "
                f"({a['MB_per_s']:,.0f} MB/s, {a['cpu_seconds']:.2f} s CPU) | | |"
            ]
            if (a := row.get("age_alone"))
            else []
        ),
        "",
        f"Rounds: without {', '.join(f'{s:.2f}' for s in p['rounds_seconds'])} s; "
        f"with {', '.join(f'{s:.2f}' for s in e['rounds_seconds'])} s.",
    ]
