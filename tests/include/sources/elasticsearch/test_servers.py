"""The server matrix (marker `esmatrix`): a backup and a restore against every search server
ARCHIVIST_ES_VERSIONS started (and the stack's 8.19), and bundles of older servers restored into
newer ones. Each server holds an index of 25,000 documents with a filtered alias, an index whose
documents need their routing, and a template of each kind; after the round trip the documents
(ids, routing, sources), mappings, aliases and templates are what the server showed before.
`archivist drill` runs against each server too, and the checks' reader reads each. Each server
that makes data streams also holds one, made by its template: after the round trip it is a data
stream again, with the same documents and ids; a server that makes none (Elasticsearch 7.17's
integ-test-zip) refuses a bundle holding one before anything is written.

`make test-esmatrix` runs it with every server; the servers run one after another."""

from __future__ import annotations

import os
import secrets

import orjson
import pytest
from elasticsearch.helpers import bulk

from archivist.drill import record
from archivist.errors import ArchivistError
from archivist.format.bundle import BackupKey
from archivist.format.bundle_index import BundleSource
from archivist.runner import backup, restore
from archivist.sources.base import DumpOptions, RestoreOptions
from archivist.sources.elasticsearch import cluster, datastreams, export
from archivist.transport.backup_bucket import BackupStore
from tests.include.drill.live_state import scratch_left
from tests.include.drill.short_bundle import one_document_fewer
from tests.include.sources.elasticsearch import servers
from tests.security.forge import plant
from tests.spec_support import archivist

pytestmark = pytest.mark.esmatrix

# Source and target of each migration: older into newer, and Elasticsearch 7 into OpenSearch.
MIGRATIONS = [("7.17", "8.19"), ("8.19", "9"), ("7.17", "9"), ("7.17", "opensearch-2"), ("7.17", "opensearch-3")]
_bundles: dict[str, tuple[str, str, dict]] = {}  # server label -> (bundle path, key, what it held)
_stream_bundle: list[tuple[str, str, str, dict]] = []  # the stack's 8.19: (bundle path, key, data stream, documents)


def pytest_generate_tests(metafunc):
    labels = servers.labels()
    if metafunc.function.__name__ == "test_migration":
        pairs = [(t, s) for s, t in MIGRATIONS if s in labels and t in labels]
        metafunc.parametrize(
            ("server", "source"), pairs, indirect=["server"], scope="module", ids=[f"{s}-to-{t}" for t, s in pairs]
        )
    elif "server" in metafunc.fixturenames:
        metafunc.parametrize("server", labels, indirect=True, scope="module")


@pytest.fixture(scope="module")
def pool(es_settings):
    made = servers.Servers(es_settings)
    yield made
    made.stop()


@pytest.fixture(scope="module")
def server(request, pool):
    """(label, settings) of a running server of the matrix."""
    return request.param, pool.use(request.param)


@pytest.fixture
def on(server, monkeypatch):
    """The runners' connection pointed at the server; (label, settings, client)."""
    label, settings = server
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH", servers.connection(settings))
    return label, settings, servers.client(settings)


def _backup(tmp_path_factory, label: str, es, prefix: str) -> tuple[str, str, dict]:
    path = tmp_path_factory.mktemp(f"bundle-{label}") / "bundle.tgz"
    made = backup.run_simple_backup(str(path), ("elasticsearch",), DumpOptions(f"{prefix}-*"))
    held = {
        "big": servers.documents(es, f"{prefix}-big"),
        "routed": servers.documents(es, f"{prefix}-routed"),
        "state": servers.state(es, prefix),
    }
    _bundles[label] = (made["path"], made["key"], held)
    return _bundles[label]


def _restore(settings, path: str, key: str) -> dict:
    return restore.run_restore(
        BundleSource.file(path), key, ("elasticsearch",), "replace", settings={"elasticsearch": settings}
    )


def test_round_trip(on, tmp_path_factory):
    label, settings, es = on
    prefix = f"mx{label.replace('.', '').replace('-', '')}"
    servers.clean(es, prefix)
    servers.seed(es, prefix, cluster.server_of(es))
    path, key, held = _backup(tmp_path_factory, label, es, prefix)
    assert len(held["big"]) == servers.BIG_DOCS
    recorded = restore.verify(BundleSource.file(path)).meta["servers"]["elasticsearch"]
    assert recorded == cluster.server_of(es).label, "meta.json does not name the server backed up"
    assert recorded.startswith("opensearch ") == label.startswith("opensearch")
    servers.clean(es, prefix)

    result = _restore(settings, path, key)

    assert result["problems"] == []
    assert servers.documents(es, f"{prefix}-big") == held["big"], "documents, ids or sources differ"
    assert servers.documents(es, f"{prefix}-routed") == held["routed"], "routing differs"
    assert servers.state(es, prefix) == held["state"], "mappings, aliases or templates differ"
    even = es.count(index=f"{prefix}-even")["count"]
    assert even == servers.BIG_DOCS // 2, "the filtered alias lost its filter"
    servers.clean(es, prefix)


