"""The Backups page's FastAPI app: the routes of routes.py and the page's static files.

Built by plugins/archivist_ui.py on the first request that reaches /archivist.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from archivist_backups.routes import STATIC, router


def create_app() -> FastAPI:
    app = FastAPI(title="archivist backups", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    return app
