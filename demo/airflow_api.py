"""A small client for Airflow 3's REST API (v2), for scripts and end-to-end tests.

It logs in to the SimpleAuthManager with `POST /auth/token`, keeps the JWT in
memory only (it is never logged) and logs in again once when the server answers
401, so a long `wait` outlives the token. Dag runs are triggered with a null
`logical_date`, which Airflow 3 requires for manual runs of unscheduled DAGs
and allows for every DAG.

Defaults come from the local stack's environment (`.local/env.sh`): the URL from
`AIRFLOW__API__BASE_URL`, the user from `ARCHIVIST_AIRFLOW_USER` (else `admin`),
the password from `ARCHIVIST_AIRFLOW_PASSWORD`, else from the SimpleAuthManager
passwords file named by `AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE`.

    api = AirflowClient()
    api.unpause("archivist_backup")
    run_id = api.trigger("archivist_backup", {"jobs": ["postgres"]})
    assert api.wait("archivist_backup", run_id, timeout=600) == "success"
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any
from urllib.parse import quote

import requests

from archivist.errors import ArchivistError, UnreachableError

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USER = "admin"
FINISHED_STATES = frozenset({"success", "failed"})
PAGE = 100


class AirflowAPIError(ArchivistError):
    """The Airflow API answered with an error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status next to the message."""
        super().__init__(message)
        self.status = status


class AirflowTimeoutError(AirflowAPIError):
    """A wait ran out of time before the run or DAG got where it should."""


def password_of(username: str) -> str:
    """The user's password from the SimpleAuthManager passwords file, or ''."""
    path = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "")
    if not path or not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    return str(json.loads(text).get(username, "")) if text else ""


def _seg(value: str) -> str:
    """Quote one path segment (run ids contain ':' and '+')."""
    return quote(value, safe="")


class AirflowClient:
    """An authenticated session against one Airflow API server."""

    def __init__(
        self,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        """Remember where and as whom to log in; the first call logs in."""
        self.base_url = (base_url or os.environ.get("AIRFLOW__API__BASE_URL") or DEFAULT_URL).rstrip("/")
        self.username = username or os.environ.get("ARCHIVIST_AIRFLOW_USER") or DEFAULT_USER
        self._password = password if password is not None else os.environ.get("ARCHIVIST_AIRFLOW_PASSWORD", "")
        if not self._password:
            self._password = password_of(self.username)
        self.request_timeout = request_timeout
        self._session = requests.Session()
        self._token: str | None = None

    def login_line(self) -> str:
        """Who the demo logged in as, and with what, for the closing lines a user copies."""
        return f"user {self.username}, password {self._password}"

    def __repr__(self) -> str:
        """Show the server and user, never the password or token."""
        return f"AirflowClient(base_url={self.base_url!r}, username={self.username!r})"

    def login(self) -> None:
        """Get a JWT from `POST /auth/token` and use it for the following calls."""
        if not self._password:
            raise AirflowAPIError(
                f"no password for Airflow user {self.username!r}: set ARCHIVIST_AIRFLOW_PASSWORD "
                "or AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
            )
        resp = self._send("POST", "/auth/token", json={"username": self.username, "password": self._password})
        if resp.status_code != 201:
            raise AirflowAPIError(
                f"login as {self.username!r} at {self.base_url} failed: HTTP {resp.status_code} {_detail(resp)}",
                resp.status_code,
            )
        self._token = resp.json()["access_token"]
        log.debug("logged in to %s as %s", self.base_url, self.username)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; a connection failure becomes UnreachableError."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            return self._session.request(
                method, self.base_url + path, headers=headers, timeout=self.request_timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise UnreachableError(f"Airflow API at {self.base_url} unreachable: {type(exc).__name__}") from exc

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API (logging in first, and again once on 401); return the decoded JSON body."""
        if self._token is None:
            self.login()
        resp = self._send(method, path, **kwargs)
        if resp.status_code == 401:
            self.login()
            resp = self._send(method, path, **kwargs)
        if not resp.ok:
            raise AirflowAPIError(f"{method} {path}: HTTP {resp.status_code} {_detail(resp)}", resp.status_code)
        return resp.json() if resp.content else None

    def health(self) -> dict[str, Any]:
        """The `/api/v2/monitor/health` report (needs no login)."""
        resp = self._send("GET", "/api/v2/monitor/health")
        if not resp.ok:
            raise AirflowAPIError(f"health: HTTP {resp.status_code} {_detail(resp)}", resp.status_code)
        return resp.json()

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG's details as the API server knows them (404 until first parsed)."""
        return self.request("GET", f"/api/v2/dags/{_seg(dag_id)}")

    def wait_for_dag(self, dag_id: str, timeout: float = 120, poll: float = 2) -> dict[str, Any]:
        """Wait until the DAG processor has parsed `dag_id`; return its details."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except AirflowAPIError as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() >= deadline:
                raise AirflowTimeoutError(f"DAG {dag_id!r} not parsed within {timeout:g}s", 404)
            time.sleep(poll)

    def unpause(self, dag_id: str) -> None:
        """Unpause the DAG so its runs get scheduled."""
        self.request(
            "PATCH", f"/api/v2/dags/{_seg(dag_id)}", params={"update_mask": "is_paused"}, json={"is_paused": False}
        )
        log.info("unpaused DAG %s", dag_id)

    def pause(self, dag_id: str) -> None:
        """Pause the DAG: the scheduler starts no new run of it."""
        self.request(
            "PATCH", f"/api/v2/dags/{_seg(dag_id)}", params={"update_mask": "is_paused"}, json={"is_paused": True}
        )
        log.info("paused DAG %s", dag_id)

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> None:
        """Mark a run `success` or `failed` (or `queued` again), as the UI's "Mark as" does."""
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}"
        self.request("PATCH", path, params={"update_mask": "state"}, json={"state": state})
        log.info("marked DAG %s run %s %s", dag_id, run_id, state)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a manual run of the DAG with `conf`; return its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        run = self.request("POST", f"/api/v2/dags/{_seg(dag_id)}/dagRuns", json=body)
        log.info("triggered DAG %s: run %s", dag_id, run["dag_run_id"])
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The dag run's details, `state` among them."""
        return self.request("GET", f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")

    def wait(self, dag_id: str, run_id: str, timeout: float = 600, poll: float = 2) -> str:
        """Poll the run until it is `success` or `failed`; return that state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.run(dag_id, run_id)["state"]
            if state in FINISHED_STATES:
                log.info("DAG %s run %s finished: %s", dag_id, run_id, state)
                return state
            if time.monotonic() >= deadline:
                raise AirflowTimeoutError(f"DAG {dag_id} run {run_id} still {state} after {timeout:g}s")
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones included), each with `task_id`, `state`, `map_index`."""
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        items: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", path, params={"limit": PAGE, "offset": len(items)})
            items.extend(page["task_instances"])
            if not page["task_instances"] or len(items) >= page["total_entries"]:
                return items

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value a task pushed (its return value by default)."""
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}/xcomEntries/{_seg(key)}"
        )
        value = self.request("GET", path, params={"deserialize": True})["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def _detail(resp: requests.Response) -> str:
    """The error detail of an API answer, shortened."""
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        detail = resp.text
    return str(detail)[:500]
