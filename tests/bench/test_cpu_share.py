"""bench/cpu_share.py: each process lands in its group, and a run's CPU is counted from its start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import cpu_share  # noqa: E402

pytestmark = pytest.mark.unit

BUSY = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass\n"


@pytest.mark.parametrize(
    ("name", "cmdline", "group"),
    [
        ("postgres", ["postgres: archivist archivist_bench 127.0.0.1(51234) COPY"], "postgres"),
        (
            "java",
            ["/usr/lib/jvm/bin/java", "-Des.path.home=/x/elasticsearch-8.19.7", "org.elasticsearch.bootstrap"],
            "elasticsearch",
        ),
        ("minio", ["/x/bin/minio", "server", "--address", "127.0.0.1:59000"], "minio"),
        ("airflow", ["airflow worker -- 01a24dda-0482-78de-9571-5beef3d5c5f4"], "tasks"),
        ("python3.11", ["/venv/bin/python3.11", "/venv/bin/airflow", "scheduler"], "airflow"),
        ("airflow", ["airflow api_server -- host:127.0.0.1 port:8080"], "airflow"),
        ("python", ["python", "-m", "bench.run"], "other"),
        ("java", ["java", "-jar", "something-else.jar"], "other"),
    ],
)
def test_each_process_lands_in_its_group(name, cmdline, group):
    assert cpu_share.group_of(name, cmdline) == group


def test_a_process_busy_during_the_run_is_counted_and_the_cores_share_is_a_fraction():
    with cpu_share.CpuShare(sample_seconds=0.1) as cpu:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)\n" + BUSY], check=True)
    got = cpu.result()
    # the child (a python of group "other") used a CPU-second; it ended between two readings, so
    # up to one sampling interval of it may be missed
    assert 0.7 <= got["cpu_seconds"]["other"] <= 3.0
    assert 0 < got["busy_share"] <= 1
    assert set(got["cpu_seconds"]) == set(cpu_share.GROUPS)


def test_cpu_used_before_the_run_is_not_counted():
    child = subprocess.Popen([sys.executable, "-c", BUSY + "import time; time.sleep(30)"])
    try:
        proc = psutil.Process(child.pid)
        while sum(proc.cpu_times()[:2]) < 1.0:  # its busy second, before the run
            pass
        with cpu_share.CpuShare(sample_seconds=0.1) as cpu:
            pass
        assert cpu.result()["cpu_seconds"]["other"] < 0.3
    finally:
        child.kill()
        child.wait()


def test_the_report_sentence_names_the_busy_share_and_every_group_that_used_cpu():
    sentence = cpu_share.describe(
        {
            "seconds": 85.5,
            "busy_share": 0.956,
            "cpu_seconds": {
                "elasticsearch": 70.0,
                "postgres": 23.8,
                "minio": 18.8,
                "tasks": 40.1,
                "airflow": 9.7,
                "other": 0.0,
            },
        }
    )
    assert sentence.startswith("the cores were busy 96% of the time")
    assert "Elasticsearch 70.0, PostgreSQL 23.8, MinIO 18.8, task processes 40.1, Airflow's components 9.7" in sentence
    assert "other" not in sentence
