"""Every example DAG parses, and the mapped and connection examples run under dag.test()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import EXAMPLE_DAGS, task_state
from tests.helpers.example_reports import check_region_report

EXAMPLES = sorted(p.stem for p in EXAMPLE_DAGS.glob("ppf_*.py"))


@pytest.mark.usefixtures("airflow_db")
def test_every_example_dag_file_is_covered() -> None:
    assert EXAMPLES == ["ppf_orders_resume", "ppf_regions_mapped", "ppf_spark_connection"]


@pytest.mark.usefixtures("airflow_db")
def test_example_dags_parse_without_errors_or_pyspark() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag({str(EXAMPLE_DAGS)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(sorted(bag.dag_ids))\n"
        "assert 'pyspark' not in sys.modules, 'a DAG file imported pyspark'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == EXAMPLES


@pytest.mark.usefixtures("airflow_db")
def test_mapped_example_gives_each_instance_its_own_checkpoint(load_example: Any, example_base: Path) -> None:
    from airflow_ppf.runner.checkpoint import CheckpointState

    dag = load_example("ppf_regions_mapped")
    dag_run = dag.test(run_conf={"base_dir": str(example_base), "orders": 1500, "regions": ["north", "west"]})
    assert dag_run.state == "success"
    mapped = sorted(
        (ti for ti in dag_run.get_task_instances() if ti.task_id == "region_report"), key=lambda t: t.map_index
    )
    assert [ti.map_index for ti in mapped] == [0, 1]
    run_ids = set()
    for ti in mapped:
        assert ti.try_number == 2
        head = task_state(dag.dag_id, dag_run.run_id, "region_report", ti.map_index)["ppf_checkpoint"]
        state = CheckpointState.from_dict(head["state"])
        run_ids.add(state.run_id)
        assert state.run_id.endswith(f"region_report[{ti.map_index}]")
        assert state.attempts[0].failed == "flaky_upload_gate"
        assert state.attempts[1].skipped == ["read_orders", "read_customers", "region_orders", "top_customers"]
        assert state.status == "completed"
    assert len(run_ids) == 2
    # Each region's report holds that region's top customers, value by value (never empty).
    folder = dag_run.run_id.replace(":", "_")
    for region in ("north", "west"):
        report = example_base / "report" / folder / region / "top_customers"
        assert check_region_report(report, example_base / "data" / folder, region) == 20
