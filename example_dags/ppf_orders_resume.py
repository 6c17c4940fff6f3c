"""A Spark ETL pipeline in one Airflow task: the first try fails late, the retry resumes.

``orders_pipeline.conf`` (next to this file) reads orders and customers, cleans, joins, aggregates and
writes a daily revenue report. Its ``publish_check`` component fails on the first try on purpose (a
stand-in for a flaky dependency). Airflow retries the task; the retry skips the five finished components,
restores the temp views they produced from the checkpoint, and only runs the last two.

Watch it in the UI: the task log shows the resume plan (collapsible) and one line per component; the
"Checkpoint" button opens the checkpoint view; Storage → Task State Store holds the checkpoint.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_ppf.operators import PipelineOperator

with DAG(
    dag_id="ppf_orders_resume",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"base_dir": "/tmp/airflow-ppf-example", "orders": 20_000},
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    tags=["airflow-ppf", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def make_input_data(**context: Any) -> str:
        """Write this run's input CSV files (deterministic) and return their folder."""
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        from orders_data import write_run_data

        params = context["params"]
        return write_run_data(params["base_dir"], str(context["run_id"]), int(params["orders"]))

    data_dir = make_input_data()

    daily_revenue = PipelineOperator(
        task_id="orders_daily_revenue",
        pipeline="orders_pipeline.conf",
        pipeline_vars={
            "DATA_DIR": "{{ ti.xcom_pull(task_ids='make_input_data') }}",
            "OUTPUT_DIR": "{{ params.base_dir }}/report/{{ run_id | replace(':', '_') }}",
        },
        spark_conf={"spark.sql.shuffle.partitions": "2"},
    )

    data_dir >> daily_revenue