def test_migration(on, source):
    """A bundle of the older server `source` (made by its round trip) into this one."""
    label, settings, es = on
    if source not in _bundles:
        pytest.fail(f"no bundle of {source}: its round trip must run first (test_round_trip[{source}])", pytrace=False)
    path, key, held = _bundles[source]
    prefix = f"mx{source.replace('.', '').replace('-', '')}"
    servers.clean(es, prefix)

    result = _restore(settings, path, key)

    assert result["problems"] == []
    assert servers.documents(es, f"{prefix}-big") == held["big"]
    assert servers.documents(es, f"{prefix}-routed") == held["routed"]
    restored = servers.state(es, prefix)
    assert restored["aliases"] == held["state"]["aliases"]
    assert restored["templates"] == held["state"]["templates"]
    assert restored["shards"] == held["state"]["shards"]
    assert es.count(index=f"{prefix}-even")["count"] == servers.BIG_DOCS // 2
    servers.clean(es, prefix)


def test_the_checks_read_every_document_with_its_routing(on):
    """export.document_lines, which the checks and the demo's fingerprint read with, a page at a
    time on this server: every document once, with its routing."""
    label, _, es = on
    index = f"lines{label.replace('.', '').replace('-', '')}"
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(index=index, settings={"number_of_shards": 3, "number_of_replicas": 0})
    try:
        bulk(es, ({"_index": index, "_id": f"d{i}", "_routing": f"r{i % 5}", "_source": {"n": i}} for i in range(2500)))
        es.indices.refresh(index=index)
        lines = list(export.document_lines(es, index, page_size=400))
        assert len(lines) == 2500 and all(line.endswith(b"\n") for line in lines)
        read = {doc["_id"]: (doc["_routing"], doc["_source"]) for doc in map(orjson.loads, lines)}
        assert read == {f"d{i}": (f"r{i % 5}", {"n": i}) for i in range(2500)}
    finally:
        es.options(ignore_status=404).indices.delete(index=index)


def test_a_drill_matches_and_one_of_a_bundle_a_document_short_names_the_index(
    on, pg_settings, storage_settings, backups_settings
):
    """`archivist drill` against this server: a backup taken on it matches, and that bundle forged
    a document short differs, naming the index."""
    label, settings, es = on
    prefix = f"dr{label.replace('.', '').replace('-', '')}"
    servers.clean(es, prefix)
    servers.seed(es, prefix, cluster.server_of(es))
    store = BackupStore(backups_settings)
    made = backup.run_backup(jobs=("elasticsearch",), options=DumpOptions(f"{prefix}-*"))
    servers.clean(es, prefix)  # the drill needs only the bundle
    short, data = one_document_fewer(store.open_bundle(BackupKey.parse(made["key"])).read(), f"{prefix}-routed")
    plant(store, short, data)
    env = dict(os.environ)  # the runners' connections, the search server's among them (`on`)
    try:
        good = archivist(env, "drill", made["key"], timeout=900)
        bad = archivist(env, "drill", short.name, timeout=900)
        verdict = record.read(store, made["key"])
    finally:
        for name in (made["key"], short.name):
            store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, name))
        store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(short.object_key))
        store.s3.delete_object(Bucket=store.bucket, Key=store.object_key(BackupKey.parse(made["key"]).object_key))

    assert good.returncode == 0, good.stdout + good.stderr
    assert f"{made['key']}: restored and matched on " in good.stdout
    assert isinstance(verdict, record.Verdict) and verdict.matched, verdict
    docs = made["counts"]["jobs.elasticsearch"]["indices"]
    assert docs == {f"{prefix}-big": servers.BIG_DOCS, f"{prefix}-routed": 500}
    assert (verdict.checked["indices"], verdict.checked["documents"]) == (2, servers.BIG_DOCS + 500)

    assert bad.returncode == 7, bad.stdout + bad.stderr
    assert f"index {prefix}-routed: 499 documents restored, meta.json says 500" in bad.stdout, bad.stdout
    assert f"index {prefix}-big" not in bad.stdout
    assert scratch_left(pg_settings, settings, storage_settings) == []


