"""The bench's results: one JSON file and one Markdown table per run, under bench/results/."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from bench import cpu_share, disk, encryption, measure, scaling
from bench.scaling import newest as latest

MB = 1024 * 1024
SPEEDUP_KEYS = (
    "es_export",
    "es_restore",
    "storage_backup",
    "storage_restore",
    "pg_backup",
    "pg_restore",
    "backup_end_to_end",
    "restore_end_to_end",
)
SPEEDUP_LABELS = {
    "es_export": "ES export (elasticdump)",
    "es_restore": "ES restore (elasticdump)",
    "storage_backup": "storage backup (rclone + tar czf)",
    "storage_restore": "storage restore (tar xzf + rclone)",
    "pg_backup": "PostgreSQL backup (pg_dump | gzip)",
    "pg_restore": "PostgreSQL restore (gunzip | psql)",
    "backup_end_to_end": "backup end to end",
    "restore_end_to_end": "restore end to end",
}
TARGETS = {  # speedup key -> the least speedup the issue asks for at scale 1
    "es_export": 3.0,
    "es_restore": 2.0,
    "storage_backup": 1.0,
    "storage_restore": 1.0,
    "pg_restore": 2.0,  # or within 10% of the server's own bound, which bench.pg_bound measures
    "backup_end_to_end": 1 / 0.6,
    "restore_end_to_end": 1 / 0.6,
}
RSS_LIMIT_MB = 256
RSS_GROWTH = 0.10
TASK_ORDER = (
    "check",
    "postgres",
    "elasticsearch",
    "storage",
    "bundle_and_upload",
    "rotate",
    "verify",
    "restore_postgres",
    "restore_elasticsearch",
    "restore_storage",
)


def _sum(steps: list[dict], only: tuple[str, ...] | None = None) -> dict:
    chosen = [s for s in steps if only is None or s["step"] in only]
    return {
        "seconds": round(sum(s["seconds"] for s in chosen), 3),
        "peak_rss_mb": max((s["peak_rss_mb"] for s in chosen), default=0.0),
        "steps": chosen,
    }


def _ratio(baseline: float, archivist: float) -> float:
    return round(baseline / archivist, 2) if archivist else 0.0


def build(
    scale, started, machine, versions, data, tasks, baseline, e2e, checks, extra, quick, baseline_rounds=None
) -> dict:
    pg_rows = data["postgres"]["rows"]
    es_docs = sum(data["elasticsearch"]["docs"].values())
    es_source = sum(data["elasticsearch"]["source_bytes"].values())
    s3_objects, s3_bytes = data["storage"]["objects"], data["storage"]["bytes"]
    sql_bytes = next(a["size"] for a in tasks["postgres"]["result"]["artifacts"] if a["path"].endswith(".sql"))
    es_artifacts = sum(a["size"] for a in tasks["elasticsearch"]["result"]["artifacts"])
    storage_tgz = next(a["size"] for a in tasks["storage"]["result"]["artifacts"] if a["path"].endswith(".tgz"))
    bundle_bytes = tasks["bundle_and_upload"]["result"]["size"]
    sizes = extra["baseline_sizes"]
    total_mb = (sql_bytes + es_source + s3_bytes) / MB

    def job(name, task, base, unit, amount, arch_artifact=None, base_artifact=None, note=""):
        a, b = tasks[task], base
        rate = lambda s: round(amount / s, 1) if s else 0.0
        entry = {
            "archivist": {
                "task": task,
                "seconds": a["seconds"],
                f"{unit}_per_s": rate(a["seconds"]),
                "peak_rss_mb": a["peak_rss_mb"],
                "artifact_bytes": arch_artifact,
            },
            "baseline": {
                "seconds": b["seconds"],
                f"{unit}_per_s": rate(b["seconds"]),
                "peak_rss_mb": b["peak_rss_mb"],
                "artifact_bytes": base_artifact,
                "steps": b["steps"],
            },
            "speedup": _ratio(b["seconds"], a["seconds"]),
            "unit": unit,
            "note": note,
        }
        if "rounds_seconds" in a:  # measured in rounds: the median round of each is the one shown
            entry["archivist"]["rounds_seconds"] = a["rounds_seconds"]
            entry["baseline"]["rounds_seconds"] = (baseline_rounds or {})[name]
        return entry

    jobs = (
        {}
        if not baseline
        else {  # a run without baselines (bench/run.py --no-baselines) has no ratios
            "pg_backup": job(
                "pg_backup",
                "postgres",
                _sum(baseline["pg_backup"]),
                "MB",
                sql_bytes / MB,
                sql_bytes,
                sizes["pg_dump_gz"],
                "archivist stages plain SQL; the bundle compresses it",
            ),
            "pg_restore": job("pg_restore", "restore_postgres", _sum(baseline["pg_restore"]), "MB", sql_bytes / MB),
            "es_export": job(
                "es_export",
                "elasticsearch",
                _sum(baseline["es_export"]),
                "docs",
                es_docs,
                es_artifacts,
                sizes["elasticdump_files"],
            ),
            "es_restore": job("es_restore", "restore_elasticsearch", _sum(baseline["es_restore"]), "docs", es_docs),
            "storage_backup": job(
                "storage_backup",
                "storage",
                _sum(baseline["storage_backup"]),
                "MB",
                s3_bytes / MB,
                storage_tgz,
                sizes["storage_tgz"],
            ),
            "storage_restore": job(
                "storage_restore", "restore_storage", _sum(baseline["storage_restore"]), "MB", s3_bytes / MB
            ),
        }
    )

    if "archivist_backup" in e2e:
        arch_backup = {"source": "archivist_backup run on a scheduler", **e2e["archivist_backup"]}
    else:  # quick mode: the tasks one after another, as `dags test` runs them
        arch_backup = {
            "source": "per-task processes one after another (no DAG run)",
            "bundle_bytes": bundle_bytes,
            "seconds": round(sum(tasks[t]["seconds"] for t in TASK_ORDER[:6]), 3),
        }
    if "archivist_restore" in e2e:
        arch_restore = {"source": "archivist_restore run on a scheduler", **e2e["archivist_restore"]}
    else:
        arch_restore = {
            "source": "per-task processes one after another (no DAG run)",
            "seconds": round(sum(tasks[t]["seconds"] for t in TASK_ORDER[6:]), 3),
        }
    end_to_end = {
        **({"dag_overhead": e2e["dag_overhead"]} if "dag_overhead" in e2e else {}),
        "backup": {"archivist": {**arch_backup, "MB_per_s": round(total_mb / arch_backup["seconds"], 1)}},
        "restore": {"archivist": {**arch_restore, "MB_per_s": round(total_mb / arch_restore["seconds"], 1)}},
    }
    speedup = {}
    if baseline:
        _end_to_end_baselines(end_to_end, baseline, total_mb, sizes["backup_tgz"])
        speedup = {k: jobs[k]["speedup"] for k in SPEEDUP_KEYS if k in jobs}
        speedup["backup_end_to_end"] = end_to_end["backup"]["speedup"]
        speedup["restore_end_to_end"] = end_to_end["restore"]["speedup"]
        speedup = {k: speedup[k] for k in SPEEDUP_KEYS}
    peak = {t: tasks[t]["peak_rss_mb"] for t in TASK_ORDER if t in tasks}
    return {
        "scale": scale,
        "quick": quick,
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "data": {
            "postgres": {"tables": len(pg_rows), "rows": pg_rows, "sql_bytes": sql_bytes},
            "elasticsearch": {"indices": extra["indices"], "documents": es_docs, "source_bytes": es_source},
            "storage": {"objects": s3_objects, "bytes": s3_bytes},
            "loaded_seconds": extra["loaded_seconds"],
        },
        "speedup": speedup,
        "peak_rss_mb": peak,
        "jobs": jobs,
        "end_to_end": end_to_end,
        "bundle_bytes": bundle_bytes,
        "archivist_tasks": {t: {k: v for k, v in tasks[t].items() if k != "result"} for t in TASK_ORDER if t in tasks},
        "encryption": extra.get("encryption"),
        **({"without_baselines": extra["without_baselines"]} if extra.get("without_baselines") else {}),
        "checks": checks,
        "busy_starts": extra.get("busy_starts", []),
    }


def _end_to_end_baselines(end_to_end: dict, baseline: dict, total_mb: float, backup_tgz: int) -> None:
    """Adds the baselines one after another (each step measured once) beside each DAG run."""
    base_backup = _sum(
        baseline["pg_backup"]
        + baseline["es_export"]
        + [s for s in baseline["storage_backup"] if s["step"].startswith("rclone")]
        + baseline["backup_e2e_extra"]
    )
    base_restore = _sum(
        baseline["restore_e2e_extra"]
        + baseline["pg_restore"]
        + baseline["es_restore"]
        + [s for s in baseline["storage_restore"] if s["step"].startswith("rclone")]
    )
    backup, restore = end_to_end["backup"], end_to_end["restore"]
    arch_backup, arch_restore = backup["archivist"]["seconds"], restore["archivist"]["seconds"]
    backup["baseline"] = {
        **base_backup,
        "MB_per_s": round(total_mb / base_backup["seconds"], 1),
        "artifact_bytes": backup_tgz,
    }
    backup["speedup"] = _ratio(base_backup["seconds"], arch_backup)
    backup["wall_time_ratio"] = round(arch_backup / base_backup["seconds"], 3)
    restore["baseline"] = {**base_restore, "MB_per_s": round(total_mb / base_restore["seconds"], 1)}
    restore["speedup"] = _ratio(base_restore["seconds"], arch_restore)


def evaluate(results: dict, reference: dict | None) -> list[tuple[str, str, str, bool | None]]:
    """The issue's targets: (what, target, found, met); met is None where it does not apply."""
    rows = []
    s = results["speedup"]
    for key, least in TARGETS.items() if s else ():  # a run without baselines has no ratios
        if key.endswith("_end_to_end"):
            run = key.removesuffix("_end_to_end")
            e2e = results["end_to_end"][run]
            ratio = e2e["archivist"]["seconds"] / e2e["baseline"]["seconds"]
            rows.append((f"{run} end to end wall time ÷ baselines'", "≤ 0.6", f"{ratio:.2f}", ratio <= 0.6))
        else:
            rows.append((f"{key} speedup", f"≥ {least:g}×", f"{s[key]:.2f}×", s[key] >= least))
    if "dag_overhead" in results["end_to_end"]:
        share = results["end_to_end"]["dag_overhead"]
        rows.append(
            (
                "Airflow's share of a backup DAG run (median)",
                f"≤ {share['limit_seconds']:g} s",
                f"{share['airflow_seconds']:.1f} s",
                share["airflow_seconds"] <= share["limit_seconds"],
            )
        )
    worst = max(results["peak_rss_mb"].values())
    rows.append(
        ("peak RSS of every archivist task", f"≤ {RSS_LIMIT_MB} MB", f"{worst:.0f} MB (largest)", worst <= RSS_LIMIT_MB)
    )
    if reference is not None:
        growth = {
            t: (mb / reference["peak_rss_mb"][t] - 1)
            for t, mb in results["peak_rss_mb"].items()
            if reference["peak_rss_mb"].get(t)
        }
        task, most = max(growth.items(), key=lambda kv: kv[1])
        rows.append(
            (
                f"peak RSS growth from scale {reference['scale']:g}",
                f"≤ {RSS_GROWTH:.0%}",
                f"{most:+.1%} (largest, {task})",
                most <= RSS_GROWTH,
            )
        )
    return rows


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _mb(n: int | float | None) -> str:
    return "–" if n is None else f"{n / MB:,.1f} MB"


