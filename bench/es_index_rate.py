"""How fast Elasticsearch itself indexes as one index grows: the server's side of the restore's
growth with the data (docs/PERFORMANCE.md#growth-to-scale-5).

    python -m bench.es_index_rate --scale 5 [--index logs-2026.11] [--order own] [--docs N] [--window 250000]
                                              (prints the figures and saves them in bench/results)

Loads one generated index file (bench.generate) into a scratch index made as archivist's restore
makes one (es_restore.create_index: the index's definition and the loading settings), with
BULK_THREADS requests of 1,000 documents in flight, and prints the documents per second of each
window of `--window` documents, and the merges the server ran meanwhile. The order:

- `own`: the documents' own ids, in the file's order (as they were loaded);
- `auto`: no ids, so the server looks nothing up before it writes a document;
- `interleaved`: two halves of the ids in turn, 2,000 at a time, as an export's two slices give
  them (holds the documents in memory: bound it with --docs).

Nothing of the client's reading of a bundle is counted: the bodies come from a local file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from archivist import config
from archivist.sources.elasticsearch import cluster as es_cluster
from archivist.sources.elasticsearch import restore as es_restore
from bench import generate

ORDERS = ("own", "auto", "interleaved")
BODY_DOCS = 1000
SLICE_PAGE = 2000  # an export's page (docs/PERFORMANCE.md#export-slices-and-page-size)
SCRATCH = "bench-index-rate"
RESULTS = Path(__file__).resolve().parent / "results"
_ID = re.compile(rb'"_id":"[^"]*",?')


def pairs(path: Path, limit: int | None) -> Iterator[bytes]:
    """The file's documents as (action line + source line), at most `limit` of them."""
    with open(path, "rb", buffering=1 << 20) as f:
        for n, action in enumerate(f):
            if limit is not None and n >= limit:
                return
            yield action + next(f)


def without_id(pair: bytes) -> bytes:
    action, _, source = pair.partition(b"\n")
    return _ID.sub(b"", action).replace(b",}", b"}") + b"\n" + source


def in_order(docs: Iterator[bytes], order: str) -> Iterator[bytes]:
    if order == "auto":
        yield from (without_id(pair) for pair in docs)
        return
    if order == "own":
        yield from docs
        return
    held = list(docs)
    half = (len(held) + 1) // 2
    first, second = held[:half], held[half:]
    for at in range(0, half, SLICE_PAGE):
        yield from first[at : at + SLICE_PAGE]
        yield from second[at : at + SLICE_PAGE]


def bodies(docs: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
    batch: list[bytes] = []
    for pair in docs:
        batch.append(pair)
        if len(batch) == BODY_DOCS:
            yield b"".join(batch), len(batch)
            batch = []
    if batch:
        yield b"".join(batch), len(batch)


def window_rates(done_at: list[tuple[int, float]], window: int) -> list[float]:
    """Documents per second of each full window of `window` documents, from (documents sent so
    far, seconds since the start) after each body."""
    rates, last_docs, last_at = [], 0, 0.0
    for docs, at in done_at:
        if docs - last_docs >= window:
            rates.append(round((docs - last_docs) / (at - last_at)))
            last_docs, last_at = docs, at
    return rates


def measure(es, raw, definition: dict, path: Path, order: str, limit: int | None, window: int) -> dict:
    es.options(ignore_status=404).indices.delete(index=SCRATCH)
    es_restore.create_index(es, SCRATCH, definition)
    done_at: list[tuple[int, float]] = []
    sent, started = 0, time.monotonic()
    try:
        with ThreadPoolExecutor(es_restore.BULK_THREADS) as pool:
            flying: list[Future] = []
            for body, docs in bodies(in_order(pairs(path, limit), order)):
                flying.append(pool.submit(es_restore.send_bulk, raw, SCRATCH, body, docs))
                if len(flying) >= 2 * es_restore.BULK_THREADS:
                    sent += flying.pop(0).result()
                    done_at.append((sent, time.monotonic() - started))
            for future in flying:
                sent += future.result()
                done_at.append((sent, time.monotonic() - started))
        seconds = time.monotonic() - started
        merges = es.indices.stats(index=SCRATCH, metric="merge")["indices"][SCRATCH]["primaries"]["merges"]
    finally:
        es.options(ignore_status=404).indices.delete(index=SCRATCH)
    return {
        "order": order,
        "documents": sent,
        "seconds": round(seconds, 1),
        "documents_per_second": round(sent / seconds),
        "window": window,
        "window_rates": window_rates(done_at, window),
        "merges": merges["total"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=5)
    parser.add_argument("--index", default="logs-2026.11", help="a generated index (bench.generate)")
    parser.add_argument("--order", choices=ORDERS, default="own")
    parser.add_argument("--docs", type=int, default=None, help="at most this many documents")
    parser.add_argument("--window", type=int, default=250_000)
    args = parser.parse_args(argv)
    data = generate.data_dir(args.scale) / "elasticsearch"
    if generate.marker(data) is None:
        raise SystemExit(f"no generated data in {data}: run python -m bench.generate --scale {args.scale:g}")
    definition = json.loads((data / "indices.json").read_text())[args.index]
    settings = config.load_elasticsearch()
    found = measure(
        es_cluster.client(settings),
        es_cluster.raw_client(settings),
        {"settings": {"index": definition["settings"]}, "mappings": definition["mappings"]},
        data / f"{args.index}.bulk",
        args.order,
        args.docs,
        args.window,
    )
    found = {"scale": args.scale, "index": args.index, **found}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = RESULTS / f"es-index-rate-scale-{args.scale:g}-{args.order}-{stamp}.json"
    saved.write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps(found))
    return found


if __name__ == "__main__":
    main()
