"""Resume across processes with real Spark: every attempt is a new ``python -m airflow_ppf run`` process.

The pipeline (``tests/spark/resume_support.py``): read a CSV → two SQL transforms (plus a SQL component
whose view nobody reads) → a deliberate failure right before the write → write parquet, with
``materialize = auto`` except ``paid_orders`` (``materialize = never``). The first attempt fails before
the write; it runs once and its checkpoint and data folder are copied back before each scenario, which
then damages what it wants to and resumes in a new process. Every scenario ends with an output equal
(schema and sorted rows) to that of a clean, uninterrupted run. Pipeline-level ``materialize = never``
has its own pair of processes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.checkpoint.saved_views import COMMIT_MARKER
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import PipelineResultStatus, SimplePipelineRunner
from tests.spark.resume_support import (
    ORDERS_COMPONENTS,
    attempt,
    events,
    load_state,
    orders_pipeline,
    part_files,
    read_output,
    run_attempt,
    run_root,
    saved_copies,
    statuses,
    write_orders,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PIPELINE = "orders-resume"
RUN_ID = "scheduled__2026-11-01T00:00:00+00:00"  # an Airflow-like run id: any characters work
FIRST_FOUR = ["read_orders", "paid_orders", "order_stats", "totals"]
#: The shared first attempt's policy: auto, except paid_orders.
PER_COMPONENT = {"paid_orders": "never"}
NEVER_PAID = "its view 'paid' (read by totals) was not saved (materialize = never)"


@dataclass
class Workspace:
    """One scenario's copy of the first attempt's leftovers (same absolute paths every time)."""

    config: Path
    checkpoints: Path
    output: Path

    @property
    def data(self) -> Path:
        return self.checkpoints / "_data"

    def copies(self, committed_only: bool = False) -> dict[str, list[Path]]:
        return saved_copies(self.data, PIPELINE, RUN_ID, ORDERS_COMPONENTS, committed_only=committed_only)

    def copy_of(self, key: str) -> Path:
        (folder,) = self.copies()[key]
        return folder

    def resume(self) -> Any:
        return run_attempt(self.config, RUN_ID, self.checkpoints, resume=True)


@dataclass
class FirstAttempt:
    base: Path
    golden: Path
    work: Path
    expected: tuple[str, list[tuple[Any, ...]]]
    saved_after_attempt_1: dict[str, list[Path]]

    def fresh(self) -> Workspace:
        """Put the first attempt's checkpoint, saved views and (absent) output back in place."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.golden, self.work, symlinks=True)
        return Workspace(self.work / "pipeline.conf", self.work / "checkpoints", self.work / "out" / "totals")


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, spark_session: SparkSession) -> FirstAttempt:
    base = tmp_path_factory.mktemp("resume-xproc")
    source = write_orders(base / "input" / "orders.csv")

    # The reference: the same pipeline, uninterrupted, without checkpoints, in this process.
    clean_target = base / "clean" / "totals"
    clean = PipelineConfig.from_string(orders_pipeline(source, clean_target))
    result = SimplePipelineRunner(clean, spark=spark_session.newSession()).run()
    assert result.status is PipelineResultStatus.SUCCESS, result.to_dict()
    expected = read_output(spark_session, clean_target)
    assert len(expected[1]) > 100

    work = base / "work"
    work.mkdir()
    config = work / "pipeline.conf"
    config.write_text(
        orders_pipeline(source, work / "out" / "totals", component_materialize=PER_COMPONENT), encoding="utf-8"
    )
    run1 = run_attempt(config, RUN_ID, work / "checkpoints", resume=False, fail=True)
    assert run1.returncode == 1, run1.describe()
    assert statuses(run1) == {
        **dict.fromkeys(FIRST_FOUR, "success"),
        "check_before_write": "failed",
        "write_totals": "not_run",
    }, run1.describe()
    saved = saved_copies(work / "checkpoints" / "_data", PIPELINE, RUN_ID, ORDERS_COMPONENTS)
    golden = base / "golden"
    shutil.copytree(work, golden, symlinks=True)
    return FirstAttempt(base, golden, work, expected, saved)


