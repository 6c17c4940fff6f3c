"""Every Airflow channel on a resumed run: OpenLineage (file transport), assets, StatsD metrics, OTel traces.

One real run serves all tests here: a Spark pipeline (read CSV → aggregate → gate → write parquet files and
an external table) whose gate fails on try 1, so try 2 resumes, skipping ``read`` and ``totals`` and
restoring their saved view. It runs with ``dag.test()`` in a separate process (Airflow reads these settings
once per process) with:

* the OpenLineage provider's file transport,
* Airflow's StatsD client sending to a UDP listener of this test on a free loopback port,
* Airflow's OpenTelemetry tracing (``[traces] otel_on``) plus an in-memory exporter, the task inside the
  span Airflow's worker opens for it,

and a second DAG scheduled on the pipeline's output asset, in the same DAG file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import REPO, TEST_DAGS, task_state, xcom

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]

UPSTREAM, DOWNSTREAM = "ppf_obs_upstream", "ppf_obs_downstream"
COMPONENTS = ["read", "totals", "gate", "write_files", "write_table"]


@dataclass
class ObservedRun:
    base: Path
    result: dict[str, Any]
    events: list[dict[str, Any]]
    metrics: list[str]

    @property
    def totals_uri(self) -> str:
        return f"file://{self.base / 'out' / 'totals'}"

    def event(self, event_type: str, attempt: int) -> dict[str, Any]:
        """The task's OpenLineage event of one type and try."""
        found = [
            e
            for e in self.events
            if e["eventType"] == event_type
            and e["job"]["name"] == f"{UPSTREAM}.pipeline"
            and e["run"]["facets"].get("airflow", {}).get("taskInstance", {}).get("try_number") == attempt
        ]
        assert len(found) == 1, [(e["eventType"], e["job"]["name"]) for e in self.events]
        return found[0]


def _pipeline(base: Path) -> dict[str, Any]:
    return {
        "name": "obs-totals",
        "spark": {
            "master": "local[1]",
            "log_level": "ERROR",
            "spark_conf": {
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.shuffle.partitions": "1",
                "spark.default.parallelism": "1",
                "spark.sql.warehouse.dir": str(base / "warehouse"),
            },
        },
        "components": [
            {
                "name": "read",
                "class_path": "airflow_ppf.components.spark.ReadFiles",
                "config": {
                    "path": str(base / "in" / "orders.csv"),
                    "format": "csv",
                    "options": {"header": True},
                    "schema": "region STRING, amount INT",
                    "output_view": "orders",
                },
            },
            {
                "name": "totals",
                "class_path": "airflow_ppf.components.spark.SqlTransform",
                "depends_on": ["read"],
                "config": {
                    "sql": "SELECT region, SUM(amount) AS total FROM orders GROUP BY region",
                    "output_view": "totals",
                },
            },
            {
                "name": "gate",
                "class_path": "airflow_ppf.components.faults.FaultInjection",
                "depends_on": ["totals"],
                "config": {"fail_on_attempts": [1], "message": "reporting database unavailable"},
            },
            {
                "name": "write_files",
                "class_path": "airflow_ppf.components.spark.WriteFiles",
                "depends_on": ["gate"],
                "config": {"input_view": "totals", "path": str(base / "out" / "totals")},
            },
            {
                "name": "write_table",
                "class_path": "airflow_ppf.components.spark.WriteTable",
                "depends_on": ["gate"],
                "config": {"input_view": "totals", "table": "obs_totals", "path": str(base / "out" / "table")},
            },
        ],
    }


def _dag_file(base: Path) -> Path:
    path = TEST_DAGS / f"{UPSTREAM}.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import datetime as dt

            from airflow.providers.standard.operators.empty import EmptyOperator
            from airflow.sdk import DAG, Asset

            from airflow_ppf.operators import PipelineOperator

            START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            with DAG({UPSTREAM!r}, schedule=None, start_date=START,
                     default_args={{"retries": 1, "retry_delay": dt.timedelta(0)}}) as dag:
                PipelineOperator(task_id="pipeline", pipeline={_pipeline(base)!r}, output_assets=True)

            with DAG({DOWNSTREAM!r}, schedule=[Asset("file://{base / "out" / "totals"}")], start_date=START,
                     is_paused_upon_creation=False) as downstream:
                EmptyOperator(task_id="report")
            """
        ),
        encoding="utf-8",
    )
    return path


class _StatsdListener:
    """Collect StatsD datagrams sent to a free UDP port on loopback."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines.extend(data.decode("utf-8", "replace").splitlines())

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        return self.lines


