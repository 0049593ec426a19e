"""Per-core deflate speed and ratio of each engine and level on the bench's generated data.

    python -m bench.deflate_levels --scale 0.1 [--rounds 3] [--mb 48]

Each part of the data (PostgreSQL's COPY text, Elasticsearch's documents, the storage objects) is
cut into the bundle writer's 1 MiB blocks and deflated on one thread exactly as the writer does
(`deflate._deflate_block`: primed with the block before, incompressible blocks stored). The
engines run in rounds, in a rotated order each round, so a machine shared with other work slows
each about equally; the CPU time of this thread is what is compared, the wall time is shown too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from archivist.format import deflate
from bench import generate

MB = 1024 * 1024
CANDIDATES: list[tuple[deflate.Engine, int]] = [("zlib", 1), ("zlib", 4), ("isal", 1), ("isal", 2), ("isal", 3)]


def sample(part_dir: Path, limit: int) -> list[bytes]:
    """Up to `limit` bytes of a part's files as 1 MiB blocks, a slice of every file in turn."""
    files = sorted(p for p in part_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no generated data in {part_dir}: run python -m bench.generate --scale ... first")
    share = max(deflate.BLOCK, limit // len(files))
    data = bytearray()
    for path in files:
        with path.open("rb") as f:
            data += f.read(min(share, limit - len(data)))
        if len(data) >= limit:
            break
    return [bytes(data[i : i + deflate.BLOCK]) for i in range(0, len(data), deflate.BLOCK)]


def deflate_all(blocks: list[bytes], engine: deflate.Engine, level: int) -> tuple[int, float, float]:
    """(compressed bytes, CPU seconds, wall seconds) of deflating `blocks` one after another."""
    cpu, wall = time.thread_time(), time.perf_counter()
    out, window = 0, b""
    for i, block in enumerate(blocks):
        out += len(deflate._deflate_block(block, level, window, i == len(blocks) - 1, engine))
        window = block[-32 * 1024 :]
    return out, time.thread_time() - cpu, time.perf_counter() - wall


def measure(scale: float, rounds: int, limit: int) -> dict[str, dict[str, dict]]:
    found: dict[str, dict[str, dict]] = {}
    for part in generate.PARTS:
        blocks = sample(generate.data_dir(scale) / part, limit)
        size = sum(map(len, blocks))
        runs: dict[str, list[tuple[int, float, float]]] = {f"{e} {lv}": [] for e, lv in CANDIDATES}
        for r in range(rounds):
            order = CANDIDATES[r % len(CANDIDATES) :] + CANDIDATES[: r % len(CANDIDATES)]
            for engine, level in order:
                runs[f"{engine} {level}"].append(deflate_all(blocks, engine, level))
        found[part] = {
            name: {
                "input_mb": round(size / MB, 1),
                "ratio": round(got[0][0] / size, 4),
                "cpu_mb_per_s": round(size / MB / statistics.median(c for _, c, _ in got), 1),
                "wall_mb_per_s": round(size / MB / statistics.median(w for _, _, w in got), 1),
            }
            for name, got in runs.items()
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=48, help="MB of each part deflated per round")
    args = parser.parse_args()
    load = os.getloadavg()
    found = measure(args.scale, args.rounds, args.mb * MB)
    print(f"load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds")
    print("| data | engine level | ratio | MB/s per core (CPU) | MB/s (wall) |")
    print("|---|---|---:|---:|---:|")
    for part, rows in found.items():
        for name, row in rows.items():
            print(
                f"| {part} ({row['input_mb']:g} MB) | {name} | {row['ratio']:.3f} | {row['cpu_mb_per_s']:.0f} | "
                f"{row['wall_mb_per_s']:.0f} |"
            )


if __name__ == "__main__":
    main()
