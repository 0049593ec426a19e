"""Running one measured command: wall time, and the peak resident memory of its whole process tree.

A sampler thread sums the RSS of the command's process and all its
descendants every 50 ms (psutil), so a pipeline (`pg_dump | gzip`) or a tool
that forks workers is measured as a whole, like a task process with its children;
the peak is never below the command's own process's high-water mark (VmHWM), which
catches spikes between two samples.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

SAMPLE_SECONDS = 0.05
# Before a measurement the machine is idle when all its cores together are busy less than this
# (a fraction of one core) for IDLE_SECONDS in a row.
IDLE_BELOW_CORES = 0.15
IDLE_SECONDS = 2
IDLE_MOST_SECONDS = 90  # then the measurement runs anyway, marked as started on a busy machine


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = field(default="", repr=False)

    def check(self) -> Measurement:
        if self.returncode != 0:
            raise RuntimeError(
                f"{self.label} failed (exit {self.returncode}):\n{self.stderr[-4000:]}\n{self.stdout[-2000:]}"
            )
        return self


def median_round(rounds: list[dict], key: str) -> dict:
    """The round whose `key` is the median (the lower middle one of an even count): a whole round
    is kept, so its other figures stay those of one measurement."""
    return sorted(rounds, key=lambda r: r[key])[(len(rounds) - 1) // 2]


@dataclass(frozen=True)
class IdleWait:
    seconds: float
    gave_up: bool  # still busy after the most it waits: what follows counts other work too


def wait_for_idle(
    most_seconds: float = IDLE_MOST_SECONDS, log=None, apart_from: Callable[[], float] | None = None
) -> IdleWait:
    """Waits until the machine has finished what the previous step left it doing (the kernel
    writing back the gigabyte a step wrote, Elasticsearch merging the segments of a load, MinIO
    emptying its trash after a bucket was wiped) so that this work is not counted against whichever
    command happens to run next. Gives up waiting for the CPU after `most_seconds`, and says so:
    the caller measures anyway and marks the measurement. `apart_from` gives the CPU seconds used so
    far by processes whose own idle work is part of what is measured (a running Airflow's), which
    the wait does not count."""
    started = time.monotonic()
    os.sync()  # else the write-back starts 30 s after the writes, in the middle of the next step
    quiet = 0
    while quiet < IDLE_SECONDS and time.monotonic() - started < most_seconds:
        apart, at = apart_from() if apart_from else 0.0, time.monotonic()
        busy_cores = psutil.cpu_percent(interval=1) / 100 * (psutil.cpu_count() or 1)
        if apart_from:
            busy_cores -= (apart_from() - apart) / (time.monotonic() - at)
        quiet = quiet + 1 if busy_cores < IDLE_BELOW_CORES else 0
    waited = time.monotonic() - started
    gave_up = quiet < IDLE_SECONDS
    if log is not None and waited > IDLE_SECONDS + 1:
        log(f"waited {waited:.0f}s for the machine to be idle" + (" (gave up)" if gave_up else ""))
    return IdleWait(round(waited, 1), gave_up)


def own_peak_rss(pid: int) -> int:
    """The kernel's high-water mark of the process's own RSS (VmHWM), so a spike shorter than the
    sampling interval still counts: a task process holds all of its memory itself, and a short run
    gives the sampler fewer chances to see a spike than a long one."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree_sum(proc: psutil.Process, each: Callable[[psutil.Process], float]) -> float:
    """`each` summed over the process and its descendants; one that ends meanwhile counts 0."""
    try:
        members = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0.0
    for p in members:
        try:
            total += each(p)
        except psutil.Error:
            pass
    return total


def _cpu_seconds(p: psutil.Process) -> float:
    c = p.cpu_times()
    return c.user + c.system + c.children_user + c.children_system


def tree_cpu_seconds(proc: psutil.Process) -> float:
    """CPU seconds (user and system) used so far by the process and its descendants, those that
    have ended and been waited for included."""
    return _tree_sum(proc, _cpu_seconds)


def tree_rss(proc: psutil.Process) -> int:
    return int(_tree_sum(proc, lambda p: p.memory_info().rss))


def run(
    label: str,
    args: list[str] | str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    shell: bool = False,
    timeout: float | None = None,
    log=None,
    inherit_env: bool = True,
) -> Measurement:
    """Runs the command to completion; stdout and stderr are kept (both go to files, never a pipe that fills).
    `env` adds to this process's environment, or with `inherit_env=False` is the whole environment."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        popen = subprocess.Popen(
            args,
            stdout=out,
            stderr=err,
            env={**(os.environ if inherit_env else {}), **(env or {})},
            cwd=cwd,
            shell=shell,
            executable="/bin/bash" if shell else None,
        )
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            try:
                proc = psutil.Process(popen.pid)
            except psutil.Error:
                return
            while not stop.is_set():
                peak = max(peak, tree_rss(proc), own_peak_rss(popen.pid))
                stop.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            code = popen.wait()
        seconds = time.monotonic() - started
        stop.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        m = Measurement(
            label,
            seconds,
            round(peak / 1024 / 1024, 1),
            code,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if log:
        log(f"{label}: {m.seconds:.2f}s, peak RSS {m.peak_rss_mb:.0f} MB" + (f", exit {code}" if code else ""))
    return m
