"""archivist's Elasticsearch export and restore against elasticdump's, on each search server.

    python -m bench.es_servers --scale 0.1 [--servers "7.17 8.19 9"]   (make bench-es-servers)

For each server (the stack's 8.19, or one of scripts/search_servers.sh, started for its turn and
stopped after it, one at a time): the bench's Elasticsearch data is loaded, then measured once
each: archivist's `elasticsearch` task, elasticdump's
export of every index, archivist's `restore_elasticsearch` and elasticdump's import, each restore
into emptied indices and its counts checked. One round, not the main bench's median of five, and
no wait for an idle machine (`--settle` asks for it): on a machine shared with other stacks it is
never idle, so a row gives the order of magnitude per server and the ratio of the two tools on it. Results go to
bench/results/es-servers-scale-<scale>-<UTC time>.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

from archivist.format.bundle import BackupKey
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.transport import s3io
from bench import baselines, load, measure, run_job, targets
from bench.run import RESULTS, ROOT, WORK, log, machine

SCRIPT = ROOT / "scripts" / "search_servers.sh"
MAIN = "8.19"


def _script(*args: str) -> str:
    """search_servers.sh's last word on stdout (the URL `start` prints)."""
    out = subprocess.run(["bash", str(SCRIPT), *args], check=True, capture_output=True, text=True).stdout.split()
    return out[-1] if out else ""


SETTLE = False  # --settle: wait for an idle machine before each command, as bench.run does


def _settle() -> None:
    if SETTLE:
        measure.wait_for_idle(log=log)


def _task(name: str, key: str, t: targets.Targets, work, *extra: str) -> dict:
    out = work / f"task-{name}.json"
    args = [sys.executable, "-m", "bench.run_job", name, "--key", key, "--out", str(out), *extra]
    _settle()
    m = measure.run(f"archivist {name}", args, env=run_job.targets_to_env(t), cwd=str(ROOT), log=log).check()
    return {"seconds": round(m.seconds, 3), "peak_rss_mb": m.peak_rss_mb, "out": str(out)}


def _steps(steps: list[baselines.Step], env: dict, work) -> dict:
    seconds, peak = 0.0, 0
    for step in steps:
        _settle()
        m = measure.run(f"baseline {step.label}", baselines.bash(step.command), env=env, cwd=str(work), log=log).check()
        seconds, peak = seconds + m.seconds, max(peak, m.peak_rss_mb)
    return {"seconds": round(seconds, 3), "peak_rss_mb": peak}


def _expect(t: targets.Targets, scale: float, what: str) -> None:
    got, want = load.counts(t, "elasticsearch"), load.expected(t, scale, "elasticsearch")
    if got != want:
        raise RuntimeError(f"{what}: the indices hold {got} after the restore, expected {want}")


def measure_server(label: str, scale: float) -> dict:
    base = targets.load()
    url = base.elasticsearch.url if label == MAIN else _script("start", label)
    t = dataclasses.replace(base, elasticsearch=dataclasses.replace(base.elasticsearch, url=url))
    try:
        server = es_cluster.check_server(t.elasticsearch)
        work = WORK / f"es-servers-{label}"
        baselines.prepare(work, t.elasticsearch)
        load.ensure(t, scale, ("elasticsearch",))
        load.es_drop_templates(t.elasticsearch)  # as bench.run does: the empty-mode restore refuses them
        load.ensure_bucket(s3io.client(t.backups), t.backups.bucket)  # where the restore reads the bundle
        indices = sorted(load.expected(t, scale, "elasticsearch"))
        env = baselines.env(t, server.number)
        key = BackupKey.new().name
        row: dict = {"server": str(server), "documents": sum(load.expected(t, scale, "elasticsearch").values())}
        row["archivist_export"] = _task("elasticsearch", key, t, work)
        row["elasticdump_export"] = _steps(baselines.es_export(work, t.elasticsearch.url, indices), env, work)
        subprocess.run(  # the bundle the restore reads; not measured
            [
                sys.executable,
                "-m",
                "bench.run_job",
                "bundle_and_upload",
                "--key",
                key,
                "--results",
                row["archivist_export"]["out"],
            ],
            env={**os.environ, **run_job.targets_to_env(t)},
            check=True,
            capture_output=True,
            cwd=str(ROOT),
        )
        load.wipe(t, "elasticsearch")
        row["archivist_restore"] = _task("restore_elasticsearch", key, t, work)
        _expect(t, scale, "archivist restore_elasticsearch")
        load.wipe(t, "elasticsearch")
        row["elasticdump_restore"] = _steps(baselines.es_import(work, t.elasticsearch.url, indices), env, work)
        _expect(t, scale, "elasticdump import")
        for kind in ("export", "restore"):
            row[f"speedup_{kind}"] = round(
                row[f"elasticdump_{kind}"]["seconds"] / row[f"archivist_{kind}"]["seconds"], 2
            )
        load.wipe(t, "elasticsearch")
        return row
    finally:
        if label != MAIN:
            _script("stop", label)


def table(scale: float, rows: list[dict]) -> str:
    lines = [
        f"# Export and restore per search server, scale {scale}, one round each "
        + ("(each command after waiting for an idle machine)" if SETTLE else "(no wait for an idle machine)"),
        "",
        "| server | documents | archivist export s | elasticdump export s | speedup | archivist restore s "
        "| elasticdump restore s | speedup | archivist peak MB (export / restore) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['documents']:,} | {r['archivist_export']['seconds']} | "
            f"{r['elasticdump_export']['seconds']} | {r['speedup_export']} | {r['archivist_restore']['seconds']} | "
            f"{r['elasticdump_restore']['seconds']} | {r['speedup_restore']} | "
            f"{r['archivist_export']['peak_rss_mb']} / {r['archivist_restore']['peak_rss_mb']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--servers", default="7.17 8.19 9")
    parser.add_argument("--settle", action="store_true", help="wait for an idle machine before each command")
    args = parser.parse_args(argv)
    global SETTLE
    SETTLE = args.settle
    rows = [measure_server(label, args.scale) for label in args.servers.split()]
    result = {"scale": args.scale, "machine": machine(), "rows": rows}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"es-servers-scale-{args.scale}-{stamp}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table(args.scale, rows))
    log(f"wrote {RESULTS / name}.json and .md")
    return result


if __name__ == "__main__":
    main()
