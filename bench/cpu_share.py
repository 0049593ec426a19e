"""Where the machine's cores go while a DAG run goes: how busy they were, and the CPU-seconds of
each group of processes (each server, Airflow's own components, the task processes).

On two cores a restore DAG run is bound by the CPU all of them need, not by waiting
(docs/PERFORMANCE.md#restore-end-to-end-on-two-cores): this says which of them needed it.
Processes are read once a second, a process's group and its CPU time at its last reading kept, so
one that ends between two readings loses up to a second of its CPU: the groups' figures are lower
bounds, the machine's busy share is exact (/proc/stat).
"""

from __future__ import annotations

import threading
import time

import psutil

SAMPLE_SECONDS = 1.0
# The groups, in the order the report names them.
LABELS = {
    "elasticsearch": "Elasticsearch",
    "postgres": "PostgreSQL",
    "minio": "MinIO",
    "tasks": "task processes",
    "airflow": "Airflow's components",
    "other": "other",
}
GROUPS = tuple(LABELS)


def group_of(name: str, cmdline: list[str]) -> str:
    """The group of a process by its name and command line. A task process (and the executor's
    worker that starts it) calls itself `airflow worker -- …`; the scheduler, the API server, the
    DAG processor and the triggerer run under Airflow's own entry point."""
    words = " ".join(cmdline[:3])
    if name.startswith("postgres"):  # the server's backends name themselves "postgres: …"
        return "postgres"
    if name == "java" and any("elasticsearch" in part for part in cmdline):
        return "elasticsearch"
    if name.startswith("minio"):
        return "minio"
    if words.startswith("airflow worker"):
        return "tasks"
    if "airflow" in words:
        return "airflow"
    return "other"


def _busy_idle() -> tuple[float, float]:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle, idle


class CpuShare:
    """Use as a context manager around what is measured; `result()` after it."""

    def __init__(self, sample_seconds: float = SAMPLE_SECONDS) -> None:
        self._every = sample_seconds
        self._start: dict[int, float] = {}  # CPU time already used by a process at the start
        self._last: dict[int, tuple[str, float]] = {}  # each process's group and CPU time when last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._me = psutil.Process().pid

    def _read(self) -> None:
        for proc in psutil.process_iter():
            if proc.pid == self._me:
                continue
            try:
                with proc.oneshot():
                    cpu = proc.cpu_times()
                    used = cpu.user + cpu.system
                    group = self._last[proc.pid][0] if proc.pid in self._last else group_of(proc.name(), proc.cmdline())
            except psutil.Error:
                continue
            self._last[proc.pid] = (group, used)

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self._read()

    def __enter__(self) -> CpuShare:
        self._read()
        self._start = {pid: used for pid, (_, used) in self._last.items()}
        self._began, self._busy_idle = time.monotonic(), _busy_idle()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        self._seconds = time.monotonic() - self._began
        busy, idle = _busy_idle()
        self._busy, self._idle = busy - self._busy_idle[0], idle - self._busy_idle[1]

    def result(self) -> dict:
        """The cores' busy share over the run, and each group's CPU-seconds in it."""
        by_group = dict.fromkeys(GROUPS, 0.0)
        for pid, (group, used) in self._last.items():
            by_group[group] += used - self._start.get(pid, 0.0)
        total = self._busy + self._idle
        return {
            "seconds": round(self._seconds, 1),
            "busy_share": round(self._busy / total, 3) if total else 0.0,
            "cpu_seconds": {group: round(max(seconds, 0.0), 1) for group, seconds in by_group.items()},
        }


def describe(cpu: dict) -> str:
    """One sentence for the report: how busy the cores were, and who kept them busy."""
    groups = ", ".join(
        f"{LABELS[group]} {cpu['cpu_seconds'][group]:.1f}" for group in GROUPS if cpu["cpu_seconds"].get(group)
    )
    return f"the cores were busy {cpu['busy_share']:.0%} of the time; CPU-seconds: {groups}"