@pytest.fixture(scope="module")
def observed(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    base = tmp_path_factory.mktemp("observability")
    (base / "in").mkdir()
    (base / "in" / "orders.csv").write_text("region,amount\nnorth,10\nsouth,5\nnorth,7\n", encoding="utf-8")
    events_file = base / "openlineage.jsonl"
    out = base / "result.json"
    listener = _StatsdListener()
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "ppf-tests",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__TRACES__OTEL_ON": "True",
        "OTEL_TRACES_EXPORTER": "console",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.airflow.observability_run", str(_dag_file(base)), str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        metrics = listener.stop()
    assert proc.returncode == 0, proc.stderr[-5000:]
    events = [json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    yield ObservedRun(base, json.loads(out.read_text(encoding="utf-8")), events, metrics)
    (TEST_DAGS / f"{UPSTREAM}.py").unlink()


def test_the_run_failed_once_then_resumed(observed: ObservedRun) -> None:
    import pyarrow.dataset as ds

    assert observed.result["state"] == "success"
    table = ds.dataset(observed.base / "out" / "totals", format="parquet").to_table().to_pylist()
    assert sorted((r["region"], r["total"]) for r in table) == [("north", 17), ("south", 5)]


# -- OpenLineage -----------------------------------------------------------------------------------------


def _datasets(event: dict[str, Any], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["namespace"], d["name"]): d for d in event[kind]}


def test_openlineage_events_carry_the_pipeline_datasets_on_the_resumed_try(observed: ObservedRun) -> None:
    base = observed.base
    complete = observed.event("COMPLETE", 2)
    # ``read`` was skipped in try 2 (try 1 did it; its output was restored): its file is still an input.
    assert set(_datasets(complete, "inputs")) == {("file", str(base / "in" / "orders.csv"))}
    outputs = _datasets(complete, "outputs")
    assert set(outputs) == {("file", str(base / "out" / "totals")), ("file", str(base / "out" / "table"))}
    symlinks = outputs[("file", str(base / "out" / "table"))]["facets"]["symlinks"]["identifiers"]
    assert symlinks == [{"namespace": f"file://{base / 'warehouse'}", "name": "default.obs_totals", "type": "TABLE"}]

    started = observed.event("START", 2)
    assert set(_datasets(started, "inputs")) == set(_datasets(complete, "inputs"))
    assert set(_datasets(started, "outputs")) == set(outputs)


def test_openlineage_facets_say_what_was_skipped_and_why(observed: ObservedRun) -> None:
    complete = observed.event("COMPLETE", 2)
    facets = complete["run"]["facets"]
    pipeline = facets["ppf_pipeline"]
    assert pipeline["pipeline"] == "obs-totals"
    assert pipeline["attempt"] == 2
    assert pipeline["status"] == "success"
    assert pipeline["checkpointRunId"] == f"{UPSTREAM}/{observed.result['run_id']}/pipeline"
    assert len(pipeline["fingerprint"]) == 64
    assert pipeline["_schemaURL"].endswith("PpfPipelineRunFacet")

    components = {c["name"]: c for c in facets["ppf_components"]["components"]}
    assert list(components) == COMPONENTS
    assert {n: c["status"] for n, c in components.items()} == {
        "read": "skipped",
        "totals": "skipped",
        "gate": "success",
        "write_files": "success",
        "write_table": "success",
    }
    assert components["read"]["completedInAttempt"] == 1
    assert components["read"]["reason"] == "completed in attempt 1"
    assert components["read"]["durationSeconds"] > 0  # recorded by try 1
    assert components["write_files"]["completedInAttempt"] == 2
    assert components["write_files"]["outputs"] == [observed.totals_uri]

    resume = facets["ppf_resume"]
    assert resume["resumed"] is True
    assert resume["previousAttempt"] == 1
    assert resume["restoredViews"] == ["totals"]
    assert resume["restoreSeconds"] is not None
    assert resume["timeSavedGrossSeconds"] >= resume["timeSavedSeconds"]
    assert {e["name"]: e["action"] for e in resume["entries"]} == {
        "read": "skip",
        "totals": "skip",
        "gate": "run",
        "write_files": "run",
        "write_table": "run",
    }
    # The facet is the plan the checkpoint recorded for try 2, not a second opinion.
    from airflow_ppf.runner.checkpoint import CheckpointState
    from tests.airflow.conftest import task_state

    stored = task_state(UPSTREAM, observed.result["run_id"], "pipeline")
    recorded = CheckpointState.from_dict(stored["ppf_checkpoint"]["state"]).attempts[1].resume
    assert resume["headline"] == recorded["headline"]
    assert [e["reason"] for e in resume["entries"]] == [e["reason"] for e in recorded["entries"]]


def test_openlineage_failure_event_of_the_first_try(observed: ObservedRun) -> None:
    failed = observed.event("FAIL", 1)
    assert set(_datasets(failed, "inputs")) == {("file", str(observed.base / "in" / "orders.csv"))}
    assert failed["outputs"] == []  # nothing was written before the gate failed
    components = {c["name"]: c for c in failed["run"]["facets"]["ppf_components"]["components"]}
    assert components["gate"]["status"] == "failed"
    assert "reporting database unavailable" in components["gate"]["reason"]
    assert components["write_files"]["status"] == "not_run"
    assert failed["run"]["facets"]["ppf_pipeline"]["status"] == "partial_success"  # read and totals are done


# -- Assets ----------------------------------------------------------------------------------------------


def test_resumed_run_emits_each_output_asset_event_once_and_queues_the_downstream_dag(
    observed: ObservedRun,
) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.uri == observed.totals_uri)).one()
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.asset_id == asset.id, AssetEvent.source_dag_id == UPSTREAM)
        ).all()
        assert len(events) == 1
        assert events[0].source_run_id == observed.result["run_id"]
        assert events[0].extra == {"pipeline": "obs-totals", "component": "write_files"}
        queued = session.scalars(select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == DOWNSTREAM)).all()
        assert [q.asset_id for q in queued] == [asset.id]
        table = session.scalars(
            select(AssetModel).where(AssetModel.uri == f"file://{observed.base / 'out' / 'table'}")
        ).one()
        table_events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == table.id)).all()
        assert [e.extra["component"] for e in table_events] == ["write_table"]


