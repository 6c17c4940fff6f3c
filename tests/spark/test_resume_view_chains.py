"""``materialize = auto`` saves a chain of lazy views at its end: a view whose only reader still to run is
another lazy view is computed within that reader's saved view, not saved on its own; a resume restores
the end of the chain, or reruns the chain when that copy is gone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from airflow_ppf.components import DataFlow
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import LocalCheckpointStore
from tests.spark.resume_support import FAIL_ENV, component, read_output, sql
from tests.spark.test_resume_in_process import RUN_ID, clean_output, copies, run_attempt

CHAIN_END = "read only by totals, which computes it within its own view (materialize = auto)"


class PublishOnce(DataFlow):
    """Write a view as parquet; with the fault switch on, fail after writing (a late failure)."""

    def __init__(self, input_view: str, path: str) -> None:
        self.input_view = input_view
        self.path = path

    @property
    def input_views(self) -> Sequence[str]:
        return (self.input_view,)

    @property
    def output_views(self) -> Sequence[str]:
        return ()

    def run(self) -> None:
        self.spark.table(self.input_view).write.mode("overwrite").parquet(self.path)
        if os.environ.get(FAIL_ENV):
            raise RuntimeError("publishing failed (injected)")


def _pipeline(target: Path, *, totals_policy: str | None = None, second_reader: bool = False) -> PipelineConfig:
    """gen (range) → joined (a join) → totals (an aggregate) → publish; optionally a second reader of joined."""
    totals_extra: dict[str, Any] = {"materialize": totals_policy} if totals_policy else {}
    components = [
        sql(
            "gen",
            "SELECT id, id % 50 AS k, sha2(CAST(id AS STRING), 256) AS token FROM range(20000)",
            "gen",
            depends_on=[],
        ),
        sql(
            "joined",
            "SELECT g.id, g.k, g.token, d.label FROM gen g "
            "JOIN (SELECT id AS k, concat('k-', CAST(id AS STRING)) AS label FROM range(50)) d ON g.k = d.k",
            "joined",
            depends_on=["gen"],
        ),
        sql(
            "totals",
            "SELECT label, COUNT(*) AS n, MAX(token) AS top FROM joined GROUP BY label",
            "totals",
            depends_on=["joined"],
            **totals_extra,
        ),
        component(
            "publish",
            f"{__name__}.PublishOnce",
            depends_on=["totals"] + (["tokens"] if second_reader else []),
            input_view="totals",
            path=str(target),
        ),
    ]
    if second_reader:
        components.insert(
            3,
            sql(
                "tokens", "SELECT k, COUNT(DISTINCT token) AS t FROM joined GROUP BY k", "tokens", depends_on=["joined"]
            ),
        )
    return PipelineConfig.from_dict({"name": "view-chains", "components": components})


def _reference(spark_session: SparkSession, config: PipelineConfig, tmp_path: Path) -> tuple[str, list[Any]]:
    doc = config.to_dict()
    for comp in doc["components"]:
        if comp["name"] == "publish":
            comp["config"]["path"] = str(tmp_path / "reference")
    return clean_output(spark_session, PipelineConfig.from_dict(doc), tmp_path / "reference")


def _outputs(store: LocalCheckpointStore, config: PipelineConfig) -> dict[str, list[dict[str, Any]]]:
    state = store.load(RUN_ID, config.name)
    assert state is not None
    return {name: state.components[name].outputs for name in state.completed_components}


def test_a_chain_of_lazy_views_is_saved_at_its_end_and_a_resume_restores_only_that(
    spark_session: SparkSession, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    config = _pipeline(target)
    store = LocalCheckpointStore(tmp_path / "ckpt")

    first = run_attempt(spark_session, config, store, fail=True)

    assert first.statuses["publish"] == "failed"
    outputs = _outputs(store, config)
    assert outputs["gen"] == [
        {"view": "gen", "not_saved": "read only by joined, which computes it within its own view (materialize = auto)"}
    ]
    assert outputs["joined"] == [{"view": "joined", "not_saved": CHAIN_END}]
    assert outputs["totals"][0]["path"]
    assert sorted(copies(store, config, ["gen", "joined", "totals"])) == ["totals/totals"]

    second = run_attempt(spark_session, config, store)

    assert second.statuses == {"gen": "skipped", "joined": "skipped", "totals": "skipped", "publish": "success"}
    assert read_output(spark_session, target) == _reference(spark_session, config, tmp_path)


def test_when_the_end_of_the_chain_is_lost_the_chain_reruns_and_the_output_is_exact(
    spark_session: SparkSession, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    config = _pipeline(target)
    store = LocalCheckpointStore(tmp_path / "ckpt")
    run_attempt(spark_session, config, store, fail=True)
    ((folder,),) = copies(store, config, ["totals"]).values()
    shutil.rmtree(folder)

    second = run_attempt(spark_session, config, store)

    assert second.statuses == {"gen": "success", "joined": "success", "totals": "success", "publish": "success"}
    reasons = second.hooks.plan.reruns if second.hooks.plan is not None else {}
    assert reasons["totals"].startswith("saved view 'totals' is missing")
    assert reasons["joined"] == f"its view 'joined' (read by totals) was not saved ({CHAIN_END})"
    assert read_output(spark_session, target) == _reference(spark_session, config, tmp_path)


@pytest.mark.parametrize(
    ("totals_policy", "second_reader"),
    [pytest.param(None, True, id="two-readers"), pytest.param("never", False, id="reader-saves-nothing")],
)
def test_a_view_is_saved_when_its_readers_do_not_save_it_for_it(
    spark_session: SparkSession, tmp_path: Path, totals_policy: str | None, second_reader: bool
) -> None:
    """Two lazy readers would each compute it again; a reader with materialize = never saves nothing."""
    target = tmp_path / "out"
    config = _pipeline(target, totals_policy=totals_policy, second_reader=second_reader)
    store = LocalCheckpointStore(tmp_path / "ckpt")

    run_attempt(spark_session, config, store, fail=True)

    assert _outputs(store, config)["joined"][0]["path"]
    second = run_attempt(spark_session, config, store)
    assert second.statuses["joined"] == "skipped"
    assert second.result.success, second.result.to_dict()
    assert read_output(spark_session, target) == _reference(spark_session, config, tmp_path)
