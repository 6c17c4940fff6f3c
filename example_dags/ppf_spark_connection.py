"""Run a pipeline on the Spark cluster an Airflow connection points at.

Create the connection once (UI, CLI or environment), e.g. a standalone master::

    AIRFLOW_CONN_PPF_SPARK='{"conn_type": "spark", "host": "spark://spark-master", "port": 7077,
                             "extra": {"spark.executor.memory": "1g"}}'

or Spark Connect: ``{"conn_type": "spark_connect", "host": "spark-connect", "port": 15002}``. Extras whose
keys start with ``spark.`` become Spark properties; ``spark_conf`` on the operator applies on top.
Which connection a run uses is the ``spark_conn_id`` param (default ``ppf_spark``).
The pipeline is inline here (a dict); it squares numbers with a Python UDF-free SQL query and writes them.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_ppf.operators import PipelineOperator

with DAG(
    dag_id="ppf_spark_connection",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"spark_conn_id": "ppf_spark", "output_dir": "/tmp/airflow-ppf-example/connection"},
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=1)},
    tags=["airflow-ppf", "example"],
    doc_md=__doc__,
) as dag:
    PipelineOperator(
        task_id="squares",
        spark_conn_id="{{ params.spark_conn_id }}",
        spark_conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.executor.cores": "1",
            "spark.ui.showConsoleProgress": "false",
        },
        pipeline={
            "name": "squares",
            "components": [
                {
                    "name": "numbers",
                    "class_path": "airflow_ppf.components.spark.SqlTransform",
                    "config": {"sql": "SELECT id, id * id AS square FROM range(1000)", "output_view": "squares"},
                },
                {
                    "name": "totals",
                    "class_path": "airflow_ppf.components.spark.SqlTransform",
                    "depends_on": ["numbers"],
                    "config": {
                        "sql": "SELECT COUNT(*) AS n, SUM(square) AS total FROM squares",
                        "output_view": "totals",
                    },
                },
                {
                    "name": "write",
                    "component_type": "sink",
                    "class_path": "airflow_ppf.components.spark.WriteFiles",
                    "depends_on": ["totals"],
                    "config": {
                        "input_view": "totals",
                        "path": "{{ params.output_dir }}/{{ run_id | replace(':', '_') }}",
                        "format": "json",
                    },
                },
            ],
        },
    )
