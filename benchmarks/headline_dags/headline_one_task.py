"""Headline benchmark, variant (a): the six-step pipeline in one PipelineOperator task.

The steps hand data over through Spark temp views in one SparkSession; the operator checkpoints every
finished step (and saves the views a later step reads), so a retry resumes at the step that failed.
``headline_one_task_never`` is the same with ``materialize = never`` (nothing saved: what a clean run costs
without the insurance for a retry), a reference for ``--with-never``.
See ``headline_steps.py`` for the steps and ``benchmarks/airflow_headline.py`` for the benchmark.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG
from headline_steps import DEFAULT_PARAMS, StepTimings, mark_task_start, one_task_pipeline

from airflow_ppf.operators import PipelineOperator


def one_task_dag(dag_id: str, materialize: str) -> DAG:
    """The DAG of one PipelineOperator task running the six steps."""
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        params=DEFAULT_PARAMS,
        default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=2)},
        tags=["airflow-ppf", "benchmark"],
        doc_md=__doc__,
    ) as dag:
        PipelineOperator(
            task_id="pipeline",
            pipeline={**one_task_pipeline(), "materialize": materialize},
            hooks=[StepTimings()],
            pre_execute=mark_task_start,
        )
    return dag


dag = one_task_dag("headline_one_task", "auto")
never = one_task_dag("headline_one_task_never", "never")
