"""Memory bombs: a few hundred kilobytes in the backup bucket that inflate to a gigabyte where a
bundle says how much there is. Each is read by the real code in a process of its own, whose peak
resident memory (VmHWM, or the child's ru_maxrss) must stay within 50 MB of the same code reading a
normal bundle. The bombs are written to disk in chunks (never held whole by the test) and planted
in the backup bucket."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import orjson
import pytest

from archivist.format import bundle, bundle_index
from archivist.format.artifact import Artifact
from archivist.format.bundle import BackupKey, JobResult
from archivist.format.deflate import GzipWriter
from tests.security import forge
from tests.security.es_state import snapshot
from tests.support import ROOT

MB = 1000 * 1000
MiB = 1024 * 1024
MARGIN = 50 * MB
CHUNK = 8 * MiB


class Repeated(io.RawIOBase):
    """`head`, then `fill` repeated to `size` bytes in all, read in chunks: a file nobody holds."""

    def __init__(self, head: bytes, fill: bytes, size: int):
        self._head, self._fill, self._left = head, fill * (CHUNK // len(fill)), size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        out = self._head[:n]
        self._head = self._head[n:]
        while len(out) < n:
            out += self._fill[: n - len(out)]
        self._left -= len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def plant_file(store, key: BackupKey, path) -> None:
    store.s3.upload_file(str(path), store.bucket, key.object_key)
    store.planted.append(key.object_key)


def peak_rss(args: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, int]:
    """Runs `args` under a small wrapper process; returns the run and its peak resident bytes."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(r.returncode)"
    )
    run = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    peak = next(int(line.split()[1]) for line in run.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return run, peak * 1024


# --- meta.json, read by the Backups page's catalog ---------------------------------------------

CATALOG = """
import json, sys
from archivist import config
from archivist.transport.backup_bucket import BackupStore
from archivist_backups.catalog import Catalog

store = BackupStore(config.load_backups())
stored = next(b for b in store.list_bundles() if b.key.name == sys.argv[1])
meta, error = Catalog(store).meta(stored)
print(json.dumps({"error": error, "jobs": sorted((meta or {}).get("counts", {}))}))
"""


def read_by_catalog(key: BackupKey) -> tuple[dict, int]:
    run, peak = peak_rss(
        [sys.executable, "-c", CATALOG, key.name], env={"PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"}
    )
    assert run.returncode == 0, run.stderr
    # the last line: Airflow's logging prints the Amazon provider's INFO lines on stdout in a script
    return json.loads(run.stdout.strip().splitlines()[-1]), peak


BOMB = 768 * MiB  # inflated; deflate's best ratio (about 1,000:1) keeps the object under a megabyte


def meta_bomb(path, key: BackupKey, how: str, size: int = BOMB) -> None:
    """A bundle whose first file, before any artifact, inflates to `size` bytes of spaces:
    `indexed`: meta.json itself, with a seek index pointing at it, as archivist writes bundles;
    `unindexed`: meta.json without an index, as the original tool's are read;
    `pax-header`: a pax extended header of that size before a small meta.json."""
    mtime = int(forge.CREATED.timestamp())
    with open(path, "wb") as out, GzipWriter(out, compresslevel=9, mtime=mtime) as gz:
        with tarfile.open(fileobj=gz, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            folder = tarfile.TarInfo(key.name)
            folder.type, folder.mtime = tarfile.DIRTYPE, mtime
            tar.addfile(folder)
            start = gz.restart_point()
            if how == "pax-header":
                header = tarfile.TarInfo(f"{key.name}/PaxHeader")
                header.type, header.size = tarfile.XHDTYPE, size
                tar.fileobj.write(header.tobuf(tarfile.USTAR_FORMAT))
                reader = Repeated(b"", b" ", size)
                tarfile.copyfileobj(reader, tar.fileobj, size)
                tar.fileobj.write(tarfile.NUL * (-size % tarfile.BLOCKSIZE))
                tar.offset += tarfile.BLOCKSIZE + size + (-size % tarfile.BLOCKSIZE)
                size = 2
            meta = tarfile.TarInfo(f"{key.name}/{bundle.META}")
            meta.size, meta.mtime = size, mtime
            tar.addfile(meta, Repeated(b"{", b" ", size) if size > 2 else io.BytesIO(b"{}"))
        if how == "indexed":
            gz.append_stored(bundle_index.index_block(bundle_index.spans([(bundle.META, *start)], *gz.restart_point())))


@pytest.mark.parametrize("how", ["indexed", "unindexed", "pax-header"])
def test_a_meta_json_bomb_costs_the_backups_page_no_more_than_a_normal_bundle(store, tmp_path, how):
    normal_key, normal = forge.forge(
        {"jobs.elasticsearch/elasticsearch-n-{id}.ndjson": b'{"_index":"n","_id":"1","_source":{}}\n'},
        counts={"elasticsearch": {"indices": {"n": 1}, "documents": 1}},
    )
    store.planted.append(forge.plant(store, normal_key, normal))
    bomb_key = BackupKey.new()
    meta_bomb(tmp_path / "bomb.tgz", bomb_key, how)
    assert os.path.getsize(tmp_path / "bomb.tgz") < MiB
    plant_file(store, bomb_key, tmp_path / "bomb.tgz")

    read, normal_peak = read_by_catalog(normal_key)
    assert read == {"error": None, "jobs": ["jobs.elasticsearch"]}
    refused, bomb_peak = read_by_catalog(bomb_key)
    assert refused["jobs"] == []
    expected = {
        "indexed": "meta.json is larger than 1 MiB, the most a reader accepts",
        "unindexed": f"meta.json is {BOMB} bytes, too large to be a bundle's meta.json",
        "pax-header": f"has an extended header of {BOMB:,} bytes, over the 1 MiB",
    }[how]
    assert expected in refused["error"]
    print(f"peak RSS: normal {normal_peak / MB:.0f} MB, bomb {bomb_peak / MB:.0f} MB")
    assert bomb_peak - normal_peak < MARGIN, (bomb_peak, normal_peak)


# --- an ndjson line without its newline, read by the Elasticsearch restore ----------------------

LINE_HEAD = b'{"_index":"sec-bomb","_id":"1","_source":{"blob":"'


def ndjson_bundle(path, key: BackupKey, line: int, newline: bool) -> None:
    """A bundle of archivist's shape whose index sec-bomb holds a few small documents, then one
    line of `line` bytes (with or without its newline), written in chunks."""
    small = b"".join(b'{"_index":"sec-bomb","_id":"s%d","_source":{"n":%d}}\n' % (n, n) for n in range(3))
    head = small + LINE_HEAD
    tail = b'"}}\n' if newline else b""
    body_size = len(small) + line + len(tail)
    member = bundle.elasticsearch_index_path("sec-bomb", key.backup_id)
    definitions = orjson.dumps(
        {"sec-bomb": {"settings": {"index": {"number_of_shards": "1"}}, "mappings": {"enabled": False}, "aliases": {}}}
    )
    small_files = {
        bundle.indices_path(key.backup_id): definitions,
        bundle.templates_path(key.backup_id): b'{"component_templates":[],"index_templates":[],"legacy_templates":{}}',
    }

    def data(path_: str):
        if path_ in small_files:
            return io.BytesIO(small_files[path_])
        return io.BufferedReader(_Ending(Repeated(head, b"x", body_size - len(tail)), tail), CHUNK)

    def digest() -> str:
        h, reader = hashlib.sha256(), data(member)
        while chunk := reader.read(CHUNK):
            h.update(chunk)
        return h.hexdigest()

    artifacts = [Artifact(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in small_files.items()]
    artifacts.append(Artifact(member, body_size, digest()))
    docs = 4 if newline else 3
    result = JobResult("elasticsearch", artifacts, {"indices": {"sec-bomb": docs}, "documents": docs}, 0.1, "test")
    meta = bundle.build_meta(key, [result], dt.datetime(2026, 11, 26, tzinfo=dt.UTC), "test")
    with open(path, "wb") as out:
        bundle.write_bundle(out, key, meta, artifacts, data, compresslevel=9, engine="zlib")


class _Ending(io.RawIOBase):
    def __init__(self, first: io.RawIOBase, tail: bytes):
        self._first, self._tail = first, tail

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._first.read(len(b))
        if not data:
            data, self._tail = self._tail[: len(b)], self._tail[len(b) :]
        b[: len(data)] = data
        return len(data)


def _without_bomb(state: dict) -> dict:
    return {
        **state,
        "indices": [i for i in state["indices"] if i[0] != "sec-bomb"],
        "aliases": {k: v for k, v in state["aliases"].items() if k != "sec-bomb"},
    }


@pytest.fixture
def es(es_client):
    es_client.options(ignore_status=404).indices.delete(index="sec-bomb")
    yield es_client
    es_client.options(ignore_status=404).indices.delete(index="sec-bomb")


def test_a_line_without_its_newline_costs_the_restore_no_more_than_the_largest_document(store, es, tmp_path):
    """A line is held whole until its newline, so a bundle's largest legitimate document sets what
    its restore holds: the normal bundle here holds one of 64 MiB (Elasticsearch takes up to
    100 MiB). The bomb's line runs on for a gigabyte; it must fail at the cap, naming the index
    and the line, having changed nothing, and cost no more than the normal bundle."""
    normal_key, bomb_key = BackupKey.new(), BackupKey.new()
    ndjson_bundle(tmp_path / "normal.tgz", normal_key, 64 * MiB, newline=True)
    ndjson_bundle(tmp_path / "bomb.tgz", bomb_key, 1024 * MiB, newline=False)
    assert os.path.getsize(tmp_path / "bomb.tgz") < 1.2 * MiB
    plant_file(store, normal_key, tmp_path / "normal.tgz")
    plant_file(store, bomb_key, tmp_path / "bomb.tgz")

    restored, normal_peak = peak_rss(
        ["archivist", "restore", normal_key.name, "--jobs", "elasticsearch", "--mode", "replace", "--yes"]
    )
    assert restored.returncode == 0, restored.stderr
    assert es.count(index="sec-bomb")["count"] == 4
    before = _without_bomb(snapshot(es))
    refused, bomb_peak = peak_rss(
        ["archivist", "restore", bomb_key.name, "--jobs", "elasticsearch", "--mode", "replace", "--yes"]
    )
    assert refused.returncode == 7, refused.stderr
    assert "index sec-bomb: line 4 is longer than 101 MiB" in refused.stderr
    # The line is met while the index loads, after replace mode dropped and recreated the bundle's
    # own index: that one holds none of the bomb's documents; nothing else changed.
    assert es.count(index="sec-bomb")["count"] == 0
    assert _without_bomb(snapshot(es)) == before
    print(f"peak RSS: normal {normal_peak / MB:.0f} MB, bomb {bomb_peak / MB:.0f} MB")
    assert bomb_peak - normal_peak < MARGIN, (bomb_peak, normal_peak)
