"""What reading a bundle costs the restore, step by step, on a bundle file: no server needed.

    python -m bench.reading BUNDLE.tgz [--rounds 2]

Each step runs in a process of its own, so its CPU time and peak memory are its alone:

- `verify`: the restore's check of the whole bundle (both its front-to-back reading and, with a
  seek index, its reading of every range);
- one step per job in the bundle: that job's reading of its own members through the seek index
  (inflate, tar, CRC32 and sha256 against meta.json), the bytes thrown away, as a restore job reads
  them before its server takes them;
- `storage objects`, when the bundle has a storage archive: the storage job's reading as above, and
  the archive's objects walked and read out of it as its restore reads them before uploading each.

Prints, per step, the median round's wall time, CPU time (user and system) and peak RSS, with every
round. A bundle to read: `archivist simple-backup` writes one, or a bundle downloaded from the backup
bucket. Rounds alternate the steps, so a change in the machine's load falls on all of them; each
step starts once the machine is idle (`measure.wait_for_idle`; `--no-wait` starts at once).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from bench import measure

ROOT = Path(__file__).resolve().parents[1]
READ = 1024 * 1024
OBJECTS = "storage objects"


def verify(path: str) -> int:
    """The restore's verify of the bundle file; its size in bytes."""
    from archivist.format.bundle_index import BundleSource
    from archivist.runner import restore

    source = BundleSource.file(path)
    restore.verify(source)
    return source.size


def read_job(path: str, job: str) -> int:
    """The job's members read through the seek index and checked, as its restore reads them; the
    bytes read."""
    from archivist.format import bundle
    from archivist.format.bundle_index import BundleSource
    from archivist.format.members import members

    read = 0
    for _path, fileobj in members(BundleSource.file(path), lambda p: bundle.job_of_path(p) == job):
        while chunk := fileobj.read(READ):  # its end checks the size and sha256
            read += len(chunk)
    return read


def read_objects(path: str) -> int:
    """The storage archives' objects read out of them, as the storage restore reads them; the
    objects' bytes read."""
    from archivist.format import bundle
    from archivist.format.bundle_index import BundleSource
    from archivist.format.members import members
    from archivist.format.tar_stream import read_tgz

    read = 0
    for member_path, fileobj in members(BundleSource.file(path), lambda p: bundle.job_of_path(p) == "storage"):
        if not member_path.endswith(".tgz"):
            continue
        for _entry, body in read_tgz(fileobj):
            while body is not None and (chunk := body.read(READ)):
                read += len(chunk)
    return read


def jobs_of(path: str) -> list[str]:
    """The jobs whose members the bundle holds, from its meta.json."""
    from archivist.format import bundle
    from archivist.format.bundle_index import BundleSource
    from archivist.format.members import checksums

    return sorted({bundle.job_of_path(p) for p in checksums(BundleSource.file(path)) or {}} - {None})


def _step(path: str, step: str) -> None:
    """Runs one step in this process and prints its JSON line: bytes, CPU seconds."""
    got = verify(path) if step == "verify" else read_objects(path) if step == OBJECTS else read_job(path, step)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"bytes": got, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}))


def measured(path: str, step: str) -> dict:
    """One round of `step` in a process of its own."""
    args = [sys.executable, "-m", "bench.reading", "--step", step, path]
    m = measure.run(f"reading {step}", args, cwd=str(ROOT)).check()
    out = json.loads(m.stdout.strip().splitlines()[-1])
    return {"seconds": round(m.seconds, 2), "peak_rss_mb": m.peak_rss_mb, **out}


def table(path: str, results: dict[str, list[dict]]) -> str:
    rounds = len(next(iter(results.values())))
    lines = [
        f"Reading {Path(path).name} ({Path(path).stat().st_size:,} bytes), median round of {rounds}:",
        "",
        "| step | bytes read | wall | CPU | peak RSS | rounds (wall, CPU) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for step, rounds in results.items():
        m = measure.median_round(rounds, "seconds")
        every = ", ".join(f"{r['seconds']:.2f}/{r['cpu_seconds']:.2f}" for r in rounds)
        lines.append(
            f"| {step} | {m['bytes']:,} | {m['seconds']:.2f} s | {m['cpu_seconds']:.2f} s | "
            f"{m['peak_rss_mb']:.0f} MB | {every} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="a bundle file (.tgz)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-wait", action="store_true", help="start each step at once, idle or not (noisy)")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # one step, in the child process
    args = parser.parse_args()
    if args.step:
        _step(args.bundle, args.step)
        return
    jobs = jobs_of(args.bundle)
    steps = ["verify", *jobs, *([OBJECTS] if "storage" in jobs else [])]
    results: dict[str, list[dict]] = {step: [] for step in steps}
    started = time.monotonic()
    for _ in range(args.rounds):
        for step in steps:
            if not args.no_wait and measure.wait_for_idle(log=print).gave_up:
                print(f"{step}: started on a busy machine")
            results[step].append(measured(args.bundle, step))
    print(table(args.bundle, results))
    print(f"\n({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
