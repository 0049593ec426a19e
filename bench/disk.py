"""The disk a bench run needs at a scale, against what the disk holding .local/ has free.

    python -m bench.disk --scale 5            (the estimate, place by place: a dry run)
    python -m bench.disk --scale 5 --check    (exits 1 when it would not fit even without the
                                               baselines; bench/setup.sh runs it)

Everything the bench keeps grows with the scale, so the estimate is the peak each place reached in a
measured run, per unit of scale (docs/PERFORMANCE.md#bench-disk-by-scale). Data generated already
for the scale is counted as present, not needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import generate

GB = 1024**3
ROOT = Path(__file__).resolve().parents[1]
BASELINES_WORK = "the baselines' work folder (.local/bench/work)"
# GB per unit of scale in each place at the moment the total peaked, in a run at scale 0.1 sampled
# every 5 s (`du`), less what PostgreSQL held before the run; their sum is the run's peak.
PER_SCALE_GB = {
    "generated data (.local/bench/data)": 3.0,
    "PostgreSQL (the bench database, its WAL)": 2.5,
    "Elasticsearch (the bench indices)": 1.4,
    "MinIO: the bench bucket": 1.0,
    "MinIO: the bench backup bucket (staging, bundles)": 2.7,
    BASELINES_WORK: 3.2,
}
MARGIN = 1.1  # what sampling every few seconds misses, and the servers' logs
PROBE_MIB = 256  # written and synced by write_rate: seconds at any disk speed seen here


def write_rate(folder: Path, mb: int = PROBE_MIB) -> float:
    """MB/s of writing `mb` MiB to a new file in `folder` and syncing it to the disk, then removing
    it. The servers' data and the baselines' folders share this disk, and its speed moves between
    runs enough to move the ratios (docs/PERFORMANCE.md#restore-end-to-end-on-two-cores): a run
    records it before and after, so results are read knowing it."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1024 * 1024)  # not zeros: nothing on the way may skip or compress them
    path = folder / f"disk-probe-{os.getpid()}"
    started = time.monotonic()
    try:
        with open(path, "wb", buffering=0) as f:
            for _ in range(mb):
                f.write(block)
            os.fsync(f.fileno())
        seconds = time.monotonic() - started
    finally:
        path.unlink(missing_ok=True)
    return round(mb * 1024 * 1024 / 1e6 / seconds, 1)


def generated_gb(scale: float) -> float:
    """GB of this scale's data generated already (complete parts only)."""
    base = generate.data_dir(scale)
    return sum(
        sum(f.stat().st_size for f in (base / part).rglob("*") if f.is_file()) / GB
        for part in generate.PARTS
        if generate.marker(base / part) is not None
    )


def estimate(scale: float, baselines: bool = True) -> dict[str, float]:
    """Place -> GB the run at `scale` needs there at its peak; without the baselines (bench.run
    --no-baselines) their work folder is not needed."""
    return {
        place: round(gb * scale * MARGIN, 1)
        for place, gb in PER_SCALE_GB.items()
        if baselines or place != BASELINES_WORK
    }


def free_gb() -> float:
    return shutil.disk_usage(ROOT / ".local" if (ROOT / ".local").exists() else ROOT).free / GB


@dataclass(frozen=True)
class Room:
    """The disk for a run at one scale: GB free, and GB of the scale's data generated already
    (read once: at scale 5 that walks 50,000 files)."""

    scale: float
    free: float
    generated: float

    @classmethod
    def now(cls, scale: float) -> Room:
        return cls(scale, free_gb(), generated_gb(scale))

    def needed(self, baselines: bool = True) -> float:
        """GB the run needs at its peak, less what is generated already."""
        return max(0.0, sum(estimate(self.scale, baselines).values()) - self.generated)

    def shortfall(self, baselines: bool = True) -> float:
        """GB more than the disk has free that the run needs (0 when it fits)."""
        return max(0.0, self.needed(baselines) - self.free)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the run would not fit, even without the baselines"
    )
    args = parser.parse_args(argv)
    places = estimate(args.scale)
    for place, gb in places.items():
        print(f"  {place}: {gb:.1f} GB")
    room = Room.now(args.scale)
    print(
        f"bench at scale {args.scale:g} needs about {sum(places.values()):.1f} GB at its peak "
        f"({room.generated:.1f} GB of it generated already); {room.free:.1f} GB free"
    )
    if not room.shortfall():
        return 0
    if not room.shortfall(baselines=False):
        print(
            f"without the baselines it needs {sum(estimate(args.scale, False).values()):.1f} GB: bench.run measures "
            "archivist's tasks and DAG runs alone (the growth table's figures), without the ratios"
        )
        return 0
    print(
        f"not enough disk for scale {args.scale:g}, even without the baselines: "
        f"{room.shortfall(baselines=False):.1f} GB more needed, {room.free:.1f} GB free; free some space "
        "(old .local/bench/data/scale-* folders are safe to delete) or choose a smaller SCALE",
        file=sys.stderr,
    )
    return 1 if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
