"""Headline benchmark, variant (b): the same six steps as six Airflow tasks, the way teams do it today.

Each step is a ``@task.pyspark`` task (the Spark provider): it gets its own SparkSession, reads the previous
step's parquet (its path comes through XCom) and writes its own. A failure reruns only the failed task.
See ``headline_steps.py`` for the steps and ``benchmarks/airflow_headline.py`` for the benchmark.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task
from headline_steps import DEFAULT_PARAMS, STEPS, mark_task_start, run_step_on_parquet, spark_settings


def step_task(step_name: str) -> Any:
    """A ``@task.pyspark`` task running one step."""

    @task.pyspark(task_id=step_name, config_kwargs=spark_settings(), pre_execute=mark_task_start)
    def run_step(previous: str | None, spark: Any = None, sc: Any = None, **context: Any) -> str:
        return run_step_on_parquet(spark, step_name, previous, context)

    return run_step


with DAG(
    dag_id="headline_per_step",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params=DEFAULT_PARAMS,
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=2)},
    tags=["airflow-ppf", "benchmark"],
    doc_md=__doc__,
) as dag:
    output: Any = None
    for step in STEPS:
        output = step_task(step.name)(output)