def _rate(entry: dict, unit: str) -> str:
    value = entry.get(f"{unit}_per_s", 0)
    return f"{value:,.0f} docs/s" if unit == "docs" else f"{value:,.1f} MB/s"


def _timeline(run: str, e2e: dict) -> list[str]:
    """When each task of a scheduled DAG run started, and how long it ran, from the trigger on."""
    if not e2e.get("tasks"):
        return []
    seconds = lambda v: "–" if v is None else f"{v:.1f} s"
    lines = ["", f"| {run} run: task | started after the trigger | ran |", "|---|---:|---:|"]
    lines += [
        f"| {t['task']} | {seconds(t['started'])} | {t['state'] if t['ran'] is None else seconds(t['ran'])} |"
        for t in e2e["tasks"]
    ]
    if "cpu" in e2e:  # older results have none
        lines += ["", f"While the {run} run went, {cpu_share.describe(e2e['cpu'])}."]
    return lines


def _warm_up(share: dict) -> str:
    """The warm-up runs left out of the median (older results have none)."""
    warm = share.get("warm_up_airflow_seconds")
    if not warm:
        return ""
    return (
        f", after {len(warm)} warm-up run{'s' if len(warm) > 1 else ''} left out "
        f"(Airflow's share {', '.join(f'{v:.1f}' for v in warm)} s: the first task after Airflow starts waits "
        "seconds for its start-up details)"
    )


