"""End-to-end test DAG: the orders example whose check fails on every try, until no retry is left.

``orders_pipeline.conf`` of the example DAGs (copied next to this file), with ``publish_check`` failing on
tries 1 and 2 instead of 1 only. With ``retries=1`` the task fails for good after try 2 with five of seven
components done; a person then presses Resume in the Checkpoint tab, and try 3 must skip those five.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_ppf.operators import PipelineOperator

ORDERS_CONF = (Path(__file__).parent / "orders_pipeline.conf").read_text(encoding="utf-8")
FAILING_CONF = ORDERS_CONF.replace("fail_on_attempts: [1]", "fail_on_attempts: [1, 2]")
if FAILING_CONF == ORDERS_CONF:
    raise ValueError("orders_pipeline.conf no longer has publish_check's 'fail_on_attempts: [1]'")

with DAG(
    dag_id="ppf_orders_exhausted",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"base_dir": "/tmp/airflow-ppf-e2e", "orders": 2_000},
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    tags=["airflow-ppf", "e2e"],
) as dag:

    @task
    def make_input_data(**context: Any) -> str:
        """The orders example's input files for this run (its ``orders_data.py`` is next to this file)."""
        sys.path.insert(0, str(Path(__file__).parent))
        from orders_data import write_run_data

        params, run_id = context["params"], str(context["run_id"])
        return str(write_run_data(params["base_dir"], run_id, int(params["orders"])))

    make_input_data() >> PipelineOperator(
        task_id="orders_daily_revenue",
        pipeline=FAILING_CONF,
        pipeline_vars={
            "DATA_DIR": "{{ ti.xcom_pull(task_ids='make_input_data') }}",
            "OUTPUT_DIR": "{{ params.base_dir }}/report/{{ run_id | replace(':', '_') }}",
        },
        spark_conf={"spark.sql.shuffle.partitions": "2"},
    )