def _output(spark: SparkSession, ws: Workspace) -> tuple[str, list[tuple[Any, ...]]]:
    return read_output(spark.newSession(), ws.output)


def test_first_attempt_saves_only_views_a_pending_component_reads(first: FirstAttempt) -> None:
    # materialize = auto in a new process: order_stats' view has a SQL component downstream (totals) that
    # does not read it, so it is not saved. (Before Spark started, SQL inputs were unknown and every
    # view with anything downstream was saved.) paid_orders has materialize = never.
    assert sorted(first.saved_after_attempt_1) == ["read_orders/orders", "totals/totals"]
    for copies in first.saved_after_attempt_1.values():
        assert len(copies) == 1
        assert (copies[0] / COMMIT_MARKER).is_file()
        assert part_files(copies[0])
    ws = first.fresh()
    state = load_state(ws.checkpoints, RUN_ID)
    outputs = {name: state.components[name].outputs for name in FIRST_FOUR}
    assert outputs["order_stats"] == [
        {"view": "order_stats", "not_saved": "no component still to run reads it (materialize = auto)"}
    ]
    assert outputs["paid_orders"] == [{"view": "paid", "not_saved": "materialize = never"}]
    (totals,) = outputs["totals"]
    assert totals["view"] == "totals"
    assert totals["rows"] > 0
    assert totals["bytes"] > 0
    assert attempt(state, 1).failed == "check_before_write"


def test_resume_in_a_new_process_skips_finished_work_and_writes_exactly_the_clean_output(
    first: FirstAttempt, spark_session: SparkSession
) -> None:
    ws = first.fresh()
    # A save that was killed before its commit marker: an unfinished copy nobody references.
    orders = ws.copy_of("read_orders/orders")
    unfinished = orders.with_name("a1-0badc0de")
    shutil.copytree(orders, unfinished)
    (unfinished / COMMIT_MARKER).unlink()

    run2 = ws.resume()

    assert run2.returncode == 0, run2.describe()
    assert statuses(run2) == {
        **dict.fromkeys(FIRST_FOUR, "skipped"),
        "check_before_write": "success",
        "write_totals": "success",
    }
    state = load_state(ws.checkpoints, RUN_ID)
    assert [a.attempt for a in state.attempts] == [1, 2]
    one, two = attempt(state, 1), attempt(state, 2)
    assert one.ran == FIRST_FOUR
    assert one.status == "failed"
    assert two.skipped == FIRST_FOUR
    assert two.ran == ["check_before_write", "write_totals"]
    assert two.status == "completed"
    assert state.status == "completed"
    # Only the view the remaining components read was checked and restored.
    (restored,) = events(two, "restored_views")
    assert restored["views"] == ["totals"]
    assert restored["bytes"] > 0
    assert restored["seconds"] >= 0
    (cleaned,) = events(two, "cleaned_up")
    assert [Path(p).name for p in cleaned["paths"]] == ["a1-0badc0de"]
    assert not events(two, "reruns")
    # A completed run needs no saved views: they are gone (keep_saved_views is off by default).
    assert events(two, "deleted_saved_views")
    assert not run_root(ws.data, PIPELINE, RUN_ID).exists()

    assert _output(spark_session, ws) == first.expected


