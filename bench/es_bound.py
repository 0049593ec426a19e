"""How fast Elasticsearch itself hands out and takes in documents: the floors of the ES ratios.

    python -m bench.es_bound [--index bench-logs-2026.11]   (the index must be loaded: bench.load)
    python -m bench.es_bound --restore-key bundle-…  [--rounds 2]   (a bundle in the bench's backup bucket)

Reads the whole index four ways and prints documents per second: elasticdump (--limit=10000, to
a file); Elasticsearch alone (point-in-time pages fetched as raw bytes and thrown away, one slice
and two slices in parallel: no client work at all, so no client can be faster); and archivist's
export (`export_index`, two slices, lines cut from the raw pages, written nowhere). The first of
these bounds the ES export speedup any client can reach on this machine.

With --restore-key, the restore's floor: every bulk body of the bundle's indices is built in
memory first, then the indices are created, loaded and finished as archivist's restore does
(the same loading settings, BULK_THREADS requests in flight), so the time counts the server's
indexing and nothing of the client's reading or cutting. Rounds alternate with archivist's own
restore of the same bundle; each prints its wall time and the server's CPU seconds (/proc).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.format.members import members
from archivist.progress import Progress
from archivist.runner import restore
from archivist.sources.base import RestoreOptions
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import export as es_export
from archivist.sources.elasticsearch import lines as es_lines
from archivist.sources.elasticsearch import restore as es_restore
from archivist.sources.elasticsearch import source as es_source
from archivist.transport.backup_bucket import BackupStore
from bench import baselines, load, measure, targets


def raw_pages(es, raw, index: str, slices: int, page: int = 10_000) -> int:
    pit = es.open_point_in_time(index=index, keep_alive="5m")["id"]
    counted = [0] * slices

    def read(i: int) -> None:
        after = None
        while True:
            body = {
                "pit": {"id": pit, "keep_alive": "5m"},
                "size": page,
                "sort": es_export.EXPORT_SORT,
                "track_total_hits": False,
            }
            if slices > 1:
                body["slice"] = {"id": i, "max": slices}
            if after is not None:
                body["search_after"] = after
            got = es_lines.page_lines(index, raw.search(body=body).body)
            if got is None:
                return
            counted[i] += got[0]
            after = got[2]

    threads = [threading.Thread(target=read, args=(i,)) for i in range(slices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    es.close_point_in_time(id=pit)
    return sum(counted)


def server_cpu_seconds() -> float:
    """User and system CPU seconds the Elasticsearch server's process has used so far."""
    pid = subprocess.run(
        ["pgrep", "-f", "org.elasticsearch.bootstrap.Elasticsearch"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restore_floor(t, key: str, rounds: int) -> None:
    opener = BackupStore(t.backups).bundle_source(BackupKey.parse(key))
    _, definitions, indices = es_source.metadata(opener)
    chosen = [i for i in indices if es_restore.matches_any(i, [t.index_pattern])]
    bodies = {
        bundle.index_of_path(path): list(es_lines.bulk_bodies(lines, Progress("build", "docs")))
        for path, lines in members(opener, lambda p: bundle.index_of_path(p) in chosen)
    }
    es, raw = es_cluster.client(t.elasticsearch), es_cluster.raw_client(t.elasticsearch)

    def server_alone() -> int:
        sent = 0
        with ThreadPoolExecutor(es_restore.BULK_THREADS) as pool:
            for index in chosen:
                es_restore.create_index(es, index, definitions.get(index))
                loaded = sum(pool.map(lambda b, index=index: es_restore.send_bulk(raw, index, *b), bodies[index]))
                es_restore.finish_index(es, index, definitions.get(index))
                if es_cluster.count(es, index) != loaded:
                    raise SystemExit(f"index {index}: {loaded} sent, {es_cluster.count(es, index)} held")
                sent += loaded
        return sent

    def archivist() -> int:
        return restore.restore_job(
            "elasticsearch", opener, t.elasticsearch, "empty", RestoreOptions([t.index_pattern])
        )["documents"]

    for _ in range(rounds):
        for label, run in (
            ("Elasticsearch alone, bodies built beforehand", server_alone),
            ("archivist restore_elasticsearch", archivist),
        ):
            load.wipe(t, "elasticsearch")
            load.es_drop_templates(t.elasticsearch)  # as bench.run does: the empty-mode restore refuses them
            measure.wait_for_idle()
            cpu, started = server_cpu_seconds(), time.monotonic()
            docs = run()
            print(
                f"  {label:47s} {time.monotonic() - started:6.2f} s  {docs:,} docs, "
                f"server {server_cpu_seconds() - cpu:5.1f} CPU-s",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="bench-logs-2026.11")
    parser.add_argument("--restore-key", help="measure the restore's floor with this bundle instead")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    t = targets.load()
    if args.restore_key:
        restore_floor(t, args.restore_key, args.rounds)
        return
    es, raw = es_cluster.client(t.elasticsearch), es_cluster.raw_client(t.elasticsearch)
    total = es.count(index=args.index)["count"]
    env = baselines.env(t, es_cluster.check_login(t.elasticsearch))
    with tempfile.TemporaryDirectory() as tmp:
        baselines.prepare(Path(tmp), t.elasticsearch)
        auth = [f"--httpAuthFile={Path(tmp) / baselines.AUTH_FILE}"] if t.elasticsearch.user else []
        started = time.monotonic()
        subprocess.run(
            [
                baselines.tool("elasticdump"),
                f"--input={t.elasticsearch.url}/{args.index}",
                f"--output={tmp}/data.json",
                "--type=data",
                f"--limit={baselines.ELASTICDUMP_LIMIT}",
                *auth,
            ],
            env={**__import__("os").environ, **env},
            check=True,
            capture_output=True,
        )
        rows = [("elasticdump --type=data --limit=10000", time.monotonic() - started, total)]
    for slices in (1, 2):
        started = time.monotonic()
        n = raw_pages(es, raw, args.index, slices)
        rows.append((f"Elasticsearch alone, raw pages, {slices} slice(s)", time.monotonic() - started, n))
    started = time.monotonic()
    n, _ = es_export.export_index(es, args.index, lambda data: None, raw=raw)
    rows.append(("archivist export_index (2 slices, raw lines)", time.monotonic() - started, n))
    print(f"index {args.index}: {total:,} documents")
    for label, seconds, n in rows:
        print(f"  {label:55s} {seconds:6.2f} s  {n / seconds:9,.0f} docs/s")


if __name__ == "__main__":
    main()
