"""The example DAG, run by Airflow's dag.test() with real retries: try 2 skips what try 1 finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import task_state, xcom
from tests.helpers.example_reports import check_daily_revenue

EARLY = ["read_orders", "read_customers", "clean_orders", "enrich_orders", "daily_revenue"]


@pytest.mark.usefixtures("airflow_db")
def test_orders_dag_fails_once_then_resumes(load_example: Any, example_base: Path) -> None:
    from airflow_ppf.runner.checkpoint import CheckpointState

    dag = load_example("ppf_orders_resume")
    dag_run = dag.test(run_conf={"base_dir": str(example_base), "orders": 3000})
    assert dag_run.state == "success"
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert tis["orders_daily_revenue"].try_number == 2

    stored = task_state(dag.dag_id, dag_run.run_id, "orders_daily_revenue")
    state = CheckpointState.from_dict(stored["ppf_checkpoint"]["state"])
    first, second = state.attempts
    assert (first.attempt, first.status, first.failed) == (1, "failed", "publish_check")
    assert first.ran == EARLY
    assert (second.attempt, second.status) == (2, "completed")
    assert second.skipped == EARLY
    assert second.ran == ["publish_check", "write_report"]

    summary = xcom(dag.dag_id, dag_run.run_id, "orders_daily_revenue")
    assert summary["skipped"] == EARLY
    assert [r["name"] for r in summary["ran"]] == ["publish_check", "write_report"]
    assert summary["resumed"] is True
    assert summary["time_saved_s"] > 0

    # The report holds the right rows, value by value (computed from the run's input files).
    folder = dag_run.run_id.replace(":", "_")
    report = example_base / "report" / folder / "daily_revenue"
    assert check_daily_revenue(report, example_base / "data" / folder) == 30 * 4  # 30 days, 4 regions
