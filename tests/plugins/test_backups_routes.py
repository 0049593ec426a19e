"""The Backups page's router in-process, with Airflow's login and the bucket stood in for:
the routes the page calls, what each failure of the bucket becomes, and that a bad request
is refused before the bucket is asked. The same API in a real server: test_backups_api.py."""

from __future__ import annotations

from typing import get_args

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

import tests.plugins.backups_server  # noqa: F401  (puts plugins/ on sys.path)
from archivist.errors import BackupNotFoundError, ConfigurationError, UnreachableError
from archivist_backups import routes  # noqa: E402
from archivist_backups.app import create_app  # noqa: E402

KEY = "bundle-2026-01-01-AAAAAAAAAAA"


class FakeCatalog:
    """A catalog whose every answer the test chooses, and which records what was asked."""

    def __init__(self, located: Exception | None = None, meta: tuple = ({"format_version": 1}, None)):
        self.asked: list[str] = []
        self._located, self._meta = located, meta

    def locate(self, key: str):
        self.asked.append(key)
        if self._located is not None:
            raise self._located
        return key

    def meta(self, stored):
        return self._meta


def _dependency(alias):
    return get_args(alias)[1].dependency


def client(cat: FakeCatalog) -> TestClient:
    app = create_app()
    for allowed in (routes.can_read_bundles, routes.can_read_restores, routes.can_restore):
        app.dependency_overrides[allowed] = lambda: None
    for alias in (routes.GetUserDep, routes.SessionDep, routes.DagBagDep):
        app.dependency_overrides[_dependency(alias)] = lambda: None
    app.dependency_overrides[routes.bucket_catalog] = lambda: cat
    return TestClient(app)


def test_the_router_serves_every_route_the_page_calls():
    served = {(method, route.path) for route in create_app().routes for method in getattr(route, "methods", ())}
    api = "/api/bundles/{key}"
    assert {
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/api/me"),
        ("GET", "/api/bundles"),
        ("GET", f"{api}/meta"),
        ("POST", f"{api}/verify"),
        ("POST", f"{api}/restore"),
        ("GET", "/api/runs"),
    } <= served


@pytest.mark.parametrize(
    "error, code",
    [
        (BackupNotFoundError("no bundle named 'x'; closest: y"), 404),
        (UnreachableError("cannot list bucket 'b': timeout"), 502),
    ],
)
def test_a_failure_to_find_the_bundle_keeps_its_message(error, code):
    got = client(FakeCatalog(located=error)).get(f"/api/bundles/{KEY}/meta")
    assert (got.status_code, got.json()) == (code, {"detail": str(error)})


def test_an_unreadable_meta_json_is_422():
    got = client(FakeCatalog(meta=(None, "the bundle is damaged"))).get(f"/api/bundles/{KEY}/meta")
    assert (got.status_code, got.json()) == (422, {"detail": "cannot read meta.json: the bundle is damaged"})


def test_an_unconfigured_bucket_is_503(monkeypatch):
    def unconfigured():
        raise ConfigurationError("no connection archivist_backups")

    monkeypatch.setattr(routes.config, "load_backups", unconfigured)
    with pytest.raises(HTTPException) as raised:
        routes.bucket_catalog()
    assert (raised.value.status_code, raised.value.detail) == (
        503,
        "backup bucket not configured: no connection archivist_backups",
    )


def test_a_bad_body_or_a_form_is_refused_before_the_bucket_is_asked():
    cat = FakeCatalog()
    http = client(cat)
    assert http.post(f"/api/bundles/{KEY}/restore", json={"mode": "wipe-everything"}).status_code == 422
    assert http.post(f"/api/bundles/{KEY}/verify", json={"jobs": []}).status_code == 422
    form = http.post(f"/api/bundles/{KEY}/verify", data={"jobs": "postgres"})
    assert (form.status_code, form.json()) == (415, {"detail": "send the body as application/json"})
    assert cat.asked == []
