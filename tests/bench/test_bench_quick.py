"""The bench's quick mode, so the benchmark code cannot rot: the whole run (generate, load,
every archivist task in its own process, every baseline, restores checked, unload, report)
at a tiny scale against its own targets (database archivist_benchquick, indices benchquick-*,
buckets archivist-benchquick and archivist-benchquick-backups). Only the two `airflow dags
test` runs are left out here; tests/dags runs both DAGs for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.transport import s3io

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import report, targets  # noqa: E402
from bench import run as run_bench  # noqa: E402


def _quick_bench(results_dir: Path, *args: str) -> tuple[dict, str]:
    """`bench.run --quick` into `results_dir`: its results and its Markdown report."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", *args, "--results-dir", str(results_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    [json_file] = results_dir.glob("bench-scale-0.001-*.json")
    [md_file] = results_dir.glob("bench-scale-0.001-*.md")
    return json.loads(json_file.read_text()), md_file.read_text()


def test_quick_bench_measures_everything_and_cleans_up(tmp_path, pg_settings, es_client, storage_settings):
    # The baselines, pinned and cached per user; a no-op once installed (the first run builds rclone).
    subprocess.run(["bash", str(ROOT / "bench" / "setup.sh")], check=True, cwd=ROOT, timeout=1800)
    results, table = _quick_bench(tmp_path)
    assert results["scale"] == 0.001 and results["quick"] is True
    assert set(results["speedup"]) == set(report.SPEEDUP_KEYS)
    assert all(v > 0 for v in results["speedup"].values())
    assert set(results["peak_rss_mb"]) == set(report.TASK_ORDER)
    assert all(0 < mb < 1024 for mb in results["peak_rss_mb"].values())
    for job in results["jobs"].values():
        assert job["archivist"]["seconds"] > 0 and job["baseline"]["seconds"] > 0
    # Every restore, archivist's and each baseline's, was checked against the generated data, the
    # Elasticsearch and PostgreSQL ones in each round.
    rounds = run_bench.QUICK_ROUNDS
    assert len(results["checks"]) == 6 + 4 * (rounds - 1) and all("restored exactly" in c for c in results["checks"])
    for key in ("es_export", "es_restore", "pg_backup", "pg_restore"):  # in rounds, each showing its median round
        job = results["jobs"][key]
        for tool in ("archivist", "baseline"):
            assert len(job[tool]["rounds_seconds"]) == rounds
            assert job[tool]["seconds"] == sorted(job[tool]["rounds_seconds"])[(rounds - 1) // 2]
    assert "rounds_seconds" not in results["jobs"]["storage_backup"]["archivist"]
    # the merges Elasticsearch ran after the restore were waited out, and their time kept apart
    merging = results["archivist_tasks"]["restore_elasticsearch"]["merging_after"]
    assert set(merging) == {"seconds", "merge_seconds"} and min(merging.values()) >= 0
    assert {"elasticdump", "rclone", "pg_dump", "tar", "gzip", "archivist", "pyrage"} <= set(results["versions"])
    # The cost of encryption: the same staged artifacts bundled plain and encrypted, in rounds.
    sealed = results["encryption"]
    assert len(sealed["bundle_plain"]["rounds_seconds"]) == len(sealed["bundle_encrypted"]["rounds_seconds"]) == 1
    assert sealed["bundle_ratio"] > 0 and sealed["backup_ratio"] > 0 and sealed["age_alone"]["seconds"] > 0
    assert sealed["encrypted_bytes"] > sealed["plain_bytes"] > 0

    assert "## Speedups" in table and "## Peak resident memory" in table and "## Versions" in table
    assert "## Encryption (age)" in table
    assert f"{results['machine']['cores']} cores" in table
    # the disk's write rate, before and after the run, is in the results and the report
    before, after = results["machine"]["disk_write_mb_s"]
    assert before > 0 and after > 0 and f"{before:,.0f} MB/s before the run" in table

    # The run took its data off the servers again.
    quick = targets.load(targets.QUICK_PREFIX)
    assert not es_cluster.list_indices(es_client, quick.index_pattern)
    s3 = s3io.client(storage_settings)
    for bucket in (quick.storage.bucket, quick.backups.bucket):
        assert not s3.list_objects_v2(Bucket=bucket).get("Contents")
    from bench import load

    assert not load.pg_exists(quick.postgres)


def test_quick_bench_without_baselines_measures_archivist_alone(tmp_path, pg_settings, es_client, storage_settings):
    results, table = _quick_bench(tmp_path, "--no-baselines")
    assert results["without_baselines"] == "asked for (--no-baselines)"
    assert results["speedup"] == {} and results["jobs"] == {} and results["encryption"] is None
    # Every task still measured, each restore checked, for the growth table.
    assert set(results["archivist_tasks"]) == set(report.TASK_ORDER)
    assert all(t["seconds"] > 0 and t["peak_rss_mb"] > 0 for t in results["archivist_tasks"].values())
    assert len(results["checks"]) == 3 and all("archivist restore_" in c for c in results["checks"])
    for kind in ("backup", "restore"):
        assert set(results["end_to_end"][kind]) == {"archivist"}
    assert "Archivist alone, without the baselines: asked for (--no-baselines)." in table
    assert "## Speedups" not in table and "## Per job" not in table and "## Baseline steps" not in table
    assert "| baseline" not in table and "## Peak resident memory" in table
    # Nothing of the baselines was made.
    assert not any((ROOT / ".local" / "bench" / "work").glob("benchquick-*/pg/*"))
