"""One pipeline per region with dynamic task mapping; every mapped task instance has its own checkpoint.

Each instance fails its first try at ``flaky_upload_gate`` and its retry resumes from that instance's
checkpoint (the checkpoint run id includes the map index, and the task state store is per map index).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from airflow_ppf.operators import PipelineOperator

REGIONS = ["north", "south", "east", "west"]

with DAG(
    dag_id="ppf_regions_mapped",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"base_dir": "/tmp/airflow-ppf-example", "orders": 5_000, "regions": REGIONS},
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

    @task
    def region_vars(data_dir: str, **context: Any) -> list[dict[str, str]]:
        """One set of pipeline variables per region."""
        params = context["params"]
        report = f"{params['base_dir']}/report/{str(context['run_id']).replace(':', '_')}"
        return [
            {"DATA_DIR": data_dir, "REGION": region, "OUTPUT_DIR": f"{report}/{region}"} for region in params["regions"]
        ]

    PipelineOperator.partial(
        task_id="region_report",
        pipeline="region_pipeline.conf",
        spark_conf={"spark.sql.shuffle.partitions": "2"},
        max_active_tis_per_dag=1,
    ).expand(pipeline_vars=region_vars(make_input_data()))
