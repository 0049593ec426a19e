"""How archivist's cost grows with the data: time per GB and peak memory of every task at scales
0.1, 1 and 5, as a Markdown table and a chart (bench/results/scaling.png).

Each scale's figures come from the newest full run at that scale in bench/results (the run being
written stands for its own scale). Regenerate both from the saved results alone:

    python -m bench.scaling [bench/results]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCALES = (0.1, 1.0, 5.0)
CHART = "scaling.png"
GB = 1024**3
TIME_GROWTH = 0.15  # the bound on time per GB from scale 1 to 5
RSS_GROWTH = 0.10  # and on peak memory
# Which data a task moves; the others (check, bundle, rotate, verify, end to end) handle all of it.
DATA_OF = {
    "postgres": "postgres",
    "restore_postgres": "postgres",
    "elasticsearch": "elasticsearch",
    "restore_elasticsearch": "elasticsearch",
    "storage": "storage",
    "restore_storage": "storage",
}
END_TO_END = ("backup", "restore")


def full_runs(results_dir: Path, scale: float) -> list[tuple[Path, dict]]:
    """Every full (not quick) run at `scale` in `results_dir` with its file, newest first. Only
    `bench.run`'s own files count: other benches save theirs beside them (bench-encryption-…,
    pg-restore-…)."""
    found = []
    for path in results_dir.glob("bench-scale-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("scale") == scale and not data.get("quick"):
            found.append((path, data))
    return sorted(found, key=lambda run: run[1].get("started_at", ""), reverse=True)


def newest(results_dir: Path, scale: float) -> dict | None:
    """The newest full run at `scale` in `results_dir`."""
    runs = full_runs(results_dir, scale)
    return runs[0][1] if runs else None


def gathered(results_dir: Path, current: dict | None = None) -> dict[float, dict]:
    """Scale -> the run that stands for it; `current` replaces the saved run of its own scale."""
    runs = {s: run for s in SCALES if (run := newest(results_dir, s)) is not None}
    if current is not None and not current.get("quick") and current["scale"] in SCALES:
        runs[current["scale"]] = current
    return dict(sorted(runs.items()))


def _bytes(run: dict, part: str | None) -> int:
    d = run["data"]
    sizes = {
        "postgres": d["postgres"]["sql_bytes"],
        "elasticsearch": d["elasticsearch"]["source_bytes"],
        "storage": d["storage"]["bytes"],
    }
    return sizes[part] if part else sum(sizes.values())


def figures(runs: dict[float, dict]) -> dict[str, dict[float, tuple[float, float | None]]]:
    """Task (or `backup end to end`, `restore end to end`) -> scale -> (seconds per GB, peak RSS MB)."""
    rows: dict[str, dict[float, tuple[float, float | None]]] = {}
    for scale, run in runs.items():
        for task, info in run["archivist_tasks"].items():
            per_gb = info["seconds"] / (_bytes(run, DATA_OF.get(task)) / GB)
            rows.setdefault(task, {})[scale] = (per_gb, info["peak_rss_mb"])
        for kind in END_TO_END:
            e = run["end_to_end"][kind]["archivist"]
            rows.setdefault(f"{kind} end to end", {})[scale] = (
                e["seconds"] / (_bytes(run, None) / GB),
                e.get("scheduler_tree_peak_rss_mb", e.get("airflow_tree_peak_rss_mb")),
            )
    return rows


def _growth(values: dict[float, float | None], bound: float) -> str:
    one, five = values.get(1.0), values.get(5.0)
    if not one or five is None:
        return "–"
    change = five / one - 1
    return f"{change:+.0%}{'' if change <= bound else ' (over)'}"


def markdown(runs: dict[float, dict]) -> list[str]:
    """The table's lines: seconds per GB and peak RSS of every task at each scale."""
    head = " | ".join(f"s/GB at {s:g}" for s in SCALES) + " | " + " | ".join(f"peak RSS at {s:g}" for s in SCALES)
    lines = [
        "## Growth with the data",
        "",
        "Seconds per GB of the data each task handles (its own server's for a job, all three for the "
        "others) and peak RSS, from the newest full run at each scale in bench/results: "
        + ", ".join(f"scale {s:g} {r['started_at']}" for s, r in runs.items())
        + f". The last columns compare scale 5 with scale 1 (bounds: {TIME_GROWTH:.0%} time per GB, "
        f"{RSS_GROWTH:.0%} peak RSS). Chart: [{CHART}]({CHART}).",
        "",
        f"| task | {head} | s/GB 1→5 | RSS 1→5 |",
        "|---|" + "---:|" * (2 * len(SCALES) + 2),
    ]
    for task, by_scale in figures(runs).items():
        times = {s: v[0] for s, v in by_scale.items()}
        peaks = {s: v[1] for s, v in by_scale.items()}
        cells = [f"{times[s]:.1f}" if s in times else "–" for s in SCALES]
        cells += [f"{peaks[s]:.0f} MB" if peaks.get(s) is not None else "–" for s in SCALES]
        cells += [_growth(times, TIME_GROWTH), _growth(peaks, RSS_GROWTH)]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def chart(runs: dict[float, dict], path: Path) -> Path:
    """Two panels, seconds per GB and peak RSS of each task against the scale (log axis)."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt

    rows = figures(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for task, by_scale in rows.items():
        scales = sorted(by_scale)
        style = "--" if task.endswith("end to end") else "-"
        left.plot(scales, [by_scale[s][0] for s in scales], style, marker="o", label=task)
        peaks = [(s, by_scale[s][1]) for s in scales if by_scale[s][1] is not None]
        if peaks:
            right.plot([s for s, _ in peaks], [p for _, p in peaks], style, marker="o", label=task)
    for ax, title, unit in ((left, "time per GB", "seconds per GB"), (right, "peak resident memory", "MB")):
        ax.set_xscale("log")
        ax.set_xticks(list(SCALES), [f"{s:g}" for s in SCALES])
        ax.set_xlabel("scale (about GB per server)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("archivist bench: growth with the data (" + ", ".join(f"{s:g}" for s in runs) + ")")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    results_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results"
    runs = gathered(results_dir)
    print("\n".join(markdown(runs)))
    print(f"chart: {chart(runs, results_dir / CHART)}")


if __name__ == "__main__":
    main()
