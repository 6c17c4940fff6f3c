"""The DAG code of README.md and docs/airflow.md, run as written (taken from the Markdown), so the docs cannot rot.

Each runs under ``dag.test()`` as a manual run (no logical date, as a UI or REST trigger in Airflow 3) and,
for docs/airflow.md, as a run with a logical date (as a scheduled one); both must give ``${RUN_DATE}``
the run's date, inside the quoted SQL string of the config. Only the retry policy is changed (no
retries), so that a failure shows at once instead of after the documented retry delay.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import REPO, register_test_dag
from tests.helpers.components import RECORD_VALUE

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(markdown: Path, language: str, *, after: str = "") -> list[str]:
    """The fenced code blocks of one language in ``markdown`` (those after the line ``after``, if given)."""
    text = markdown.read_text(encoding="utf-8")
    if after:
        text = text.split(after, 1)[1]
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def load_dag(code: str, folder: Path, dag_id: str) -> Any:
    """Write ``code`` as a DAG file in ``folder`` and return its DAG, with retries off."""
    from airflow.dag_processing.dagbag import DagBag

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dag_id}_dag.py").write_text(code, encoding="utf-8")
    bag = DagBag(str(folder))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    register_test_dag(dag_id)
    return dag


def _only_task_state(dag_run: Any) -> str:
    (ti,) = dag_run.get_task_instances()
    return str(ti.state)


def test_the_airflow_page_example_runs_for_manual_and_scheduled_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = code_blocks(REPO / "docs" / "airflow.md", "python")[:1]
    dags = tmp_path / "dags"
    recorded = tmp_path / "recorded.txt"
    (dags / "pipelines").mkdir(parents=True)
    (dags / "pipelines" / "orders.conf").write_text(
        f'''
name: orders
components: [
  {{
    name: pick_day
    class_path: {RECORD_VALUE}
    config {{ log_file: "{recorded}", value: """SELECT * FROM orders WHERE order_date = '${{RUN_DATE}}'""" }}
  }}
]
''',
        encoding="utf-8",
    )
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_PROD", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    dag = load_dag(code, dags, "orders")

    manual = dag.test(logical_date=None, run_after=dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC))
    assert manual.logical_date is None
    assert _only_task_state(manual) == "success"
    scheduled_for = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    scheduled = dag.test(logical_date=scheduled_for, run_after=scheduled_for)
    assert _only_task_state(scheduled) == "success"

    assert recorded.read_text(encoding="utf-8").splitlines() == [
        "SELECT * FROM orders WHERE order_date = '2026-11-27'",
        "SELECT * FROM orders WHERE order_date = '2026-11-28'",
    ]


def test_what_the_page_used_to_say_fails_in_a_manual_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``{{ ds }}`` is undefined without a logical date: the task fails while rendering its fields."""
    (code,) = code_blocks(REPO / "docs" / "airflow.md", "python")[:1]
    old = code.replace("{{ dag_run.run_after | ds }}", "{{ ds }}").replace('DAG("orders"', 'DAG("orders_ds"')
    assert "{{ ds }}" in old
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_PROD", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    dag = load_dag(old, tmp_path / "dags", "orders_ds")

    run = dag.test(logical_date=None, run_after=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))

    assert _only_task_state(run) == "failed"


@pytest.mark.spark
@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    """README's config and DAG, with the lake on local disk instead of S3."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    readme = REPO / "README.md"
    (config,) = code_blocks(readme, "hocon", after="## What it looks like")[:1]
    (code,) = code_blocks(readme, "python", after="## What it looks like")[:1]
    lake = tmp_path / "lake"
    (lake / "orders").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "order_id": [1, 2, 3, 4, 5],
                "amount": [10.0, -1.0, 7.5, 3.0, 2.0],
                "order_date": ["2026-11-26", "2026-11-27", "2026-11-27", "2026-11-27", "2026-11-28"],
            }
        ),
        lake / "orders" / "part-0.parquet",
    )
    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    assert "s3a://lake/" in config
    (dags / "pipelines" / "orders.conf").write_text(
        config.replace("s3a://lake/", f"file://{lake}/")
        # One core, no UI: a test machine's Spark (the README's config names no master).
        + '\nspark { master: "local[1]", spark_conf { spark.ui.enabled: false, spark.sql.shuffle.partitions: 1 } }\n',
        encoding="utf-8",
    )
    # The README's DAG id is "orders", as on the Airflow page's: run it under an id of its own here.
    assert 'DAG("orders"' in code
    dag = load_dag(code.replace('DAG("orders"', 'DAG("orders_readme"'), dags, "orders_readme")

    run = dag.test(logical_date=None, run_after=dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC))

    assert _only_task_state(run) == "success"
    written = pq.read_table(lake / "clean" / "orders" / "date=2026-11-27").to_pylist()
    assert sorted((r["order_id"], r["amount"]) for r in written) == [(3, 7.5), (4, 3.0)]


def test_every_operator_argument_is_in_the_airflow_page_table() -> None:
    import inspect

    from airflow_ppf.operators import PipelineOperator

    own = [
        name
        for name, p in inspect.signature(PipelineOperator.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    page = (REPO / "docs" / "airflow.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", page, re.MULTILINE))
    assert "keep_saved_views" in own
    assert [name for name in own if name not in documented] == []
