"""The hostname a worker's task instances record (Airflow's `[core] hostname_callable`).

The local Celery stack (scripts/airflow.sh) runs its workers on one machine, each with a loopback
address of its own in ARCHIVIST_WORKER_HOST: the address tells the workers apart in the task
instances, and the API server fetches a task's log from the log server listening there.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("ARCHIVIST_WORKER_HOST") or socket.getfqdn()
