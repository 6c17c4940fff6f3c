"""Whole-task overhead of PipelineOperator vs. running the same pipeline in a plain ``@task``.

One Airflow home (SQLite) and one process; the three DAGs below run the same 5-component Spark pipeline
(400,000 generated rows, a join, an aggregation, a parquet write) through ``dag.test()``, interleaved:

* ``plain``      – a ``@task`` that calls ``SimplePipelineRunner(config).run()``: no checkpoint, no saved views;
* ``ppf_never``  – PipelineOperator, checkpoint in the task state store, ``materialize = never``;
* ``ppf``        – PipelineOperator with its defaults (checkpoint + views saved for a retry to restore).

Reported: median task duration (the task instance's own duration, from the metadata DB) per variant
and the ratio to ``plain``. Each variant starts and stops its own SparkSession (the JVM stays up after
the first run, as it would not across real Airflow tries; all variants pay the same).

Usage: python benchmarks/operator_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="ppf-bench-airflow-"))
DAGS = HOME / "dags"
DAGS.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__PPF__CHECKPOINT_DIR": str(HOME / "ckpt"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
)

PIPELINE = {
    "name": "bench",
    "spark": {
        "master": "local[2]",
        "log_level": "ERROR",
        "spark_conf": {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
        },
    },
    "components": [
        {
            "name": "facts",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "config": {
                "sql": "SELECT id, id % 1000 AS k, rand(7) * 100 AS v FROM range(400000)",
                "output_view": "facts",
            },
        },
        {
            "name": "dims",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "config": {"sql": "SELECT id AS k, concat('dim-', id) AS label FROM range(1000)", "output_view": "dims"},
        },
        {
            "name": "joined",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "depends_on": ["facts", "dims"],
            "config": {
                "sql": "SELECT d.label, f.v FROM facts f JOIN dims d ON f.k = d.k",
                "output_view": "joined",
            },
        },
        {
            "name": "totals",
            "class_path": "airflow_ppf.components.spark.SqlTransform",
            "depends_on": ["joined"],
            "config": {
                "sql": "SELECT label, COUNT(*) AS n, SUM(v) AS total FROM joined GROUP BY label",
                "output_view": "totals",
            },
        },
        {
            "name": "write",
            "class_path": "airflow_ppf.components.spark.WriteFiles",
            "depends_on": ["totals"],
            "config": {"input_view": "totals", "path": str(HOME / "out" / "totals"), "mode": "overwrite"},
        },
    ],
}

DAG_FILE = textwrap.dedent(
    f"""
    import datetime as dt
    from airflow.sdk import DAG, task
    from airflow_ppf.operators import PipelineOperator

    PIPELINE = {json.dumps(PIPELINE)}
    START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    with DAG("plain", schedule=None, start_date=START) as plain:
        @task
        def run_pipeline():
            from airflow_ppf.config import PipelineConfig
            from airflow_ppf.runner import SimplePipelineRunner
            with SimplePipelineRunner(PipelineConfig.from_dict(PIPELINE)) as runner:
                assert runner.run().success
        run_pipeline()

    with DAG("ppf_never", schedule=None, start_date=START) as ppf_never:
        PipelineOperator(task_id="run_pipeline", pipeline={{**PIPELINE, "materialize": "never"}})

    with DAG("ppf", schedule=None, start_date=START) as ppf:
        PipelineOperator(task_id="run_pipeline", pipeline=PIPELINE)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    (DAGS / "bench_dags.py").write_text(DAG_FILE)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_dags", DAGS / "bench_dags.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    variants = {"plain": module.plain, "ppf_never": module.ppf_never, "ppf": module.ppf}
    durations: dict[str, list[float]] = {name: [] for name in variants}
    for name, dag in variants.items():  # warm-up: JVM start, first-run costs of Airflow
        assert dag.test().state == "success", name
    for _ in range(args.rounds):
        for name, dag in variants.items():
            dag_run = dag.test()
            assert dag_run.state == "success", name
            ti = dag_run.get_task_instances()[0]
            durations[name].append(float(ti.duration))
    base = statistics.median(durations["plain"])
    print(f"{'variant':<12} {'median task s':>14} {'ratio':>7}   samples")
    for name, values in durations.items():
        median = statistics.median(values)
        print(f"{name:<12} {median:14.2f} {median / base:7.2f}   {', '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
