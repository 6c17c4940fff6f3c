"""What a PipelineOperator task log says, read from the real output of dag.test() runs.

* a Spark pipeline that fails on try 1 and resumes on try 2, in a fresh process (the driver JVM starts
  inside the task, as on a worker): no JVM start-up chatter, no progress bar, no Python-API hint, the
  resume plan's title once per try;
* a pipeline that changed between tries (restart mode): the log says what changed;
* a task that times out: the log names the component it interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import REPO, TEST_DAGS, task_state
from tests.airflow.test_pipeline_operator import _dag as pipeline_dag
from tests.helpers.components import APPEND_NAME, BLOCKING, Blocking

SPARK_DAG = "ppf_logs_spark"

#: Run a DAG file with dag.test() and keep the records of the JVM's stderr logger (at every level).
RUNNER = """
import json, logging, runpy, sys

records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.levelname, record.getMessage()])

jvm = logging.getLogger("airflow_ppf.spark.jvm")
jvm.setLevel(logging.DEBUG)
jvm.propagate = False
jvm.addHandler(Keep())
dag = runpy.run_path(sys.argv[1])["dag"]
run = dag.test()
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump({"state": str(run.state), "run_id": run.run_id, "jvm": records}, out)
"""


@dataclass
class SparkRun:
    base: Path
    output: str
    result: dict[str, Any]


def _spark_dag(base: Path) -> Path:
    pipeline = {
        "name": "logs",
        "spark": {
            "master": "local[1]",
            "spark_conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"},
        },
        "components": [
            {
                "name": "numbers",
                "class_path": "airflow_ppf.components.spark.SqlTransform",
                # $${...} is a literal ${...}: Spark SQL substitutes the session's own setting there.
                # (An aggregate: worth saving for try 2, which then skips this component.)
                "config": {
                    "sql": "SELECT id % 3 AS id, COUNT(*) AS n, '$${spark.ui.showConsoleProgress}' AS progress "
                    "FROM range(9) GROUP BY id % 3",
                    "output_view": "numbers",
                },
            },
            {
                "name": "gate",
                "class_path": "airflow_ppf.components.faults.FaultInjection",
                "depends_on": ["numbers"],
                "config": {"fail_on_attempts": [1], "message": "reporting database unavailable"},
            },
            {
                "name": "write",
                "class_path": "airflow_ppf.components.spark.WriteFiles",
                "depends_on": ["gate"],
                "config": {"input_view": "numbers", "path": str(base / "out"), "format": "json"},
            },
        ],
    }
    path = TEST_DAGS / f"{SPARK_DAG}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import datetime as dt

            from airflow.sdk import DAG

            from airflow_ppf.operators import PipelineOperator

            with DAG({SPARK_DAG!r}, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                     default_args={{"retries": 1, "retry_delay": dt.timedelta(0)}}) as dag:
                PipelineOperator(task_id="pipeline", pipeline={pipeline!r})
            """
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def spark_run(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkRun]:
    base = tmp_path_factory.mktemp("task-logs")
    out = base / "result.json"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(_spark_dag(base)), str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # what a worker would turn into task log lines, in order
        text=True,
        timeout=600,
    )
    (base / "output.txt").write_text(proc.stdout, encoding="utf-8")  # kept for a failing test's reader
    assert proc.returncode == 0, proc.stdout[-5000:]
    yield SparkRun(base, proc.stdout, json.loads(out.read_text(encoding="utf-8")))
    (TEST_DAGS / f"{SPARK_DAG}.py").unlink()


pytestmark = pytest.mark.airflow


@pytest.mark.spark
@pytest.mark.slow
def test_the_spark_run_failed_once_then_resumed_and_wrote_its_rows(spark_run: SparkRun) -> None:
    assert spark_run.result["state"] == "success", spark_run.output[-3000:]
    rows = [json.loads(line) for part in sorted((spark_run.base / "out").glob("part-*.json")) for line in part.open()]
    # The operator turned Spark's console progress bar off (the user did not ask for it).
    assert sorted((r["id"], r["n"], r["progress"]) for r in rows) == [(0, 3, "false"), (1, 3, "false"), (2, 3, "false")]


