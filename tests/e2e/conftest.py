"""Fixtures of the end-to-end tier: each test module starts its services once and always stops them.

* ``airflow_stack``: Airflow (api-server, scheduler, dag-processor) on the example DAGs, parametrized over
  the metadata database (``sqlite``, ``postgres``: skipped without Debian's postgresql); a test can narrow
  it with ``@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)`` and still share the stack.
* ``spark_cluster``: a Spark standalone master and worker.
* ``spark_connect``: a Spark Connect server.
* ``chromium``: skips a test (``usefixtures``) when Debian's chromium is not installed.
* ``spark_airflow_stack``: Airflow on SQLite whose connection ``ppf_spark`` points at ``spark_cluster`` and
  ``ppf_spark_connect`` at ``spark_connect``; the cluster starts in the background while Airflow starts
  (they are independent until a task runs).

Every stack's DAG folder holds the example DAGs and this tier's own test DAGs (``tests/e2e/dags``: a task
whose retries run out, a config error, a wide pipeline).

Service logs stay under pytest's temp folder (``service-logs/``) and are quoted in failure messages. At
the end of the session no process started by this tier may be alive: the check fails the session and
kills what it found.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.harness import (
    EXAMPLE_DAGS,
    AirflowStack,
    SparkConnectServer,
    SparkStandalone,
    copy_dags,
    kill_survivors,
)
from tests.helpers.system_packages import CHROMIUM, POSTGRESQL, require

# EXAMPLE_DAGS and copy_dags live in the harness now (the demo uses them too); still importable from here.
__all__ = ["E2E_DAGS", "EXAMPLE_DAGS", "copy_dags", "running_stack"]

#: DAGs of this tier only, added to the example DAGs of every stack.
E2E_DAGS = Path(__file__).resolve().parent / "dags"


def _report(text: str) -> None:
    """Timings go to the terminal even when output is captured (shown with -s or in the log)."""
    sys.stderr.write(f"\n[e2e] {text}\n")


@pytest.fixture(scope="session", autouse=True)
def _no_surviving_processes() -> Iterator[None]:
    """Fail the session if any process started by the e2e harness outlives it (and kill those)."""
    yield
    time.sleep(0.5)
    leftovers = kill_survivors()
    if leftovers:
        pytest.fail("processes started by the e2e tests survived their fixtures:\n" + "\n".join(leftovers))


@contextmanager
def running_stack(
    root: Path, backend: str, extra_env: dict[str, str] | None = None, name: str | None = None
) -> Iterator[AirflowStack]:
    """Start an :class:`AirflowStack` on a copy of the example DAGs; stop it whatever happens."""
    dags = copy_dags(root / "dags")
    for dag_file in E2E_DAGS.glob("ppf_*.py"):
        shutil.copy2(dag_file, dags / dag_file.name)
    stack = AirflowStack(root, backend=backend, dags_folder=dags, extra_env=extra_env, name=name)
    began = time.monotonic()
    try:
        stack.start()
        _report(f"{stack.name}: started in {stack.timings['start']:.1f} s ({stack.timings})")
        yield stack
    finally:
        ran = time.monotonic() - began
        killed = stack.stop()
        _report(
            f"{stack.name}: stopped in {stack.timings['stop']:.1f} s, {ran:.1f} s after start began"
            + (f"; needed SIGKILL: {killed}" if killed else "")
        )


@pytest.fixture(scope="session")
def chromium() -> None:
    """Skip a browser test when Debian's chromium is missing, before any service of its module starts."""
    require(CHROMIUM)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def airflow_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """Airflow services on the example DAGs with a ``sqlite`` or ``postgres`` metadata DB, once per module."""
    backend = str(request.param)
    if backend == "postgres":
        require(POSTGRESQL)
    with running_stack(tmp_path_factory.mktemp(f"airflow-{backend}"), backend) as stack:
        yield stack


@pytest.fixture(scope="module")
def _spark_cluster_starting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    """A Spark standalone master and a 2-core worker on loopback, starting in the background."""
    cluster = SparkStandalone(tmp_path_factory.mktemp("spark-standalone")).start_in_background()
    try:
        yield cluster
    finally:
        killed = cluster.stop()
        _report(
            f"spark standalone: started in {cluster.timings.get('start', -1):.1f} s, "
            f"stopped in {cluster.timings.get('stop', 0):.1f} s" + (f"; needed SIGKILL: {killed}" if killed else "")
        )


@pytest.fixture(scope="module")
def spark_cluster(_spark_cluster_starting: SparkStandalone) -> SparkStandalone:
    """The Spark standalone cluster of this module, up and with an ALIVE worker."""
    return _spark_cluster_starting.wait_started()


@pytest.fixture(scope="module")
def spark_airflow_stack(
    _spark_cluster_starting: SparkStandalone,
    spark_connect: SparkConnectServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AirflowStack]:
    """Airflow (SQLite) with connections ``ppf_spark`` (the Spark cluster, which starts meanwhile) and
    ``ppf_spark_connect`` (the Spark Connect server)."""
    cluster = _spark_cluster_starting
    connection = {
        "conn_type": "spark",
        "host": "spark://127.0.0.1",
        "port": cluster.port,
        "extra": {"spark.executor.memory": "512m", "spark.cores.max": "1"},
    }
    connect = {"conn_type": "spark_connect", "host": "127.0.0.1", "port": spark_connect.port}
    extra_env = {
        "AIRFLOW_CONN_PPF_SPARK": json.dumps(connection),
        "AIRFLOW_CONN_PPF_SPARK_CONNECT": json.dumps(connect),
    }
    with running_stack(tmp_path_factory.mktemp("airflow-spark"), "sqlite", extra_env, "airflow-spark") as stack:
        cluster.wait_started()
        yield stack


@pytest.fixture(scope="module")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkConnectServer]:
    """A Spark Connect server on loopback, once per module."""
    server = SparkConnectServer(tmp_path_factory.mktemp("spark-connect"))
    try:
        server.start()
        _report(f"spark connect: started in {server.timings['start']:.1f} s")
        yield server
    finally:
        killed = server.stop()
        _report(
            f"spark connect: stopped in {server.timings.get('stop', 0):.1f} s"
            + (f"; needed SIGKILL: {killed}" if killed else "")
        )