# -- Metrics ---------------------------------------------------------------------------------------------


def _metric(lines: list[str], name: str) -> list[str]:
    """Values of the datagrams named ``airflow.<name>`` (``value|type``)."""
    return [line.split(":", 1)[1] for line in lines if line.split(":", 1)[0] == f"airflow.{name}"]


def test_metrics_reach_a_statsd_listener(observed: ObservedRun) -> None:
    lines, tail = observed.metrics, f"{UPSTREAM}.pipeline"
    # Per component, under names that carry dag, task and component (plain StatsD has no tags).
    assert [v.split("|")[1] for v in _metric(lines, f"ppf.component.duration.{tail}.read")] == ["ms"]  # try 1 only
    assert _metric(lines, f"ppf.component.succeeded.{tail}.write_files") == ["1|c"]
    assert _metric(lines, f"ppf.component.failed.{tail}.gate") == ["1|c"]
    assert _metric(lines, f"ppf.component.skipped.{tail}.read") == ["1|c"]
    assert len(_metric(lines, f"ppf.component.duration.{tail}.gate")) == 2  # failed in try 1, ran in try 2
    # Per try.
    assert _metric(lines, f"ppf.resume.skipped_components.{tail}") == ["0|g", "2|g"]
    saved = [float(v.split("|")[0]) for v in _metric(lines, f"ppf.resume.seconds_saved.{tail}")]
    assert len(saved) == 2
    assert saved[0] == 0
    # The net saving of the recorded plan (skipped work minus the restore cost of try 2), as the XCom
    # summary (and so the task log, ppf run and the checkpoint view) report it.
    run_id = observed.result["run_id"]
    plan = task_state(UPSTREAM, run_id, "pipeline")["ppf_checkpoint"]["state"]["attempts"][1]["resume"]
    assert plan["restore_ms"] > 0
    assert plan["time_saved_ms"] == plan["time_saved_gross_ms"] - plan["restore_ms"]
    summary = xcom(UPSTREAM, run_id, "pipeline")
    assert saved[1] == summary["time_saved_s"] == round(plan["time_saved_ms"] / 1000, 3)
    assert summary["time_saved_gross_s"] == round(plan["time_saved_gross_ms"] / 1000, 3)
    assert summary["restore_s"] == round(plan["restore_ms"] / 1000, 3)
    assert len(_metric(lines, f"ppf.saved_views.restore_time.{tail}")) == 1
    restored = _metric(lines, f"ppf.saved_views.restored_bytes.{tail}")
    assert len(restored) == 1
    assert int(restored[0].split("|")[0]) > 0
    assert [v.split("|")[1] for v in _metric(lines, f"ppf.saved_views.saved_bytes.{tail}.totals")] == ["c"]
    assert len(_metric(lines, f"ppf.saved_views.save_time.{tail}.read")) == 1
    assert len(_metric(lines, f"ppf.checkpoint.write_time.{tail}")) >= 8
    assert len(_metric(lines, f"ppf.pipeline.duration.{tail}")) == 2
    # The tagged names too (for StatsD with tags, Datadog, OpenTelemetry).
    assert len(_metric(lines, "ppf.component.duration")) == 6


