"""The Backups page's routes, mounted in Airflow's API server under /archivist.

Every /api route authenticates and authorizes exactly like Airflow's own REST
API, with the same dependencies (airflow.api_fastapi.core_api.security): a
bearer JWT or the UI's `_token` cookie, then the auth manager's decision on the
DAG the route is about.

    GET  /archivist/                          the page (static; its data come from the routes below)
    GET  /archivist/api/me                    who is calling and whether they may start a restore
    GET  /archivist/api/bundles               bundles, newest first, with their meta.json summarized
                                              and the retention rules that keep each
    GET  /archivist/api/bundles/{key}/meta    one bundle's meta.json
    POST /archivist/api/bundles/{key}/verify  trigger archivist_restore with dry_run true
    POST /archivist/api/bundles/{key}/restore trigger archivist_restore with {jobs, mode, dry_run}
    GET  /archivist/api/runs                  recent runs of archivist_backup and archivist_restore

Reading bundles needs read access to archivist_backup's runs (which made them);
reading runs needs read access to both DAGs' runs; starting a verify or a
restore needs permission to create runs of archivist_restore, like
`POST /api/v2/dags/archivist_restore/dagRuns`. The run is created in-process by
Airflow's own trigger route function, so it is validated against the DAG's
params and recorded exactly as one triggered from the REST API or UI.

The data come from catalog.py (the bucket) and dag_runs.py (Airflow's runs); this
module only turns HTTP into their calls and their errors into status codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from airflow.api_fastapi.app import API_ROOT_PATH, get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.dagbag import DagBagDep
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from archivist import config
from archivist.errors import ArchivistError, BackupNotFoundError
from archivist.modes import MODES, UNCHECKED_HELP
from archivist.transport.backup_bucket import StoredBundle
from archivist_backups import dag_runs
from archivist_backups.catalog import Catalog, retention_rules, run_url
from archivist_backups.dag_runs import BACKUP_DAG, RESTORE_DAG

STATIC = Path(__file__).with_name("static")
UI_ROOT = API_ROOT_PATH or "/"  # where Airflow's UI lives, from [api] base_url

router = APIRouter()

# --- dependencies -------------------------------------------------------------------------

can_read_bundles = requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN, param_dag_id=BACKUP_DAG)
can_read_restores = requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN, param_dag_id=RESTORE_DAG)
can_restore = requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN, param_dag_id=RESTORE_DAG)


def json_request(request: Request) -> None:
    """POSTs must say they carry JSON: a cross-site form cannot, so the UI's cookie cannot be ridden."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")


def bucket_catalog() -> Catalog:
    """The catalog of the bucket the archivist_backups connection names."""
    try:
        settings = config.load_backups()
    except ArchivistError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"backup bucket not configured: {exc}") from None
    return Catalog.of(settings)


CatalogDep = Annotated[Catalog, Depends(bucket_catalog)]


@contextmanager
def bucket_errors() -> Iterator[None]:
    """A bundle that is not there is 404; anything else the bucket fails with is 502."""
    try:
        yield
    except BackupNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ArchivistError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None


def find_bundle(key: str, cat: CatalogDep) -> StoredBundle:
    """The bundle the path names (with or without .tgz); 404 naming the closest keys when absent."""
    with bucket_errors():
        return cat.locate(key)


BundleDep = Annotated[StoredBundle, Depends(find_bundle)]


class TriggeredRun(BaseModel):
    dag_id: str
    dag_run_id: str
    state: str | None
    url: str
    conf: dict[str, Any]


class Restores:
    """Starts archivist_restore runs for the caller, through Airflow's own trigger route."""

    def __init__(self, request: Request, user: GetUserDep, session: SessionDep, dag_bag: DagBagDep, cat: CatalogDep):
        self.request, self.user, self.session, self.dag_bag, self.cat = request, user, session, dag_bag, cat

    def start(self, key: str, conf: dict[str, Any], note: str) -> TriggeredRun:
        # The bundle is looked up here, not as a dependency, so a bad body is refused before the bucket is listed.
        stored = find_bundle(key, self.cat)
        conf = {"key": stored.key.name, **conf}
        # Airflow's own POST /api/v2/dags/{dag_id}/dagRuns, called in-process: same checks
        # (DAG present, no import errors, manual runs allowed, params valid), same run record.
        run = trigger_dag_run(
            dag_id=RESTORE_DAG,
            body=TriggerDAGRunPostBody(logical_date=None, conf=conf, note=note),
            dag_bag=self.dag_bag,
            user=self.user,
            session=self.session,
            request=self.request,
        )
        dag_runs.audit_trigger(self.session, self.user.get_name(), run.run_id, conf)
        return TriggeredRun(
            dag_id=RESTORE_DAG,
            dag_run_id=run.run_id,
            state=str(run.state) if run.state else None,
            url=run_url(UI_ROOT, RESTORE_DAG, run.run_id) or "",
            conf=conf,
        )


