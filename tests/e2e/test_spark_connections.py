"""Pipelines on real Spark services: the example DAG ``ppf_spark_connection`` reached through Airflow
connections, and checkpoint & resume across processes over Spark Connect.

* ``ppf_spark`` (type ``spark``): a standalone master. The driver runs inside the Airflow task process;
  executors run in the standalone worker.
* ``ppf_spark_connect`` (type ``spark_connect``): a Spark Connect server. The task process is a thin client;
  the server's driver runs every query.

Everything is on this machine, so local paths (the output and the checkpoint's saved views) are visible to
all processes.

Over Spark Connect, temp views live in the server-side session of one client, so they are gone for the
next ``ppf run`` process exactly as in a classic retry: the saved copies must bring them back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.e2e.harness import AirflowStack, SparkConnectServer, SparkStandalone
from tests.spark.resume_support import (
    attempt,
    events,
    load_state,
    orders_pipeline,
    run_attempt,
    saved_copies,
    statuses,
    write_orders,
)

DAG_ID = "ppf_spark_connection"
TASK_ID = "squares"
N = 1000
SUM_OF_SQUARES = sum(i * i for i in range(N))


def run_example(stack: AirflowStack, conn_id: str, output_dir: Path, describe: Callable[[], str]) -> str:
    """Run the example DAG with ``conn_id``; check it succeeded in one try with the right output."""
    api = stack.client
    api.wait_for_dag(DAG_ID)
    run_id = api.trigger(DAG_ID, {"output_dir": str(output_dir), "spark_conn_id": conn_id})
    state = api.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == "success", f"run {run_id} ended {state}\n{api.run_report(DAG_ID, run_id)}\n{describe()}"
    tries = api.tries(DAG_ID, run_id, TASK_ID)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], tries

    out = output_dir / run_id.replace(":", "_")
    assert (out / "_SUCCESS").exists(), f"no output at {out}: {sorted(p.name for p in output_dir.rglob('*'))}"
    rows = [json.loads(line) for part in sorted(out.glob("part-*.json")) for line in part.read_text().splitlines()]
    assert rows == [{"n": N, "total": SUM_OF_SQUARES}], rows
    result = api.xcom(DAG_ID, run_id, TASK_ID)
    assert result["status"] == "success", result
    return run_id


def test_pipeline_runs_on_the_standalone_cluster_of_the_connection(
    spark_airflow_stack: AirflowStack, spark_cluster: SparkStandalone, tmp_path: Path
) -> None:
    api = spark_airflow_stack.client
    assert spark_cluster.completed_apps() == []
    run_id = run_example(spark_airflow_stack, "ppf_spark", tmp_path, spark_cluster.describe)

    # The task log says which master the connection gave.
    log = api.logs(DAG_ID, run_id, TASK_ID, 1)
    assert any(spark_cluster.master_url in line and "'ppf_spark'" in line for line in log), "\n".join(log[-60:])

    # The application ran on the cluster (not local[*]): the master lists it as finished, and the worker
    # ran its executors.
    deadline = time.monotonic() + 30
    apps = spark_cluster.completed_apps()
    while not apps and time.monotonic() < deadline:
        time.sleep(1)
        apps = spark_cluster.completed_apps()
    assert apps, f"the master lists no completed application: {spark_cluster.master_json()}"
    assert [app.get("name") for app in apps] == [f"squares ({TASK_ID})"], apps
    assert apps[0].get("state") == "FINISHED", apps
    worker = spark_cluster.worker_json() or {}
    executors = [e for e in worker.get("finishedexecutors", []) if e.get("appid") == apps[0]["id"]]
    assert executors, f"the worker ran no executor of {apps[0]['id']}: {worker}"


def test_pipeline_runs_on_the_spark_connect_server_of_the_connection(
    spark_airflow_stack: AirflowStack, spark_connect: SparkConnectServer, tmp_path: Path
) -> None:
    executions_before = spark_connect.executions()
    run_id = run_example(spark_airflow_stack, "ppf_spark_connect", tmp_path, spark_connect.describe)

    log = spark_airflow_stack.client.logs(DAG_ID, run_id, TASK_ID, 1)
    assert any(f"Spark Connect {spark_connect.url}" in line and "'ppf_spark_connect'" in line for line in log), (
        "\n".join(log[-60:])
    )
    # The queries ran on the server (the task process started no JVM of its own).
    assert spark_connect.executions() > executions_before, spark_connect.describe()


# -- checkpoint & resume over Spark Connect, in new processes -------------------------------------------

PIPELINE = "orders-resume"
RUN_ID = "scheduled__2026-11-01T00:00:00+00:00"
FIRST_FOUR = ["read_orders", "paid_orders", "order_stats", "totals"]


def connect_block(url: str) -> str:
    return f"""
spark {{
  app_name = "ppf-connect-tests"
  remote = "{url}"
  spark_conf {{ "spark.sql.session.timeZone" = "UTC" }}
}}
"""


def output_rows(path: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """Schema and sorted rows of a parquet output, read without Spark."""
    table = pq.read_table(path)
    rows = sorted((tuple(row.values()) for row in table.to_pylist()), key=str)
    return str(table.schema), rows


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_orders(tmp_path_factory.mktemp("connect-input") / "orders.csv")


def test_a_pipeline_resumes_in_a_new_process_over_spark_connect(
    spark_connect: SparkConnectServer, source: Path, tmp_path: Path
) -> None:
    # The reference: the same pipeline over the same server, uninterrupted, without a checkpoint.
    clean = tmp_path / "clean.conf"
    clean.write_text(orders_pipeline(source, tmp_path / "clean" / "totals", spark=connect_block(spark_connect.url)))
    reference = run_attempt(clean, "clean", tmp_path / "clean-checkpoints", resume=False)
    assert reference.returncode == 0, f"{reference.describe()}\n{spark_connect.describe()}"
    expected = output_rows(tmp_path / "clean" / "totals")
    assert len(expected[1]) > 100

    config = tmp_path / "pipeline.conf"
    target = tmp_path / "out" / "totals"
    config.write_text(orders_pipeline(source, target, spark=connect_block(spark_connect.url)))
    checkpoints = tmp_path / "checkpoints"

    first = run_attempt(config, RUN_ID, checkpoints, resume=False, fail=True)
    assert first.returncode == 1, f"{first.describe()}\n{spark_connect.describe()}"
    assert statuses(first) == {
        **dict.fromkeys(FIRST_FOUR, "success"),
        "check_before_write": "failed",
        "write_totals": "not_run",
    }, first.describe()
    # The views the write still needs were saved through the server, with their commit markers.
    committed = saved_copies(checkpoints / "_data", PIPELINE, RUN_ID, FIRST_FOUR, committed_only=True)
    assert committed.get("totals/totals"), committed

    second = run_attempt(config, RUN_ID, checkpoints, resume=True)
    assert second.returncode == 0, f"{second.describe()}\n{spark_connect.describe()}"
    assert statuses(second) == {
        **dict.fromkeys(FIRST_FOUR, "skipped"),
        "check_before_write": "success",
        "write_totals": "success",
    }, second.describe()
    state = load_state(checkpoints, RUN_ID)
    restored = events(attempt(state, 2), "restored_views")
    assert restored, attempt(state, 2).events
    assert "totals" in restored[0]["views"], restored
    assert output_rows(target) == expected
    # The server sees this machine's disk, so the writer staged the output and renamed it into place.
    assert "plain Spark write" not in second.stdout + second.stderr, second.describe()
    assert sorted(p.name for p in target.parent.iterdir()) == ["totals"]