# -- Traces ----------------------------------------------------------------------------------------------


def test_one_span_per_component_under_the_task_span(observed: ObservedRun) -> None:
    spans = observed.result["spans"]
    task_span = observed.result["task_span_id"]
    components = [s for s in spans if s["name"].startswith("ppf.component.")]
    assert all(s["parent_id"] == task_span for s in components)
    statuses = sorted((s["attributes"]["ppf.component"], s["attributes"]["ppf.component.status"]) for s in components)
    assert statuses == sorted(
        [
            ("read", "success"),
            ("totals", "success"),
            ("gate", "failed"),  # try 1
            ("read", "skipped"),
            ("totals", "skipped"),
            ("gate", "success"),
            ("write_files", "success"),
            ("write_table", "success"),  # try 2
        ]
    )
    failed = next(s for s in components if s["attributes"]["ppf.component.status"] == "failed")
    assert failed["status"] == "ERROR"
    skipped = [s["attributes"] for s in components if s["attributes"]["ppf.component.status"] == "skipped"]
    assert {(a["ppf.component"], a["ppf.skip_reason"], a["ppf.component.action"]) for a in skipped} == {
        ("read", "completed in attempt 1", "skip"),
        ("totals", "completed in attempt 1", "skip"),
    }
    assert {s["attributes"]["airflow.dag_id"] for s in components} == {UPSTREAM}


def test_restore_and_save_of_views_have_spans(observed: ObservedRun) -> None:
    spans = observed.result["spans"]
    by_id = {s["span_id"]: s for s in spans}
    saves = [s for s in spans if s["name"].startswith("ppf.save_view.")]
    # Try 1 saved the views components still to run read: orders (for totals), totals (for the writers).
    assert sorted(s["attributes"]["ppf.view"] for s in saves) == ["orders", "totals"]
    for save in saves:
        assert by_id[save["parent_id"]]["attributes"]["ppf.component"] == save["attributes"]["ppf.component"]
        assert save["attributes"]["ppf.saved_bytes"] > 0
    (restore,) = [s for s in spans if s["name"] == "ppf.restore_views"]
    assert restore["parent_id"] == observed.result["task_span_id"]
    assert restore["attributes"]["ppf.views"] == ["totals"]
    assert restore["duration_ns"] > 0