def test_deleted_saved_view_reruns_its_producer_and_what_it_needs(
    first: FirstAttempt, spark_session: SparkSession
) -> None:
    ws = first.fresh()
    shutil.rmtree(ws.copy_of("totals/totals"))

    run2 = ws.resume()

    assert run2.returncode == 0, run2.describe()
    # totals runs again; what it reads (paid) was not saved (paid_orders: materialize = never), so
    # paid_orders runs again too, from the restored orders. order_stats, whose view totals does not
    # read (and which was never saved), stays skipped.
    assert statuses(run2) == {
        "read_orders": "skipped",
        "paid_orders": "success",
        "order_stats": "skipped",
        "totals": "success",
        "check_before_write": "success",
        "write_totals": "success",
    }, run2.describe()
    state = load_state(ws.checkpoints, RUN_ID)
    two = attempt(state, 2)
    (reruns,) = events(two, "reruns")
    why = reruns["components"]
    assert set(why) == {"totals", "paid_orders"}
    assert why["totals"].startswith("saved view 'totals' is missing (")
    assert why["paid_orders"] == NEVER_PAID
    assert two.resume["reruns"] == why
    invalidated = {n: e["reason"] for e in two.events if e["event"] == "invalidated" for n in e["names"]}
    assert invalidated == {name: f"running again: {reason}" for name, reason in why.items()}
    (restored,) = events(two, "restored_views")
    assert restored["views"] == ["orders"]
    assert two.ran == ["paid_orders", "totals", "check_before_write", "write_totals"]
    assert two.skipped == ["read_orders", "order_stats"]
    # The CLI's --json result carries the reasons too.
    assert "is missing" in run2.stdout

    assert _output(spark_session, ws) == first.expected


def test_corrupted_saved_views_rerun_their_producers_instead_of_crashing(
    first: FirstAttempt, spark_session: SparkSession
) -> None:
    ws = first.fresh()
    # totals: a data file overwritten with garbage of the same size (its checksum no longer matches).
    totals = part_files(ws.copy_of("totals/totals"))[-1]
    size = totals.stat().st_size
    totals.write_bytes((b"\x00garbage" * size)[:size])
    # orders: the commit marker removed (as if the save had died before committing).
    (ws.copy_of("read_orders/orders") / COMMIT_MARKER).unlink()

    run2 = ws.resume()

    assert run2.returncode == 0, run2.describe()
    assert statuses(run2) == {
        "read_orders": "success",
        "paid_orders": "success",
        "order_stats": "skipped",
        "totals": "success",
        "check_before_write": "success",
        "write_totals": "success",
    }, run2.describe()
    two = attempt(load_state(ws.checkpoints, RUN_ID), 2)
    (reruns,) = events(two, "reruns")
    why = reruns["components"]
    assert set(why) == {"totals", "paid_orders", "read_orders"}
    assert why["totals"].startswith("saved view 'totals' is damaged: 1 file(s) changed content (part-")
    assert why["paid_orders"] == NEVER_PAID
    assert why["read_orders"].startswith("saved view 'orders' has no commit marker (an unfinished write)")
    assert not events(two, "restored_views")

    assert _output(spark_session, ws) == first.expected


def test_pipeline_materialize_never_reruns_the_producers_and_says_why(
    first: FirstAttempt, spark_session: SparkSession, tmp_path: Path
) -> None:
    config = tmp_path / "pipeline.conf"
    output = tmp_path / "out" / "totals"
    source = first.base / "input" / "orders.csv"
    config.write_text(orders_pipeline(source, output, materialize="never"), encoding="utf-8")
    checkpoints = tmp_path / "checkpoints"
    ws = Workspace(config, checkpoints, output)

    run1 = run_attempt(config, RUN_ID, checkpoints, resume=False, fail=True)
    assert run1.returncode == 1, run1.describe()
    assert ws.copies() == {}
    assert not ws.data.exists() or not any(ws.data.rglob("*.parquet"))

    run2 = ws.resume()

    assert run2.returncode == 0, run2.describe()
    done = statuses(run2)
    assert {n: done[n] for n in FIRST_FOUR} == {
        "read_orders": "success",
        "paid_orders": "success",
        "order_stats": "skipped",  # nobody still to run reads its view
        "totals": "success",
    }
    two = attempt(load_state(checkpoints, RUN_ID), 2)
    (reruns,) = events(two, "reruns")
    assert reruns["components"] == {
        "totals": "its view 'totals' (read by write_totals) was not saved (materialize = never)",
        "paid_orders": NEVER_PAID,
        "read_orders": "its view 'orders' (read by paid_orders) was not saved (materialize = never)",
    }
    assert not events(two, "restored_views")

    assert read_output(spark_session.newSession(), output) == first.expected