@pytest.mark.spark
@pytest.mark.slow
def test_jvm_start_up_output_is_logged_at_debug_not_written_to_stderr(spark_run: SparkRun) -> None:
    chatter = ["log4j2-defaults.properties", "NativeCodeLoader", "setLogLevel(newLevel)", "[Stage "]
    for text in chatter:
        assert text not in spark_run.output, f"{text!r} reached the task's output:\n{spark_run.output[-3000:]}"
    jvm = spark_run.result["jvm"]
    assert any(level == "DEBUG" and "Using Spark's default log4j profile" in message for level, message in jvm), jvm
    assert not [r for r in jvm if r[0] == "ERROR"], jvm


@pytest.mark.spark
@pytest.mark.slow
def test_the_log_has_no_python_api_hint_and_one_plan_title_per_try(spark_run: SparkRun) -> None:
    output = spark_run.output
    assert "completed_components=" not in output
    assert "Run it again with" not in output
    # One plan per try, its headline once: as the title of the collapsible group.
    assert output.count("no checkpoint, running all 3 components") == 1, output[-3000:]
    assert output.count("resuming after attempt 1 (failed): skipping 1 of 3 components") == 1, output[-3000:]
    titles = [line for line in output.splitlines() if "::group::Resume plan: " in line]
    assert len(titles) == 2, titles


# -- in this process: dag.test() output through capfd ---------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
def test_restart_mode_says_what_changed(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = str(tmp_path / "trace.log")
    # ``read``'s config holds the try number (unquoted HOCON substitution): the pipeline changes between tries.
    pipeline = f"""
        name = changing
        components = [
          {{ name = read, class_path = "{APPEND_NAME}", config {{ log_file = "{log}", value = ${{TRY}} }} }}
          {{ name = clean, class_path = "{APPEND_NAME}", depends_on = [read], config {{ log_file = "{log}" }} }}
          {{
            name = gate, class_path = airflow_ppf.components.faults.FaultInjection, depends_on = [clean]
            config {{ fail_on_attempts = [1] }}
          }}
        ]
    """
    dag = pipeline_dag(
        retries=1,
        pipeline=pipeline,
        pipeline_vars={"TRY": "{{ ti.try_number }}"},
        on_config_change="restart",
    )
    dag_run = dag.test()
    output = capfd.readouterr().out

    assert dag_run.state == "success"
    headline = (
        "starting from the beginning because the pipeline changed (restart): "
        "read: config.value changed; clean: upstream 'read' changed; gate: upstream 'clean' changed"
    )
    assert output.count(headline) == 1, output[-4000:]
    assert "pipeline changed (config.value changed): starting from the beginning" in output
    recorded = task_state(dag.dag_id, dag_run.run_id, "pipeline")["ppf_checkpoint"]["state"]
    assert recorded["attempts"][-1]["resume"]["changed"] == {
        "read": "config.value changed",
        "clean": "upstream 'read' changed",
        "gate": "upstream 'clean' changed",
    }


@pytest.mark.usefixtures("airflow_db")
def test_a_timeout_names_the_interrupted_component(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    Blocking.started.clear()
    Blocking.released.clear()
    dag = pipeline_dag(
        retries=0,
        execution_timeout=dt.timedelta(seconds=3),
        pipeline={
            "name": "slow",
            "components": [
                {"name": "first", "class_path": APPEND_NAME, "config": {"log_file": str(tmp_path / "t")}},
                {"name": "wait_for_api", "class_path": BLOCKING, "depends_on": ["first"], "config": {"timeout": 60}},
            ],
        },
    )
    dag_run = dag.test()
    output = capfd.readouterr().out

    assert dag_run.state == "failed"
    assert "interrupted by AirflowTaskTimeout" in output, output[-4000:]
    assert "while running 'wait_for_api'" in output, output[-4000:]
    state = task_state(dag.dag_id, dag_run.run_id, "pipeline")["ppf_checkpoint"]["state"]
    assert state["status"] == "interrupted"
    assert state["completed_components"] == ["first"]
