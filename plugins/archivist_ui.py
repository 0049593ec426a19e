"""Airflow plugin: "Backups" in the Airflow UI's navigation, and the API behind it.

- `fastapi_apps`: the archivist_backups API and page, mounted in Airflow's API
  server under /archivist (see archivist_backups/routes.py for the routes and the
  permissions each needs).
- `external_views`: a top-level "Backups" entry in the UI's navigation that shows
  /archivist/ in an iframe of the UI (same origin, so the page's requests carry
  the UI's login cookie).

Every Airflow component imports the plugins folder (the scheduler, the DAG
processor, each task), but only the API server serves the app, so this module
stays light: the app, with its imports of Airflow's API server internals, is
built on the first request that reaches it.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/archivist"


def _root_path() -> str:
    """The path Airflow is served under, from [api] base_url ('' at the root)."""
    try:
        from airflow.configuration import conf

        return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # no configuration to read (e.g. a bare import): Airflow at the root
        return ""


class LazyApp:
    """An ASGI app that builds the archivist_backups FastAPI app on its first request.

    It shares the API server's DagBag and auth manager (from the root app in the
    ASGI scope), so triggering a run uses the very objects Airflow's own routes use.
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _build(self, root: Any) -> Any:
        with self._lock:
            if self._app is None:
                from archivist_backups.app import create_app

                app = create_app()
                for name in ("dag_bag", "auth_manager"):
                    value = getattr(getattr(root, "state", None), name, None)
                    if value is not None:
                        setattr(app.state, name, value)
                if getattr(app.state, "dag_bag", None) is None:
                    from airflow.api_fastapi.common.dagbag import create_dag_bag

                    app.state.dag_bag = create_dag_bag()
                self._app = app
        return self._app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        app = self._app or self._build(scope.get("app"))
        await app(scope, receive, send)

    def __repr__(self) -> str:
        return "archivist_backups.app:create_app (built on first request)"


class ArchivistBackupsPlugin(AirflowPlugin):
    name = "archivist_backups"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "archivist backups"}]
    external_views = [
        {
            "name": "Backups",
            "href": f"{_root_path()}{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "backups",
            "nav_top_level": True,  # its own entry, not folded into a "Plugins" menu
            "icon": f"{_root_path()}{URL_PREFIX}/static/icon.svg",
            "icon_dark_mode": f"{_root_path()}{URL_PREFIX}/static/icon-dark.svg",
        }
    ]
