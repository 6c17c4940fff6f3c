"""End-to-end test DAG: a pipeline of 60 components with long dependencies, for the checkpoint view's graph.

The components are ``FaultInjection`` steps that never fail (no Spark needed). Component ``i`` depends on
``i - 1`` (except at the start of each group of seven) and, every third one, on a component 4 to 14 steps
back: many edges skip several columns of the layout.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_ppf.operators import PipelineOperator

COMPONENTS = 60


def dependencies(i: int) -> list[int]:
    """The components component ``i`` depends on."""
    deps = [i - 1] if i % 7 else []
    if i % 3 == 0 and i >= 4:
        deps.append(i - 4 - (i * 5) % 11)
    return sorted({d for d in deps if d >= 0})


with DAG(
    dag_id="ppf_wide_pipeline",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["airflow-ppf", "e2e"],
) as dag:
    PipelineOperator(
        task_id="wide",
        pipeline={
            "name": "wide",
            "components": [
                {
                    "name": f"step_{i:02d}",
                    "class_path": "airflow_ppf.components.faults.FaultInjection",
                    "config": {"fail_on_attempts": []},
                    "depends_on": [f"step_{d:02d}" for d in dependencies(i)],
                }
                for i in range(COMPONENTS)
            ],
        },
    )
