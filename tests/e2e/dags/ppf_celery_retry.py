"""A pipeline task whose first try fails late: run by the CeleryExecutor test, try 1 on one worker, try 2 on another.

``params.base_dir`` holds the input (``orders.csv``) and receives the output (``totals/``), both on a
location every worker sees. ``params.data_location`` is where saved views go: a shared folder, or empty
for the worker's own ``[ppf] data_location`` (a worker-local folder).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_ppf.operators import PipelineOperator

ORDERS_SCHEMA = "order_id BIGINT, customer STRING, amount DECIMAL(10,2), status STRING"

PIPELINE = {
    "name": "celery-retry",
    "spark": {
        "app_name": "ppf-celery-retry",
        "master": "local[1]",
        "log_level": "ERROR",
        "spark_conf": {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "1",
        },
    },
    "components": [
        {
            "name": "read_orders",
            "class_path": "airflow_ppf.components.spark.ReadFiles",
            "config": {
                "path": "{{ params.base_dir }}/orders.csv",
                "format": "csv",
                "options": {"header": True},
                "schema": ORDERS_SCHEMA,
                "output_view": "orders",
            },
        },
        {
            "name": "paid_orders",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "depends_on": ["read_orders"],
            "config": {"sql": "SELECT customer, amount FROM orders WHERE status = 'paid'", "output_view": "paid"},
        },
        {
            "name": "totals",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "depends_on": ["paid_orders"],
            "config": {
                "sql": "SELECT customer, CAST(SUM(amount) AS DECIMAL(16,2)) AS revenue, COUNT(*) AS orders "
                "FROM paid GROUP BY customer",
                "output_view": "totals",
            },
        },
        {
            "name": "flaky_gate",
            "class_path": "airflow_ppf.components.faults.FaultInjection",
            "depends_on": ["totals"],
            "config": {"fail_on_attempts": [1], "message": "the gate fails the first try"},
        },
        {
            "name": "write_totals",
            "class_path": "airflow_ppf.components.spark.WriteFiles",
            "depends_on": ["flaky_gate"],
            "config": {
                "input_view": "totals",
                "path": "{{ params.base_dir }}/totals",
                "format": "parquet",
                "mode": "overwrite",
            },
        },
    ],
}

with DAG(
    dag_id="ppf_celery_retry",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"base_dir": "/tmp/ppf-celery-retry", "data_location": ""},
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    max_active_runs=4,
    tags=["airflow-ppf", "test"],
    doc_md=__doc__,
) as dag:
    PipelineOperator(
        task_id="orders_totals",
        pipeline=PIPELINE,
        data_location="{{ params.data_location }}",
    )
