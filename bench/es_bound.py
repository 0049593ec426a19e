"""How fast Elasticsearch itself hands out documents, against elasticdump and archivist's export.

    python -m bench.es_bound [--index bench-logs-2026.11]   (the index must be loaded: bench.load)

Reads the whole index four ways and prints documents per second: elasticdump (--limit=10000, to
a file); Elasticsearch alone (point-in-time pages fetched as raw bytes and thrown away, one slice
and two slices in parallel: no client work at all, so no client can be faster); and archivist's
export (`export_index`, two slices, lines cut from the raw pages, written nowhere). The first of
these bounds the ES export speedup any client can reach on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from archivist import elasticsearch as es_job
from bench import baselines, targets


def raw_pages(es, raw, index: str, slices: int, page: int = 10_000) -> int:
    pit = es.open_point_in_time(index=index, keep_alive="5m")["id"]
    counted = [0] * slices

    def read(i: int) -> None:
        after = None
        while True:
            body = {"pit": {"id": pit, "keep_alive": "5m"}, "size": page, "sort": es_job.EXPORT_SORT,
                    "track_total_hits": False}
            if slices > 1:
                body["slice"] = {"id": i, "max": slices}
            if after is not None:
                body["search_after"] = after
            got = es_job._page_lines(index, raw.search(body=body).body)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="bench-logs-2026.11")
    args = parser.parse_args()
    t = targets.load()
    es, raw = es_job.client(t.elasticsearch), es_job.raw_client(t.elasticsearch)
    total = es.count(index=args.index)["count"]
    env = baselines.env(t, es_job.check(t.elasticsearch))
    with tempfile.TemporaryDirectory() as tmp:
        baselines.prepare(Path(tmp), t.elasticsearch)
        auth = [f"--httpAuthFile={Path(tmp) / baselines.AUTH_FILE}"] if t.elasticsearch.user else []
        started = time.monotonic()
        subprocess.run([baselines.tool("elasticdump"), f"--input={t.elasticsearch.url}/{args.index}",
                        f"--output={tmp}/data.json", "--type=data", f"--limit={baselines.ELASTICDUMP_LIMIT}", *auth],
                       env={**__import__("os").environ, **env}, check=True, capture_output=True)
        rows = [("elasticdump --type=data --limit=10000", time.monotonic() - started, total)]
    for slices in (1, 2):
        started = time.monotonic()
        n = raw_pages(es, raw, args.index, slices)
        rows.append((f"Elasticsearch alone, raw pages, {slices} slice(s)", time.monotonic() - started, n))
    started = time.monotonic()
    n, _ = es_job.export_index(es, args.index, lambda data: None, raw=raw)
    rows.append(("archivist export_index (2 slices, raw lines)", time.monotonic() - started, n))
    print(f"index {args.index}: {total:,} documents")
    for label, seconds, n in rows:
        print(f"  {label:55s} {seconds:6.2f} s  {n / seconds:9,.0f} docs/s")


if __name__ == "__main__":
    main()