def _overhead(share: dict) -> list[str]:
    """Airflow's share of a backup run (bench/dag_overhead.py): the median run, task by task."""
    seconds = lambda v: "–" if v is None else f"{v:.1f} s"
    lines = [
        "## Airflow's share of a backup run",
        "",
        f"{share['source']}{_warm_up(share)}: the median of {len(share['runs_airflow_seconds'])} runs "
        f"({', '.join(f'{v:.1f}' for v in share['runs_airflow_seconds'])} s) took {share['run_seconds']:.1f} s "
        f"from its start to its end, of which the jobs' own work on the critical path (the slowest job, then "
        f"the bundle) was {share['work_seconds']:.1f} s: **Airflow's share {share['airflow_seconds']:.1f} s** "
        f"(scheduling, task start-up, XCom, and the check, rotate and cleanup tasks).",
        "",
        "| task | queued after the run's start | waited in the queue | ran | its own work |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in share["tasks"]:
        queued_after = t.get("after_start", t.get("after_trigger"))  # the key of runs measured from the trigger
        lines.append(
            f"| {t['task']} | {seconds(queued_after)} | {seconds(t['queued'])} | {seconds(t['ran'])} | "
            f"{seconds(t['own'])} |"
        )
    return lines


def _speedups(results: dict) -> list[str]:
    """Each job and each DAG run against its baseline."""
    lines = [
        "",
        "## Speedups (baseline time ÷ archivist time; above 1 means archivist is faster)",
        "",
        "| measure | archivist | baseline | speedup |",
        "|---|---:|---:|---:|",
    ]
    names = SPEEDUP_LABELS
    for key in ("es_export", "es_restore", "storage_backup", "storage_restore", "pg_backup", "pg_restore"):
        j = results["jobs"][key]
        lines.append(
            f"| {_cell(names[key])} | {j['archivist']['seconds']:.1f} s | {j['baseline']['seconds']:.1f} s | "
            f"**{j['speedup']:.2f}×** |"
        )
    for key, label in (("backup", "backup end to end"), ("restore", "restore end to end")):
        e = results["end_to_end"][key]
        lines.append(
            f"| {label} | {e['archivist']['seconds']:.1f} s | {e['baseline']['seconds']:.1f} s | "
            f"**{e['speedup']:.2f}×** |"
        )
    rounds = [
        (names[k], results["jobs"][k]) for k in results["jobs"] if "rounds_seconds" in results["jobs"][k]["archivist"]
    ]
    if rounds:
        lines += [
            "",
            "Measured in interleaved rounds, archivist and the baseline in turn; the table shows each one's "
            "median round: "
            + "; ".join(
                f"{_cell(label)}: archivist {', '.join(f'{s:.1f}' for s in j['archivist']['rounds_seconds'])} s, "
                f"baseline {', '.join(f'{s:.1f}' for s in j['baseline']['rounds_seconds'])} s"
                for label, j in rounds
            )
            + ".",
        ]
    return lines


def _disk(machine: dict) -> str:
    """The disk's write rate before and after the run (bench.disk.write_rate); older results lack it."""
    rates = machine.get("disk_write_mb_s")
    if not rates:
        return ""
    before, after = rates
    return (
        f" Disk: writing {disk.PROBE_MIB} MiB and syncing it ran at {before:,.0f} MB/s before the run, "
        f"{after:,.0f} MB/s after."
    )


def markdown(results: dict, reference: dict | None, runs: dict[float, dict] | None = None) -> str:
    """The run's report; `runs` (scale -> run, see bench.scaling) adds the table of growth with the data."""
    d, m, v = results["data"], results["machine"], results["versions"]
    lines = [
        f"# archivist bench: scale {results['scale']:g}{' (quick mode)' if results['quick'] else ''}",
        "",
        f"Run {results['started_at']} on {m['cores']} cores and {m['memory_gb']:g} GB of memory ({m['platform']})."
        + _disk(m),
        f"Data: PostgreSQL {d['postgres']['tables']} tables, {sum(d['postgres']['rows'].values()):,} rows "
        f"({_mb(d['postgres']['sql_bytes'])} of SQL); Elasticsearch {d['elasticsearch']['documents']:,} documents in "
        f"{len(d['elasticsearch']['indices'])} indices ({_mb(d['elasticsearch']['source_bytes'])} of source); "
        f"storage {d['storage']['objects']:,} objects ({_mb(d['storage']['bytes'])}).",
    ]
    if results["jobs"]:
        lines += _speedups(results)
    else:
        lines += ["", f"Archivist alone, without the baselines: {results.get('without_baselines') or 'asked'}."]
    if results.get("busy_starts"):
        lines += [
            "",
            f"**Started on a busy machine** (the wait for an idle machine gave up after {measure.IDLE_MOST_SECONDS} s; "
            "each of these counts other work too, so its figure and any ratio it enters are not comparable "
            "with a quiet run's): " + ", ".join(results["busy_starts"]) + ".",
        ]
    if results.get("encryption"):
        lines += encryption.markdown(results["encryption"])
    lines += ["", "## Targets", "", "| target | wanted | found | met |", "|---|---|---|---|"]
    for what, wanted, found, met in evaluate(results, reference):
        lines.append(f"| {what} | {wanted} | {found} | {'yes' if met else 'no'} |")
    if reference is None and results["scale"] > 0.1:
        lines.append("| peak RSS growth from scale 0.1 | ≤ 10% | no scale-0.1 run to compare | – |")
    if results["jobs"]:
        lines += _per_job(results)
    eb, er = results["end_to_end"]["backup"], results["end_to_end"]["restore"]
    lines += [
        "",
        "## End to end",
        "",
        "| run | tool | wall time | rate | artifact |",
        "|---|---|---:|---:|---:|",
        f"| backup | {eb['archivist']['source']} | {eb['archivist']['seconds']:.1f} s | "
        f"{eb['archivist']['MB_per_s']:.1f} MB/s | {_mb(eb['archivist'].get('bundle_bytes'))} |",
    ]
    if "baseline" in eb:
        lines.append(
            f"| backup | baselines one after another ({len(eb['baseline']['steps'])} steps) | "
            f"{eb['baseline']['seconds']:.1f} s | {eb['baseline']['MB_per_s']:.1f} MB/s | "
            f"{_mb(eb['baseline']['artifact_bytes'])} |"
        )
    lines.append(
        f"| restore | {er['archivist']['source']} | {er['archivist']['seconds']:.1f} s | "
        f"{er['archivist']['MB_per_s']:.1f} MB/s | |"
    )
    if "baseline" in er:
        lines.append(
            f"| restore | baselines one after another ({len(er['baseline']['steps'])} steps) | "
            f"{er['baseline']['seconds']:.1f} s | {er['baseline']['MB_per_s']:.1f} MB/s | |"
        )
    if "scheduler_tree_peak_rss_mb" in eb["archivist"]:
        lines += [
            "",
            "Each DAG run was triggered through the REST API on a running scheduler (LocalExecutor) and timed "
            "from the trigger to the end Airflow recorded, so its jobs ran in parallel as in a deployment. The "
            f"scheduler's process tree (its workers and the tasks they ran) peaked at "
            f"{eb['archivist']['scheduler_tree_peak_rss_mb']:.0f} MB (backup) and "
            f"{er['archivist'].get('scheduler_tree_peak_rss_mb', 0):.0f} MB (restore).",
            *_timeline("backup", eb["archivist"]),
            *_timeline("restore", er["archivist"]),
        ]
    if "dag_overhead" in results["end_to_end"]:
        lines += ["", *_overhead(results["end_to_end"]["dag_overhead"])]
    lines += [
        "",
        "## Peak resident memory of each archivist task",
        "",
        "Each task ran alone in its own process (`python -m bench.run_job TASK`); the RSS of the whole "
        "process tree (pg_dump and psql included) was sampled every 50 ms.",
        "",
        "| task | wall time | peak RSS |",
        "|---|---:|---:|",
    ]
    for task, info in results["archivist_tasks"].items():
        lines.append(f"| {task} | {info['seconds']:.2f} s | {info['peak_rss_mb']:.0f} MB |")
    lines += _merging_after(results)
    if results["jobs"]:
        lines += _baseline_steps(results)
    if runs:
        lines += ["", *scaling.markdown(runs)]
    lines += ["", "## Versions", "", "| component | version |", "|---|---|"]
    lines += [f"| {k} | {_cell(val)} |" for k, val in v.items()]
    lines += ["", "## Checks", ""] + [f"- {c}" for c in results["checks"]]
    return "\n".join(lines) + "\n"


def _merging_after(results: dict) -> list[str]:
    """The merges Elasticsearch ran after a restore ended, waited out before the next measurement."""
    restore_run = results["end_to_end"].get("restore", {}).get("archivist", {})
    found = [
        (what, info["merging_after"])
        for what, info in (
            ("restore_elasticsearch", results["archivist_tasks"].get("restore_elasticsearch", {})),
            ("the restore DAG run", restore_run),
        )
        if info.get("merging_after")
    ]
    if not found:
        return []
    said = "; ".join(
        f"after {what} {m['seconds']:.0f} s ({m['merge_seconds']:.0f} s of merge threads)" for what, m in found
    )
    return [
        "",
        f"Elasticsearch went on merging the restored indices after the restore had ended: {said}. "
        "The next measurement waited for it.",
    ]


def _per_job(results: dict) -> list[str]:
    """Each job's archivist task beside its baseline: time, rate, artifact and peak memory."""
    lines = [
        "",
        "## Per job",
        "",
        "| job | tool | wall time | rate | artifact | peak RSS |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key in ("pg_backup", "pg_restore", "es_export", "es_restore", "storage_backup", "storage_restore"):
        j = results["jobs"][key]
        for tool in ("archivist", "baseline"):
            e = j[tool]
            label = (
                f"archivist `{e['task']}`"
                if tool == "archivist"
                else " + ".join(sorted({s["step"].split(" bench")[0].split(" benchquick")[0] for s in e["steps"]}))
            )
            lines.append(
                f"| {key} | {_cell(label)} | {e['seconds']:.2f} s | {_rate(e, j['unit'])} | "
                f"{_mb(e.get('artifact_bytes'))} | {e['peak_rss_mb']:.0f} MB |"
            )
    return lines


def _baseline_steps(results: dict) -> list[str]:
    lines = ["", "## Baseline steps", "", "| step | wall time | peak RSS |", "|---|---:|---:|"]
    seen = set()
    for key in ("pg_backup", "es_export", "storage_backup", "pg_restore", "es_restore", "storage_restore"):
        for s in results["jobs"][key]["baseline"]["steps"]:
            lines.append(f"| {_cell(s['step'])} | {s['seconds']:.2f} s | {s['peak_rss_mb']:.0f} MB |")
            seen.add(s["step"])
    for key in ("backup", "restore"):
        for s in results["end_to_end"][key]["baseline"]["steps"]:
            if s["step"] not in seen:
                lines.append(f"| {_cell(s['step'])} | {s['seconds']:.2f} s | {s['peak_rss_mb']:.0f} MB |")
    return lines


def pg_bound_markdown(bound: dict) -> str:
    """The PostgreSQL restore against `gunzip | psql` and the server's own bound (bench.pg_bound)."""
    med = bound["median"]
    lines = [
        f"## PostgreSQL restore against the server's bound (scale {bound['scale']:g}, {bound['finished']})",
        "",
        f"`python -m bench.pg_bound`: {bound['cpus']} cores, {bound['jobs']} connections; rounds interleaved "
        "(archivist's `restore_postgres` task, `gunzip | psql --single-transaction`, then the server alone "
        "loading each table from a file it reads itself and building the same indexes and constraints over "
        "the same connections, each table's as soon as it is loaded, as archivist does), each into an emptied "
        "database; the median round is kept.",
        "",
        "| method | median | rounds | load average before each |",
        "|---|---:|---|---|",
    ]
    for key, label in (("archivist", "archivist"), ("psql", "gunzip | psql"), ("bound", "server alone (bound)")):
        rounds = ", ".join(f"{r[key]:.1f}" for r in bound["rounds"])
        loads = ", ".join(f"{r[key + '_load']:.1f}" for r in bound["rounds"])
        lines.append(f"| {_cell(label)} | {med[key]:.1f} s | {rounds} s | {loads} |")
    lines += [
        "",
        f"archivist is **{bound['speedup_vs_psql']:.2f}×** `gunzip | psql`; the bound is {bound['bound_vs_psql']:.2f}× "
        f"it, and archivist takes {bound['archivist_over_bound'] * 100:+.0f}% of the bound's time. Peak RSS of "
        f"the task: {max(r['archivist_rss_mb'] for r in bound['rounds']):.0f} MB. The bound's phases (median "
        "round): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in measure.median_round(bound["rounds"], "bound")["bound_phases"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def latest_pg_bound(results_dir: Path, scale: float) -> dict | None:
    """The newest bench.pg_bound result at `scale` in `results_dir`."""
    paths = sorted(results_dir.glob(f"pg-restore-scale-{scale:g}-*.json"))
    return json.loads(paths[-1].read_text()) if paths else None


def evaluated(results: dict, results_dir: Path, runs: dict[float, dict]) -> str:
    """Sets the run's targets (against the newest scale-0.1 run in `results_dir`) and returns its
    Markdown: the report, the growth table of `runs` (scaling.gathered) and the newest
    bench.pg_bound result at its scale."""
    reference = latest(results_dir, 0.1) if results["scale"] > 0.1 else None
    results["targets"] = [
        {"what": w, "wanted": want, "found": f, "met": met} for w, want, f, met in evaluate(results, reference)
    ]
    bound = latest_pg_bound(results_dir, results["scale"])
    return markdown(results, reference, runs) + ("\n" + pg_bound_markdown(bound) if bound else "")


def write(results: dict, results_dir: Path) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    runs = scaling.gathered(results_dir, results)
    text = evaluated(results, results_dir, runs)
    stamp = dt.datetime.fromisoformat(results["started_at"]).strftime("%Y%m%d-%H%M%S")
    stem = f"bench-scale-{results['scale']:g}-{stamp}"
    json_path, md_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(text)
    return [json_path, md_path] + ([scaling.chart(runs, results_dir / scaling.CHART)] if runs else [])


def write_encryption(
    row: dict, scale: float, started: dt.datetime, machine: dict, versions: dict, results_dir: Path
) -> list[Path]:
    """The results of `--only-encryption`: bench-encryption-scale-<s>-<time>.{json,md}."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-encryption-scale-{scale:g}-{started:%Y%m%d-%H%M%S}"
    data = {"scale": scale, "started_at": started.isoformat(timespec="seconds"), "machine": machine, "encryption": row}
    json_path, md_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    json_path.write_text(json.dumps({**data, "versions": versions}, indent=2) + "\n")
    lines = [
        f"# archivist bench: encryption at scale {scale:g}",
        "",
        f"Run {data['started_at']} on {machine['cores']} cores and {machine['memory_gb']:g} GB of memory "
        f"({machine['platform']}); pyrage {versions.get('pyrage', '?')}.",
        *encryption.markdown(row),
    ]
    md_path.write_text("\n".join(lines) + "\n")
    return [json_path, md_path]


def headline(results: dict) -> str:
    return (
        (
            "speedups: " + ", ".join(f"{k} {v:.2f}×" for k, v in results["speedup"].items()) + "; "
            if results["speedup"]
            else ""
        )
        + "peak RSS: "
        + ", ".join(f"{k} {v:.0f} MB" for k, v in results["peak_rss_mb"].items())
    )


def main() -> None:
    """Evaluates saved results again against the newest scale-0.1 run (made after them, say) and
    renders their Markdown table: python -m bench.report bench/results/X.json ..."""
    import sys

    for name in sys.argv[1:]:
        path = Path(name)
        results = json.loads(path.read_text())
        text = evaluated(results, path.parent, scaling.gathered(path.parent, results))
        path.write_text(json.dumps(results, indent=2) + "\n")  # the targets against the newest reference
        path.with_name(path.name[: -len(".json")] + ".md").write_text(text)
        print(f"wrote {path.name[: -len('.json')]}.md")


if __name__ == "__main__":
    main()