def _restore_stream(es, settings, path: str, key: str, prefix: str, name: str) -> str:
    """Restores the bundle's data stream where the target has none of that name; the name it was
    restored as. A server that cannot delete a data stream (servers.py) keeps it, so the restore
    goes under a fresh prefix there. Replace mode: the server holds other tests' templates, which
    the bundle holds too."""
    emptied = servers.drop_streams(es, prefix) or not servers.is_data_stream(es, name)
    options = RestoreOptions() if emptied else RestoreOptions(index_prefix=f"r{secrets.token_hex(3)}-")
    try:
        result = restore.run_restore(
            BundleSource.file(path), key, ("elasticsearch",), "replace", options, settings={"elasticsearch": settings}
        )
        assert result["problems"] == []
        assert servers.is_data_stream(es, options.index_prefix + name), f"{name} was not restored as a data stream"
        return servers.documents(es, options.index_prefix + name)
    finally:
        if options.index_prefix:
            servers.remove_restored(es, options.index_prefix)


def test_data_stream_round_trip(on, tmp_path_factory):
    label, settings, es = on
    if datastreams.stream_templates_refused(es):
        pytest.skip(f"{label} makes no data stream: test_data_stream_refused covers it")
    prefix = f"ds{label.replace('.', '').replace('-', '')}{secrets.token_hex(3)}"  # fresh names every run
    hidden = not servers.deletes_streams(es)  # then backed up by its name (servers.py says why)
    name = servers.seed_stream(es, prefix, hidden)
    held = servers.documents(es, name)
    path = tmp_path_factory.mktemp(f"stream-{label}") / "bundle.tgz"
    made = backup.run_simple_backup(str(path), ("elasticsearch",), DumpOptions(name if hidden else f"{prefix}-*"))
    meta = restore.verify(BundleSource.file(made["path"])).meta
    assert meta["format_version"] == 5
    assert meta["counts"]["jobs.elasticsearch"]["indices"] == {name: servers.STREAM_DOCS}

    restored = _restore_stream(es, settings, made["path"], made["key"], prefix, name)

    assert restored == held, "documents or ids differ"
    servers.drop_streams(es, prefix)


def _main_stream_bundle(es_settings, tmp_path_factory, monkeypatch) -> tuple[str, str, str, dict]:
    """A bundle of a data stream of the stack's 8.19 (made once): (path, key, data stream, documents).
    Elasticsearch 7.17's integ-test-zip makes no data stream, so data streams migrate from 8.19."""
    if not _stream_bundle:
        main = servers.client(es_settings)
        prefix = f"dsmain{secrets.token_hex(3)}"
        name = servers.seed_stream(main, prefix, hidden=not servers.deletes_streams(main))
        with monkeypatch.context() as env:
            env.setenv("AIRFLOW_CONN_ARCHIVIST_ELASTICSEARCH", servers.connection(es_settings))
            path = tmp_path_factory.mktemp("stream-main") / "bundle.tgz"
            made = backup.run_simple_backup(str(path), ("elasticsearch",), DumpOptions(name))
        _stream_bundle.append((made["path"], made["key"], name, servers.documents(main, name)))
        servers.drop_streams(main, prefix)
    return _stream_bundle[0]


def test_data_stream_migration(on, es_settings, tmp_path_factory, monkeypatch):
    """A data stream of the stack's 8.19 into each newer server, or OpenSearch, that makes them."""
    label, settings, es = on
    if label == servers.MAIN or datastreams.stream_templates_refused(es):
        pytest.skip(f"{label}: no migration of a data stream from 8.19 to test")
    path, key, name, held = _main_stream_bundle(es_settings, tmp_path_factory, monkeypatch)

    restored = _restore_stream(es, settings, path, key, name.removesuffix("-ds-logs"), name)

    assert restored == held, "documents or ids differ"
    servers.drop_streams(es, name.removesuffix("-ds-logs"))


def test_data_stream_refused(on, es_settings, tmp_path_factory, monkeypatch):
    """A bundle of the stack's 8.19 holding a data stream, restored into a server that makes none:
    refused before anything is written, naming the data stream and the server's reason."""
    label, settings, es = on
    if datastreams.stream_templates_refused(es) is None:
        pytest.skip(f"{label} makes data streams: test_data_stream_round_trip covers it")
    path, key, name, _ = _main_stream_bundle(es_settings, tmp_path_factory, monkeypatch)
    server = str(cluster.server_of(es))

    with pytest.raises(ArchivistError, match=rf"data stream {name}: {server} has no data streams \(.*data_stream"):
        restore.run_restore(
            BundleSource.file(path), key, ("elasticsearch",), "empty", settings={"elasticsearch": settings}
        )

    template = name.removesuffix("-ds-logs") + "-dst"
    assert not es.indices.exists_index_template(name=template), "a template was written before the refusal"
    assert not es.indices.exists(index=name, expand_wildcards="all")