RestoresDep = Annotated[Restores, Depends()]

# --- request bodies -----------------------------------------------------------------------

JobName = Literal["postgres", "elasticsearch", "storage"]
Jobs = Annotated[list[JobName], Field(default_factory=lambda: list(config.JOBS), min_length=1)]
AllowUnchecked = Annotated[bool, Field(description=UNCHECKED_HELP)]


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: Jobs
    allow_unchecked: AllowUnchecked = False


class RestoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: Jobs
    mode: Literal[MODES] = "empty"  # type: ignore[valid-type]
    dry_run: bool = False
    indices: list[str] = Field(default_factory=list)
    allow_unchecked: AllowUnchecked = False


# --- the page -----------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The Backups page; public like Airflow's own index.html, its data need a login."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/index.html", include_in_schema=False)
def page_alias(request: Request) -> RedirectResponse:
    return RedirectResponse(str(request.url_for("page")))


# --- the API ------------------------------------------------------------------------------


@router.get("/api/me")
def me(user: GetUserDep) -> dict[str, Any]:
    """The caller and what the page may offer them."""
    am = get_auth_manager()

    def allowed(method: str, dag_id: str) -> bool:
        return am.is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
            user=user,
        )

    return {
        "user": user.get_name(),
        "can_read_bundles": allowed("GET", BACKUP_DAG),
        "can_read_restores": allowed("GET", RESTORE_DAG),
        "can_restore": allowed("POST", RESTORE_DAG),
        "ui_root": UI_ROOT,
    }


@router.get("/api/bundles", dependencies=[Depends(can_read_bundles)])
def list_bundles(cat: CatalogDep) -> dict[str, Any]:
    """Every bundle in the backup bucket, newest first, with its meta.json summarized."""
    with bucket_errors():
        bundles = cat.list(UI_ROOT)
    return {
        "bucket": cat.store.bucket,
        "bundles": bundles,
        "total_entries": len(bundles),
        "retention": retention_rules(),
    }


@router.get("/api/bundles/{key}/meta", dependencies=[Depends(can_read_bundles)])
def bundle_meta(stored: BundleDep, cat: CatalogDep) -> dict[str, Any]:
    """One bundle's meta.json, as stored."""
    meta, error = cat.meta(stored)
    if meta is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot read meta.json: {error}")
    return meta


@router.post("/api/bundles/{key}/verify", dependencies=[Depends(can_restore), Depends(json_request)])
def verify(key: str, restores: RestoresDep, body: VerifyBody | None = None) -> TriggeredRun:
    """Starts a dry run of archivist_restore: the whole bundle is checked, nothing is written."""
    body = body or VerifyBody()
    conf = dag_runs.restore_conf(body.jobs, "empty", dry_run=True, allow_unchecked=body.allow_unchecked)
    return restores.start(key, conf, f"Verify of {key} from the Backups page")


@router.post("/api/bundles/{key}/restore", dependencies=[Depends(can_restore), Depends(json_request)])
def restore(key: str, body: RestoreBody, restores: RestoresDep) -> TriggeredRun:
    """Starts archivist_restore of the bundle with the jobs and mode chosen."""
    conf = dag_runs.restore_conf(body.jobs, body.mode, body.dry_run, body.allow_unchecked, body.indices)
    what = "Dry-run restore" if body.dry_run else f"Restore ({body.mode})"
    return restores.start(key, conf, f"{what} of {key} from the Backups page")


@router.get("/api/runs", dependencies=[Depends(can_read_bundles), Depends(can_read_restores)])
def runs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
    """The latest runs of archivist_backup and archivist_restore, each list newest first."""
    return {
        "dags": {dag_id: dag_runs.latest_runs(session, dag_id, limit, UI_ROOT) for dag_id in (BACKUP_DAG, RESTORE_DAG)}
    }
