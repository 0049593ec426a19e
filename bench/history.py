"""The speedups of the newest full bench runs at one scale, side by side, as a Markdown table.

A ratio moves between runs of the same code with the host's share of the cores and its disk
(bench/README.md#run-to-run-noise), so one run says little about a target near its bound. The
table lists each run's ratios, newest first, then the lowest, median and highest of each, and in
how many of the runs each target of bench.report was met.

    python -m bench.history [--scale 1] [--last 10] [--links bench/results/] [bench/results]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench import scaling
from bench.report import SPEEDUP_KEYS, SPEEDUP_LABELS, TARGETS, _cell

RESULTS = Path(__file__).parent / "results"


def runs_with_speedups(results_dir: Path, scale: float, last: int) -> list[tuple[Path, dict]]:
    """The newest `last` full runs at `scale` that measured every baseline, newest first."""
    found = [
        (path, run)
        for path, run in scaling.full_runs(results_dir, scale)
        if all(key in (run.get("speedup") or {}) for key in SPEEDUP_KEYS)
    ]
    return found[:last]


def markdown(runs: list[tuple[Path, dict]], links: str = "") -> list[str]:
    """The table: one row a run (linked as `links` + its Markdown's name), then the spread and the
    targets met. Empty without runs."""
    if not runs:
        return []
    header = "| run | code | disk before | " + " | ".join(_cell(SPEEDUP_LABELS[key]) for key in SPEEDUP_KEYS) + " |"
    lines = [header, "|---|---|---:|" + "---:|" * len(SPEEDUP_KEYS)]
    for path, run in runs:
        name = path.name.removesuffix(".json")
        disk = (run.get("machine") or {}).get("disk_write_mb_s") or []
        written = f"{disk[0]:,.0f} MB/s" if disk else "–"
        code = (run.get("versions") or {}).get("commit", "–")  # runs before it was recorded have none
        ratios = " | ".join(f"{run['speedup'][key]:.2f}×" for key in SPEEDUP_KEYS)
        when = run["started_at"][:16].replace("T", " ")
        lines.append(f"| [{when}]({links}{name}.md) | {code} | {written} | {ratios} |")
    columns = {key: [run["speedup"][key] for _, run in runs] for key in SPEEDUP_KEYS}
    for label, pick in (("lowest", min), ("median", statistics.median), ("highest", max)):
        lines.append(f"| {label} | | | " + " | ".join(f"{pick(columns[key]):.2f}×" for key in SPEEDUP_KEYS) + " |")
    met = []
    for key in SPEEDUP_KEYS:
        least = TARGETS.get(key)
        if least is None:
            met.append("–")
        else:
            times = sum(ratio >= least for ratio in columns[key])
            met.append(f"{times} of {len(runs)} (≥ {least:.3g}×)")
    lines.append("| target met | | | " + " | ".join(met) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", nargs="?", default=str(RESULTS))
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--last", type=int, default=10, help="how many of the newest runs")
    parser.add_argument("--links", default="", help="what to put before each run's file name in its link")
    args = parser.parse_args(argv)
    runs = runs_with_speedups(Path(args.results_dir), args.scale, args.last)
    if not runs:
        raise SystemExit(f"no full run at scale {args.scale:g} with every baseline in {args.results_dir}")
    print("\n".join(markdown(runs, args.links)))


if __name__ == "__main__":
    main()
