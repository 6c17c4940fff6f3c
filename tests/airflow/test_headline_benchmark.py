"""The DAGs of ``benchmarks/airflow_headline.py`` parse, and both variants compute the same report.

The benchmark compares one PipelineOperator task with one ``@task.pyspark`` task per step; the comparison
is only fair if both run the same pipeline. Here, on tiny data under ``dag.test()`` (real retries), both
variants fail once in the last step and succeed on the retry, and their reports are identical (and so is
the report of the ``materialize = never`` reference). No timing is checked.

``dag.test()`` runs in a child process: ``@task.pyspark`` stops whatever session ``getOrCreate()`` gives it,
which must never be a session another test shares.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import REPO, register_test_dag

DAGS = REPO / "benchmarks" / "headline_dags"
ONE_TASK, PER_STEP, NEVER = "headline_one_task", "headline_per_step", "headline_one_task_never"
STEP_NAMES = ["orders", "clean_orders", "enriched", "customer_months", "ranked", "report"]


def _child(code: str, timeout: float = 600) -> Any:
    """Run ``code`` (with the benchmark's DAG folder importable) in a new interpreter; return its JSON line."""
    script = f"import sys\nsys.path.insert(0, {str(DAGS)!r})\n" + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("RESULT ")), None)
    assert line is not None, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.usefixtures("airflow_db")
def test_benchmark_dags_parse_without_pyspark() -> None:
    result = _child(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag({str(DAGS)!r})
        per_step = bag.dags.get({PER_STEP!r})
        chain = [] if per_step is None else [
            [t.task_id, sorted(t.upstream_task_ids)] for t in per_step.topological_sort()
        ]
        print("RESULT " + json.dumps({{
            "errors": {{str(k): v[-300:] for k, v in bag.import_errors.items()}},
            "dag_ids": sorted(bag.dag_ids),
            "pyspark": "pyspark" in sys.modules,
            "chain": chain,
        }}))
        """
    )
    assert result["errors"] == {}
    assert result["dag_ids"] == sorted([ONE_TASK, NEVER, PER_STEP])
    assert result["pyspark"] is False, "a benchmark DAG file imported pyspark"
    upstream = [None, *STEP_NAMES[:-1]]
    assert result["chain"] == [[name, [up] if up else []] for up, name in zip(upstream, STEP_NAMES, strict=True)]


def _report(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: (r["region"], r["month"], r["rank"]))


@pytest.mark.usefixtures("airflow_db")
def test_both_variants_fail_once_then_write_the_same_report(tmp_path: Path) -> None:
    for dag_id in (ONE_TASK, PER_STEP, NEVER):
        register_test_dag(dag_id)
    runs = [(ONE_TASK, True), (PER_STEP, True), (NEVER, False)]
    result = _child(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        from headline_steps import run_dir
        bag = DagBag({str(DAGS)!r})
        out = {{}}
        for dag_id, fail_once in {runs!r}:
            conf = {{"base_dir": {str(tmp_path)!r}, "orders": 3000, "fail_once": fail_once}}
            run = bag.dags[dag_id].test(run_conf=conf)
            out[dag_id] = {{
                "state": str(run.state),
                "folder": str(run_dir(conf, "per_step" if dag_id == {PER_STEP!r} else "one_task", run.run_id)),
                "tries": {{ti.task_id: [ti.try_number, str(ti.state)] for ti in run.get_task_instances()}},
            }}
        print("RESULT " + json.dumps(out))
        """
    )
    for dag_id, _ in runs:
        assert result[dag_id]["state"] == "success", result
    # The last step failed on its first try and succeeded when retried; nothing else ran twice.
    assert result[ONE_TASK]["tries"] == {"pipeline": [2, "success"]}
    assert result[NEVER]["tries"] == {"pipeline": [1, "success"]}
    assert result[PER_STEP]["tries"] == {n: [2 if n == "report" else 1, "success"] for n in STEP_NAMES}

    def folder(dag_id: str) -> Path:
        path = Path(result[dag_id]["folder"])
        assert path.is_relative_to(tmp_path)
        return path

    # The per-step variant handed every step's output over as parquet; the one-task one wrote the report only.
    assert sorted(p.name for p in folder(PER_STEP).iterdir()) == sorted(STEP_NAMES)
    assert [p.name for p in folder(ONE_TASK).iterdir()] == ["report"]

    one_task, per_step, never = (_report(folder(d) / "report") for d in (ONE_TASK, PER_STEP, NEVER))
    assert one_task == per_step == never
    # 200 customers, 4 regions, 12 months: the top 10 of every region and month.
    assert len(one_task) == 4 * 12 * 10
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for row in one_task:
        groups.setdefault((row["region"], row["month"]), []).append(row)
    assert len(groups) == 48
    for rows in groups.values():
        assert [r["rank"] for r in rows] == list(range(1, 11))
        assert all(a["revenue"] >= b["revenue"] for a, b in itertools.pairwise(rows))
        assert len({r["region_revenue"] for r in rows}) == 1
        assert all(abs(r["share"] - r["revenue"] / r["region_revenue"]) < Decimal("1e-8") for r in rows)
