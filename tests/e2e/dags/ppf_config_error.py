"""End-to-end test DAG: a pipeline task whose config is wrong fails on try 1, before any checkpoint."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_ppf.operators import PipelineOperator

with DAG(
    dag_id="ppf_config_error",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=1)},
    tags=["airflow-ppf", "e2e"],
) as dag:
    step = "airflow_ppf.components.faults.FaultInjection"
    PipelineOperator(
        task_id="broken_pipeline",
        pipeline={
            "name": "broken",
            "components": [
                {"name": "extract", "class_path": step},
                {"name": "load", "class_path": step, "depends_on": ["extrct"]},  # a typo: a config error
            ],
        },
    )
