"""``materialize = auto`` does not save views that are cheap to recompute; a resume recomputes them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from airflow_ppf.checkpoint.saved_views import SavedViews
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import LocalCheckpointStore
from tests.spark.resume_support import read_output, sql, write_parquet
from tests.spark.test_resume_in_process import RUN_ID, clean_output, run_attempt

FAULT = "airflow_ppf.components.faults.FaultInjection"
CHAIN = "read only by narrow, which computes it within its own view (materialize = auto)"


@pytest.fixture
def saved_views(spark: SparkSession) -> SavedViews:
    return SavedViews(tempfile.mkdtemp(prefix="ppf-cheap-"), "p", "r", lambda: spark)


def test_narrow_queries_over_saved_or_generated_data_are_cheap(spark: SparkSession, saved_views: SavedViews) -> None:
    from pyspark.sql.functions import udf

    spark.sql("SELECT id, id * 2 AS x FROM range(100)").createOrReplaceTempView("gen")
    assert saved_views.cheap_to_recompute("gen")
    saved_views.save("c", "gen", 1)  # re-points gen at its saved copy
    spark.sql("SELECT id, x + 1 AS y FROM gen WHERE id > 5").createOrReplaceTempView("narrow")
    assert saved_views.cheap_to_recompute("narrow")
    spark.sql("SELECT id FROM gen UNION ALL SELECT id FROM narrow").createOrReplaceTempView("both")
    assert saved_views.cheap_to_recompute("both")

    expensive = {
        "agg": "SELECT x, COUNT(*) AS n FROM gen GROUP BY x",
        "joined": "SELECT g.id FROM gen g JOIN narrow n ON g.id = n.id",
        "sorted": "SELECT * FROM gen ORDER BY x DESC",
        "ranked": "SELECT id, rank() OVER (PARTITION BY x % 3 ORDER BY id) AS r FROM gen",
    }
    for view, query in expensive.items():
        spark.sql(query).createOrReplaceTempView(view)
        assert not saved_views.cheap_to_recompute(view), view
    elsewhere = Path(tempfile.mkdtemp()) / "elsewhere"
    spark.range(5).write.parquet(str(elsewhere))
    spark.read.parquet(str(elsewhere)).createOrReplaceTempView("external")
    assert not saved_views.cheap_to_recompute("external")
    csv = Path(tempfile.mkdtemp()) / "x.csv"
    csv.write_text("a\n1\n", encoding="utf-8")
    spark.read.option("header", True).csv(str(csv)).createOrReplaceTempView("from_csv")
    assert not saved_views.cheap_to_recompute("from_csv")
    spark.table("gen").select(udf(lambda v: v, "long")("id").alias("id")).createOrReplaceTempView("python")
    assert not saved_views.cheap_to_recompute("python")


def _pipeline(target: Path, gate_after: str) -> PipelineConfig:
    """gen (range) → narrow (filter) → totals (aggregate) → write, with a fault gate after ``gate_after``;
    narrow is also written as it is (``peek``), so that two components read it: what decides whether it is
    saved is then whether it is cheap (a view only one lazy view reads is computed within that one)."""
    gate = {"name": "gate", "class_path": FAULT, "depends_on": [gate_after], "config": {"fail_on_attempts": [1]}}
    after_gate = {"narrow": "totals", "totals": "write"}[gate_after]
    components = [
        sql("gen", "SELECT id, id % 7 AS k, id * 3 AS v FROM range(20000)", "gen", depends_on=[]),
        sql("narrow", "SELECT k, v FROM gen WHERE v % 2 = 0", "narrow", depends_on=["gen"]),
        sql(
            "totals", "SELECT k, SUM(v) AS total, COUNT(*) AS n FROM narrow GROUP BY k", "totals", depends_on=["narrow"]
        ),
        write_parquet("write", "totals", target, depends_on=["totals"]),
        write_parquet("peek", "narrow", target.parent / "peek", depends_on=["narrow"]),
        gate,
    ]
    for comp in components:
        if comp["name"] == after_gate:
            comp["depends_on"] = [*comp["depends_on"], "gate"]
    return PipelineConfig.from_dict({"name": "cheap-views", "components": components})


@pytest.mark.parametrize("gate_after", ["totals", "narrow"])
def test_cheap_views_are_recomputed_on_resume_and_the_output_is_exact(
    spark_session: SparkSession, tmp_path: Path, gate_after: str
) -> None:
    target = tmp_path / "out"
    config = _pipeline(target, gate_after)
    store = LocalCheckpointStore(tmp_path / "ckpt")

    first = run_attempt(spark_session, config, store)
    assert first.statuses["gate"] == "failed"
    state = store.load(RUN_ID, config.name)
    assert state is not None
    outputs = {name: state.components[name].outputs for name in state.completed_components if name != "gate"}
    assert outputs["narrow"] == [
        {"view": "narrow", "not_saved": "cheap to recompute from saved data (materialize = auto)"}
    ]
    assert outputs["gen"][0]["not_saved"] == CHAIN
    if gate_after == "totals":
        assert outputs["totals"][0]["path"]  # an aggregate is worth saving

    second = run_attempt(spark_session, config, store)
    assert second.result.success, second.result.to_dict()
    if gate_after == "totals":
        # write reads only totals, which was saved: nothing is recomputed.
        assert second.statuses == {
            "gen": "skipped",
            "narrow": "skipped",
            "totals": "skipped",
            "peek": "skipped",
            "gate": "success",
            "write": "success",
        }
    else:
        # totals reads narrow, which was not saved: narrow reruns, and so does gen, which narrow reads.
        assert second.statuses["gen"] == second.statuses["narrow"] == "success"
        reasons = next(e for e in state_events(store, config) if e["event"] == "reruns")["components"]
        assert "cheap to recompute" in reasons["narrow"]
        assert CHAIN in reasons["gen"]
    assert read_output(spark_session, target) == clean_output(
        spark_session, config_without_gate(config), tmp_path / "ref-write"
    )


def state_events(store: LocalCheckpointStore, config: PipelineConfig) -> list[dict[str, object]]:
    state = store.load(RUN_ID, config.name)
    assert state is not None
    return state.attempts[-1].events


def config_without_gate(config: PipelineConfig) -> PipelineConfig:
    """The same pipeline without the fault gate, writing elsewhere (the reference run)."""
    doc = config.to_dict()
    doc["components"] = [c for c in doc["components"] if c["name"] != "gate"]
    for comp in doc["components"]:
        comp["depends_on"] = [d for d in comp["depends_on"] if d != "gate"]
        if comp["name"] in ("write", "peek"):
            comp["config"]["path"] = str(Path(comp["config"]["path"]).parent / f"ref-{comp['name']}")
    return PipelineConfig.from_dict(doc)


def test_narrow_queries_over_saved_data_in_a_long_path_are_cheap(spark: SparkSession, tmp_path: Path) -> None:
    """Spark's plan text cuts paths short (about 100 characters), often inside the run's own folder; the
    decision must not depend on it."""
    location = tmp_path / ("a-long-data-location-" * 6)
    run_id = "scheduled__2026-11-27T00:00:00"
    views = SavedViews(str(location), "a-pipeline-with-a-long-name", run_id, lambda: spark)
    spark.sql("SELECT id, id * 2 AS x FROM range(100)").createOrReplaceTempView("long_gen")
    views.save("c", "long_gen", 1)
    spark.sql("SELECT id, x + 1 AS y FROM long_gen WHERE id > 5").createOrReplaceTempView("long_narrow")
    plan = str(spark.table("long_narrow")._jdf.queryExecution().executedPlan().toString())
    assert views.run_root.lstrip("/") not in plan  # the plan shows it cut short

    assert views.cheap_to_recompute("long_narrow")
    spark.sql("SELECT x, COUNT(*) AS n FROM long_gen GROUP BY x").createOrReplaceTempView("long_agg")
    assert not views.cheap_to_recompute("long_agg")
