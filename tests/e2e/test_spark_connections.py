"""A pipeline on a real Spark standalone cluster, reached through an Airflow connection of type ``spark``.

The driver runs inside the Airflow task process; executors run in the standalone worker. Both are on this
machine, so local paths (the output and the checkpoint's saved views) are visible to both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.harness import AirflowStack, SparkStandalone

DAG_ID = "ppf_spark_connection"
TASK_ID = "squares"
N = 1000
SUM_OF_SQUARES = sum(i * i for i in range(N))


def test_pipeline_runs_on_the_standalone_cluster_of_the_connection(
    spark_airflow_stack: AirflowStack, spark_cluster: SparkStandalone, tmp_path: Path
) -> None:
    api = spark_airflow_stack.client
    assert spark_cluster.completed_apps() == []
    api.wait_for_dag(DAG_ID)
    run_id = api.trigger(DAG_ID, {"output_dir": str(tmp_path)})
    state = api.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == "success", (
        f"run {run_id} ended {state}\n{api.run_report(DAG_ID, run_id)}\n{spark_cluster.describe()}"
    )
    tries = api.tries(DAG_ID, run_id, TASK_ID)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], tries

    # The task log says which master the connection gave.
    log = api.logs(DAG_ID, run_id, TASK_ID, 1)
    assert any(spark_cluster.master_url in line and "ppf_spark" in line for line in log), "\n".join(log[-60:])

    out = tmp_path / run_id.replace(":", "_")
    assert (out / "_SUCCESS").exists(), f"no output at {out}: {sorted(p.name for p in tmp_path.rglob('*'))}"
    rows = [json.loads(line) for part in sorted(out.glob("part-*.json")) for line in part.read_text().splitlines()]
    assert rows == [{"n": N, "total": SUM_OF_SQUARES}], rows

    result = api.xcom(DAG_ID, run_id, TASK_ID)
    assert result["status"] == "success", result

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
