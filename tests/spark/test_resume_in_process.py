"""Saving and restoring views with real Spark, in this process: each attempt runs in its own new
SparkSession (``spark_session.newSession()``), whose temp views are as empty as a new process's.

Covered here: materialize policies ``always`` and ``auto`` with custom components that declare nothing,
views Spark cannot save, damaged copies, clean-up (after success, ``keep_saved_views``, ``ppf checkpoints
clear``), failed writes, resume without a data location, and Spark failing to start during a resume.
The same things across real processes: ``test_resume_cross_process.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf import cli
from airflow_ppf.checkpoint.saved_views import COMMIT_MARKER, SavedViewDamagedError, SavedViews
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    LocalCheckpointStore,
    PipelineResult,
    PipelineResultStatus,
    SimplePipelineRunner,
)
from airflow_ppf.runner.checkpoint import plan_resume
from airflow_ppf.spark.session import SparkSessionManager
from tests.spark.conftest import leftovers
from tests.spark.resume_support import (
    FAIL_ENV,
    DropCancelledInPlace,
    JoinSegments,
    LoadOrders,
    RotSavedCopies,
    SummarizeOrders,
    attempt,
    custom,
    events,
    fault,
    orders_pipeline,
    part_files,
    read_csv,
    read_output,
    rot_a_data_page,
    run_root,
    saved_copies,
    sql,
    write_orders,
    write_parquet,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RUN_ID = "run-1"


@pytest.fixture(scope="module")
def orders_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_orders(tmp_path_factory.mktemp("resume-in-process") / "orders.csv")


@contextlib.contextmanager
def failing(fail: bool) -> Iterator[None]:
    """Make the FaultInjection components of the pipeline fail (or not)."""
    before = os.environ.pop(FAIL_ENV, None)
    if fail:
        os.environ[FAIL_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(FAIL_ENV, None)
        if before is not None:
            os.environ[FAIL_ENV] = before


@dataclass
class Attempt:
    result: PipelineResult
    session: SparkSession
    hooks: CheckpointHooks

    @property
    def statuses(self) -> dict[str, str]:
        return {r.component_name: r.status.value for r in self.result.component_results}


def run_attempt(
    spark_session: SparkSession,
    config: PipelineConfig,
    store: LocalCheckpointStore,
    *,
    fail: bool = False,
    session: SparkSession | None = None,
    prepare: Callable[[SparkSession], None] | None = None,
    **hook_args: Any,
) -> Attempt:
    """One attempt, resumed from the store's checkpoint, in a new SparkSession (unless one is given)."""
    session = session or spark_session.newSession()
    if prepare is not None:
        prepare(session)
    plan = plan_resume(store.load(RUN_ID, config.name), config, run_id=RUN_ID)
    hooks = CheckpointHooks(store, RUN_ID, resume_plan=plan, **hook_args)
    runner = SimplePipelineRunner(
        config, hooks=hooks, spark=session, context={"run_id": RUN_ID, "attempt": plan.previous_attempt + 1}
    )
    with failing(fail):
        result = runner.run(plan=plan)
    return Attempt(result, session, hooks)


def clean_output(
    spark_session: SparkSession,
    config: PipelineConfig,
    target: Path,
    prepare: Callable[[SparkSession], None] | None = None,
) -> tuple[str, list[tuple[Any, ...]]]:
    """The output of an uninterrupted run without checkpoints (the reference)."""
    session = spark_session.newSession()
    if prepare is not None:
        prepare(session)
    result = SimplePipelineRunner(config, spark=session).run()
    assert result.status is PipelineResultStatus.SUCCESS, result.to_dict()
    return read_output(spark_session, target)


def copies(store: LocalCheckpointStore, config: PipelineConfig, names: list[str]) -> dict[str, list[Path]]:
    return saved_copies(Path(store.default_data_location()), config.name, RUN_ID, names)


# -- policies ------------------------------------------------------------------------------------------


def test_policy_always_saves_every_view_and_a_new_session_restores_only_what_it_reads(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "totals"
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, target, materialize="always"))
    expected = clean_output(spark_session, config, target)
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    first = run_attempt(spark_session, config, store, fail=True)
    assert not first.result.success
    names = ["read_orders", "paid_orders", "order_stats", "totals"]
    assert sorted(copies(store, config, names)) == [
        "order_stats/order_stats",
        "paid_orders/paid",
        "read_orders/orders",
        "totals/totals",
    ]

    second = run_attempt(spark_session, config, store)

    assert second.result.status is PipelineResultStatus.SUCCESS
    assert second.result.skipped_components == names
    two = attempt(store.load(RUN_ID, config.name), 2)
    assert events(two, "restored_views")[0]["views"] == ["totals"]
    assert read_output(spark_session, target) == expected


def test_custom_components_views_are_found_in_the_catalog_saved_and_restored(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    # None of the custom components declares its views. drop_cancelled *replaces* the view 'orders'
    # (filters it in place): its version is the one summarize reads, and the one a resume must restore.
    target = tmp_path / "out" / "summary"
    config = PipelineConfig.from_dict(
        {
            "name": "custom-views",
            "components": [
                custom("load", LoadOrders, path=str(orders_csv)),
                custom("drop_cancelled", DropCancelledInPlace, depends_on=["load"]),
                custom("summarize", SummarizeOrders, depends_on=["drop_cancelled"]),
                fault("check", depends_on=["summarize"]),
                write_parquet("write", "summary", target, depends_on=["check"]),
            ],
        }
    )
    expected = clean_output(spark_session, config, target)
    assert "cancelled" not in {row[1] for row in expected[1]}
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    first = run_attempt(spark_session, config, store, fail=True)

    assert first.statuses["check"] == "failed"
    state = store.load(RUN_ID, config.name)
    assert state is not None
    recorded = {n: [o["view"] for o in state.components[n].outputs] for n in ("load", "drop_cancelled", "summarize")}
    assert recorded == {"load": ["orders"], "drop_cancelled": ["orders"], "summarize": ["summary"]}
    saved = copies(store, config, ["load", "drop_cancelled", "summarize"])
    assert sorted(saved) == ["drop_cancelled/orders", "load/orders", "summarize/summary"]

    # summarize must run again: it reads 'orders', which must be drop_cancelled's version.
    shutil.rmtree(saved["summarize/summary"][0])
    second = run_attempt(spark_session, config, store)

    assert second.result.status is PipelineResultStatus.SUCCESS
    assert second.statuses == {
        "load": "skipped",
        "drop_cancelled": "skipped",
        "summarize": "success",
        "check": "success",
        "write": "success",
    }
    two = attempt(store.load(RUN_ID, config.name), 2)
    assert list(events(two, "reruns")[0]["components"]) == ["summarize"]
    assert events(two, "restored_views")[0]["views"] == ["orders"]
    assert read_output(spark_session, target) == expected


def test_a_view_spark_cannot_save_is_recorded_as_such_and_its_producer_reruns(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "segments"
    config = PipelineConfig.from_dict(
        {
            "name": "unsavable-view",
            "components": [
                read_csv("read", orders_csv),
                custom("join", JoinSegments, depends_on=["read"]),
                fault("check", depends_on=["join"]),
                sql(
                    "segment_totals",
                    "SELECT segment, COUNT(*) AS orders, CAST(SUM(amount) AS DECIMAL(16,2)) AS amount "
                    "FROM joined GROUP BY segment",
                    "segment_totals",
                    depends_on=["check"],
                ),
                write_parquet("write", "segment_totals", target, depends_on=["segment_totals"]),
            ],
        }
    )
    expected = clean_output(spark_session, config, target)
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    first = run_attempt(spark_session, config, store, fail=True)

    # The join's view has two 'customer' columns: fine for Spark SQL, impossible to write as parquet.
    # The component still succeeds; its view is recorded as not saved, with Spark's reason.
    assert first.statuses["join"] == "success"
    assert first.statuses["check"] == "failed"
    state = store.load(RUN_ID, config.name)
    assert state is not None
    (joined,) = state.components["join"].outputs
    assert joined["view"] == "joined"
    assert "path" not in joined
    assert "Spark cannot save it as parquet" in joined["not_saved"]
    assert "COLUMN_ALREADY_EXISTS" in joined["not_saved"]
    assert not any(run_root(Path(store.default_data_location()), config.name, RUN_ID).glob("join-*/*/*"))

    second = run_attempt(spark_session, config, store)

    assert second.result.status is PipelineResultStatus.SUCCESS
    assert second.statuses["read"] == "skipped"
    assert second.statuses["join"] == "success"
    why = events(attempt(store.load(RUN_ID, config.name), 2), "reruns")[0]["components"]
    assert list(why) == ["join"]
    assert why["join"].startswith("its view 'joined' (read by segment_totals) was not saved (Spark cannot save it")
    assert read_output(spark_session, target) == expected


# -- damaged copies ----------------------------------------------------------------------------------------


def _saved_view_in_three_files(spark: SparkSession, tmp_path: Path) -> tuple[SavedViews, dict[str, Any], Path]:
    """Save a view 'v' of 3,000 rows in three files; return the saved views, the record and the copy's folder."""
    spark.range(3000).selectExpr("id", "CAST(id % 17 AS STRING) AS k").repartition(3).createOrReplaceTempView("v")
    views = SavedViews(str(tmp_path / "data"), "p", "r", lambda: spark)
    record = views.save("c", "v", 1)
    return views, record, Path(record["path"])


def _truncate(copy: Path) -> None:
    part = part_files(copy)[0]
    part.write_bytes(part.read_bytes()[:-100])


def _same_size_garbage_in_last_file(copy: Path) -> None:
    # Spark infers the schema from one file only; the damage is in another one.
    part = part_files(copy)[-1]
    size = part.stat().st_size
    part.write_bytes((b"\x00garbage" * size)[:size])


def _drop_a_file(copy: Path) -> None:
    part_files(copy)[1].unlink()


def _add_a_file(copy: Path) -> None:
    shutil.copy(part_files(copy)[0], copy / "part-99999-extra.snappy.parquet")


def _garbage_marker(copy: Path) -> None:
    (copy / COMMIT_MARKER).write_text("{not json", encoding="utf-8")


def _no_marker(copy: Path) -> None:
    (copy / COMMIT_MARKER).unlink()


def _gone(copy: Path) -> None:
    shutil.rmtree(copy)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(None, None, id="intact"),
        pytest.param(_gone, "saved view 'v' is missing", id="folder-deleted"),
        pytest.param(_no_marker, "saved view 'v' has no commit marker (an unfinished write)", id="no-marker"),
        pytest.param(_garbage_marker, "saved view 'v' cannot be read (JSONDecodeError", id="marker-garbage"),
        pytest.param(_truncate, "saved view 'v' is damaged: 1 file(s) changed size (part-00000", id="truncated"),
        pytest.param(_drop_a_file, "saved view 'v' is damaged: 1 file(s) missing (part-00001", id="file-deleted"),
        pytest.param(_add_a_file, "saved view 'v' is damaged: 1 unexpected file(s)", id="file-added"),
        pytest.param(
            _same_size_garbage_in_last_file,
            "saved view 'v' is damaged: 1 file(s) changed content (part-00002",
            id="garbage-same-size",
        ),
    ],
)
def test_verify_finds_damaged_copies(
    spark: SparkSession, tmp_path: Path, damage: Callable[[Path], None] | None, expected: str | None
) -> None:
    views, record, copy = _saved_view_in_three_files(spark, tmp_path)
    assert len(part_files(copy)) == 3
    assert record["rows"] == 3000
    if damage is not None:
        damage(copy)

    problem = views.verify(record)

    if expected is None:
        assert problem is None
        views.restore(record)
        assert spark.table("v").count() == 3000
    else:
        assert problem is not None
        assert problem.startswith(expected), problem


DAMAGE = r"saved view 'totals' at (?P<path>\S+/a\d+-\w+) is damaged: checksum mismatch in (?P<file>part-\S+\.parquet)"


def recovered(state: Any, number: int) -> list[dict[str, Any]]:
    """The ``recovered`` events of an attempt: damaged saved views remade within it."""
    return events(attempt(state, number), "recovered")


def _spark_jobs(spark: SparkSession) -> int:
    """How many Spark jobs the SparkContext has started so far."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None) or [-1]) + 1


def _flip_a_byte_inside_the_data(copy: Path) -> None:
    # Same size, footer intact: the row count read from the footers would not change.
    part = part_files(copy)[1]
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0xFF
    part.write_bytes(bytes(data))


def _replace_by_another_copy(copy: Path) -> None:
    # Another valid parquet file of the same data, written again: different bytes, same row count.
    part = part_files(copy)[0]
    other = part_files(copy)[2]
    size = part.stat().st_size
    part.write_bytes(other.read_bytes()[:size].ljust(size, b"\0"))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(None, None, id="intact"),
        pytest.param(_flip_a_byte_inside_the_data, "1 file(s) changed content (part-00001", id="byte-flipped"),
        pytest.param(_replace_by_another_copy, "1 file(s) changed content (part-00000", id="replaced"),
        pytest.param(_truncate, "1 file(s) changed size (part-00000", id="truncated"),
        pytest.param(_drop_a_file, "1 file(s) missing (part-00001", id="missing"),
    ],
)
def test_verify_compares_checksums_without_a_spark_job(
    spark: SparkSession, tmp_path: Path, damage: Callable[[Path], None] | None, expected: str | None
) -> None:
    views, record, copy = _saved_view_in_three_files(spark, tmp_path)
    marker = json.loads((copy / COMMIT_MARKER).read_text(encoding="utf-8"))
    assert sorted(marker["checksums"]) == sorted(marker["files"])
    if damage is not None:
        damage(copy)
    jobs = _spark_jobs(spark)

    problem = views.verify(record)

    assert _spark_jobs(spark) == jobs
    if expected is None:
        assert problem is None
        views.restore(record)
        assert _spark_jobs(spark) == jobs  # restoring registers the view: it reads nothing yet
        assert spark.table("v").count() == 3000
    else:
        assert problem is not None
        assert problem.startswith(f"saved view 'v' is damaged: {expected}"), problem
        assert problem.endswith(f"({record['path']})"), problem


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(None, None, id="intact"),
        pytest.param(_truncate, "saved view 'v' is damaged: 1 file(s) changed size (part-00000", id="truncated"),
        pytest.param(_same_size_garbage_in_last_file, "saved view 'v' cannot be read (", id="garbage-same-size"),
    ],
)
def test_copies_saved_without_checksums_are_verified_by_reading_their_footers(
    spark: SparkSession, tmp_path: Path, damage: Callable[[Path], None] | None, expected: str | None
) -> None:
    """Markers written before checksums were recorded (and on remote file systems, which give none)."""
    views, record, copy = _saved_view_in_three_files(spark, tmp_path)
    marker = json.loads((copy / COMMIT_MARKER).read_text(encoding="utf-8"))
    del marker["checksums"]
    (copy / COMMIT_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    if damage is not None:
        damage(copy)
    jobs = _spark_jobs(spark)

    problem = views.verify(record)

    if expected is None:
        assert problem is None
        assert _spark_jobs(spark) > jobs  # the footers were read by a Spark job
        views.restore(record)
        assert spark.table("v").count() == 3000
    else:
        assert problem is not None
        assert problem.startswith(expected), problem


@pytest.mark.parametrize("sidecars", [True, False], ids=["hadoop-crc-files", "no-crc-files"])
def test_a_copy_damaged_inside_its_data_is_remade_within_the_attempt_that_finds_it(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path, sidecars: bool
) -> None:
    """Bit rot inside a data page keeps every size and footer intact, so where the marker has no checksums
    (remote file systems, markers of earlier versions) the checks before a resume pass and the component
    that reads the copy fails. The same attempt then reruns the copy's producer (and what that needs:
    ``paid`` was not saved, so ``paid_orders`` too, from the saved ``orders``), runs the reader again and
    completes: ``retries=1`` is enough although a saved copy rotted. (With checksums the checks before the
    resume find it: ``test_verify_compares_checksums_without_a_spark_job``.)

    On local disks Hadoop keeps ``.crc`` files beside the data; object stores have none, and there only
    Parquet's page checksums (which saved copies are read with) stand between the damage and wrong rows.
    """
    target = tmp_path / "out" / "totals"
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, target))
    expected = clean_output(spark_session, config, target)
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    assert run_attempt(spark_session, config, store, fail=True).statuses["check_before_write"] == "failed"
    ((copy,),) = [folders for key, folders in copies(store, config, ["totals"]).items() if key == "totals/totals"]
    part = rot_a_data_page(copy, sidecars=sidecars)

    second = run_attempt(spark_session, config, store)

    assert second.result.status is PipelineResultStatus.SUCCESS, second.statuses
    assert second.statuses == {
        "read_orders": "skipped",
        "paid_orders": "success",
        "order_stats": "skipped",
        "totals": "success",
        "check_before_write": "success",
        "write_totals": "success",
    }
    assert read_output(spark_session, target) == expected
    state = store.load(RUN_ID, config.name)
    assert state is not None
    assert state.status == "completed"
    (event,) = recovered(state, 2)
    match = re.fullmatch(DAMAGE, event["error"])
    assert match, event["error"]
    assert (match["path"], match["file"]) == (str(copy), part.name)
    assert event["failed"] == "write_totals"
    assert list(event["reruns"]) == ["paid_orders", "totals", "write_totals"]
    assert event["reruns"]["totals"] == f"{event['error']}: write_totals could not read it"
    assert event["restored_views"] == ["orders"]
    two = attempt(state, 2)
    assert (two.failed, two.ran) == (None, ["check_before_write", "paid_orders", "totals", "write_totals"])
    assert two.skipped == ["read_orders", "order_stats"]
    invalidated = {n: e["reason"] for e in events(two, "invalidated") for n in e["names"]}
    assert invalidated["totals"].startswith(f"running again: {event['error']}")
    # The plan the attempt followed (shown by the task's XCom summary and the CLI) says so too.
    plan = second.hooks.plan
    assert plan is not None
    assert plan.reruns["totals"] == event["reruns"]["totals"]
    assert not copy.exists()  # the run completed: its saved copies, the damaged one among them, are gone


def test_a_view_made_from_a_damaged_copy_is_made_again_with_it(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    """``big_customers`` (a cheap filter, not saved) ran in the attempt and still reads the damaged copy
    lazily: rerunning ``totals`` alone would leave the sink failing again on it. It reruns too.
    (``totals`` is saved on its own, ``materialize: always``: under ``auto`` the chain totals → big would
    be saved at its end only.)"""
    target = tmp_path / "out" / "big"
    config = PipelineConfig.from_dict(
        {
            "name": "lazy-readers",
            "components": [
                read_csv("read_orders", orders_csv),
                sql("paid_orders", "SELECT * FROM orders WHERE status = 'paid'", "paid", depends_on=["read_orders"]),
                {
                    **sql(
                        "totals",
                        "SELECT customer, CAST(SUM(amount) AS DECIMAL(16,2)) AS revenue FROM paid GROUP BY customer",
                        "totals",
                        depends_on=["paid_orders"],
                    ),
                    "materialize": "always",
                },
                sql("big_customers", "SELECT * FROM totals WHERE revenue > 1000", "big", depends_on=["totals"]),
                fault("check", depends_on=["big_customers"]),
                write_parquet("write_big", "big", target, depends_on=["check"]),
            ],
        }
    )
    expected = clean_output(spark_session, config, target)
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    assert run_attempt(spark_session, config, store, fail=True).statuses["check"] == "failed"
    ((copy,),) = [folders for key, folders in copies(store, config, ["totals"]).items() if key == "totals/totals"]
    rot_a_data_page(copy)

    second = run_attempt(spark_session, config, store)

    assert second.result.status is PipelineResultStatus.SUCCESS, second.statuses
    assert read_output(spark_session, target) == expected
    (event,) = recovered(store.load(RUN_ID, config.name), 2)
    assert event["failed"] == "write_big"
    assert list(event["reruns"]) == ["paid_orders", "totals", "big_customers", "write_big"]
    assert event["reruns"]["big_customers"] == "it read the damaged saved view 'totals' of totals"


def test_a_copy_damaged_again_after_being_remade_fails_once_with_a_clear_error(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    """``rot`` reads ``totals`` and rots every saved copy of it: the copy remade after the first damage is
    rotted again, and the attempt stops there (no loop), with one error naming the copy, the file and the
    damage; the producer is marked not done for the next attempt."""
    target = tmp_path / "out" / "totals"
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    journal = tmp_path / "rot.jsonl"
    config = PipelineConfig.from_dict(
        {
            "name": "rotting",
            "components": [
                read_csv("read_orders", orders_csv),
                sql(
                    "totals",
                    "SELECT customer, COUNT(*) AS orders FROM orders GROUP BY customer",
                    "totals",
                    depends_on=["read_orders"],
                ),
                custom(
                    "rot",
                    RotSavedCopies,
                    depends_on=["totals"],
                    data_location=store.default_data_location(),
                    view="totals",
                    journal=str(journal),
                ),
                write_parquet("write_totals", "totals", target, depends_on=["rot"]),
            ],
        }
    )

    first = run_attempt(spark_session, config, store)

    assert first.result.status is PipelineResultStatus.PARTIAL_SUCCESS  # the first three did finish
    assert first.statuses == {"read_orders": "success", "totals": "success", "rot": "success", "write_totals": "failed"}
    rotted = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert [len(r) for r in rotted] == [1, 1], rotted  # the first copy, then the remade one: no third round
    ((name, error),) = first.result.failed_components
    assert name == "write_totals"
    assert isinstance(error, SavedViewDamagedError)
    match = re.fullmatch(DAMAGE + r" \(damaged again after totals remade it: not retried\)", str(error))
    assert match, str(error)
    assert str(Path(match["path"]) / match["file"]) == rotted[1][0]
    state = store.load(RUN_ID, config.name)
    assert state is not None
    assert len(recovered(state, 1)) == 1
    one = attempt(state, 1)
    assert (one.failed, one.error_type, one.error_message) == ("write_totals", "SavedViewDamagedError", str(error))
    assert "totals" not in state.completed_components
    plan = plan_resume(state, config, run_id=RUN_ID)
    assert {e.name: (e.action.value, e.reason) for e in plan.entries}["totals"] == (
        "rerun",
        f"{error}: write_totals could not read it",
    )


# -- clean-up ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["default", "keep_saved_views"])
def test_a_successful_run_deletes_its_saved_views_unless_kept(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path, keep: bool
) -> None:
    target = tmp_path / "out" / "totals"
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, target))
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    done = run_attempt(spark_session, config, store, keep_saved_views=keep)

    assert done.result.status is PipelineResultStatus.SUCCESS
    root = run_root(Path(store.default_data_location()), config.name, RUN_ID)
    one = attempt(store.load(RUN_ID, config.name), 1)
    if keep:
        # (paid, a filter over the saved orders, is cheap to recompute: not saved)
        assert sorted(copies(store, config, ["read_orders", "paid_orders", "totals"])) == [
            "read_orders/orders",
            "totals/totals",
        ]
        assert not events(one, "deleted_saved_views")
        # The views the run leaves in its session read the saved copies, which are still there.
        _, rows = read_output(spark_session, target)
        totals = done.session.table("totals").collect()
        assert sorted((tuple(r) for r in totals), key=lambda r: tuple(str(v) for v in r)) == rows
    else:
        assert not root.exists()
        assert events(one, "deleted_saved_views")[0]["why"] == "pipeline completed"
        # Rerunning the sink afterwards ("rerun from" in the checkpoint view) reruns what it reads, and says why.
        state = store.load(RUN_ID, config.name)
        assert state is not None
        state.invalidate(["write_totals"], "rerun requested")
        store.save(state)
        again = run_attempt(spark_session, config, store)
        assert again.result.status is PipelineResultStatus.SUCCESS
        reruns = events(attempt(store.load(RUN_ID, config.name), 2), "reruns")[0]["components"]
        assert set(reruns) == {"read_orders", "paid_orders", "totals"}, reruns
        assert reruns["totals"] == (
            "its saved view 'totals' (read by write_totals) was deleted when the pipeline completed in attempt 1"
            " (keep_saved_views=True keeps them)"
        )
        assert again.statuses["order_stats"] == "skipped", again.statuses


def test_checkpoints_clear_deletes_the_checkpoint_and_the_saved_views(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, tmp_path / "out" / "totals"))
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    run_attempt(spark_session, config, store, fail=True)
    root = run_root(Path(store.default_data_location()), config.name, RUN_ID)
    assert any(root.rglob(COMMIT_MARKER))

    out = io.StringIO()
    code = cli.main(["checkpoints", "--checkpoint-dir", str(store.base_dir), "clear", RUN_ID], out=out)

    assert code == 0, out.getvalue()
    assert f"Deleted saved views under {root}" in out.getvalue()
    assert not root.exists()
    assert store.load(RUN_ID, config.name) is None


def test_unreferenced_copies_are_removed_when_the_next_attempt_starts(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, tmp_path / "out" / "totals"))
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    run_attempt(spark_session, config, store, fail=True)
    (totals,) = copies(store, config, ["totals"])["totals/totals"]
    unfinished = totals.with_name("a1-unfinished")  # a save killed before its commit marker
    shutil.copytree(totals, unfinished)
    (unfinished / COMMIT_MARKER).unlink()
    superseded = totals.with_name("a0-superseded")  # committed, but no longer in the checkpoint
    shutil.copytree(totals, superseded)

    second = run_attempt(spark_session, config, store, fail=True)

    assert second.statuses["check_before_write"] == "failed"
    assert not unfinished.exists()
    assert not superseded.exists()
    assert totals.exists()
    (cleaned,) = events(attempt(store.load(RUN_ID, config.name), 2), "cleaned_up")
    assert sorted(Path(p).name for p in cleaned["paths"]) == ["a0-superseded", "a1-unfinished"]
    assert cleaned["why"] == "unfinished or superseded saved views"


# -- failed writes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("previous_output", [False, True], ids=["no-previous-output", "previous-output"])
def test_a_write_failing_halfway_leaves_nothing_that_looks_complete_and_the_next_attempt_is_exact(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path, previous_output: bool
) -> None:
    flag = tmp_path / "fail-on-one-row"

    def flaky(order_id: int) -> int:
        if order_id == 2990 and os.path.exists(flag):
            raise ValueError(f"cannot score order {order_id}")
        return order_id * 2

    def register(session: SparkSession) -> None:
        session.udf.register("ppf_flaky", flaky, "bigint")

    target = tmp_path / "out" / "scored"
    config = PipelineConfig.from_dict(
        {
            "name": "failed-write",
            "components": [
                read_csv("read", orders_csv),
                # never materialized: its Python UDF runs inside the write, over 4 write tasks
                sql(
                    "score",
                    "SELECT /*+ REPARTITION(4) */ order_id, customer, amount, ppf_flaky(order_id) AS score "
                    "FROM orders WHERE status = 'paid'",
                    "scored",
                    depends_on=["read"],
                    materialize="never",
                ),
                write_parquet("write", "scored", target, depends_on=["score"]),
            ],
        }
    )
    expected = clean_output(spark_session, config, target, prepare=register)
    if previous_output:
        shutil.rmtree(target)
        spark_session.range(5).selectExpr("id AS order_id").write.parquet(str(target))
        before = {p.name: p.read_bytes() for p in target.iterdir()}
    else:
        shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    flag.touch()

    first = run_attempt(spark_session, config, store, prepare=register)

    assert first.statuses == {"read": "success", "score": "success", "write": "failed"}
    write_result = first.result.component_results[-1]
    assert "cannot score order 2990" in str(write_result.error)
    assert leftovers(target) == []
    if previous_output:
        assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # untouched, not half-replaced
    else:
        assert not target.exists()
    state = store.load(RUN_ID, config.name)
    assert state is not None
    assert state.completed_components == ["read", "score"]
    assert state.failed_component == "write"

    flag.unlink()
    second = run_attempt(spark_session, config, store, prepare=register)

    assert second.result.status is PipelineResultStatus.SUCCESS
    assert second.statuses == {"read": "skipped", "score": "success", "write": "success"}
    assert leftovers(target) == []
    assert read_output(spark_session, target) == expected


# -- resume without saved views ------------------------------------------------------------------------


@pytest.mark.parametrize("same_session", [True, False], ids=["same-session", "new-session"])
def test_without_a_data_location_a_new_session_reruns_the_producers_instead_of_crashing(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path, same_session: bool
) -> None:
    target = tmp_path / "out" / "totals"
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, target))
    expected = clean_output(spark_session, config, target)
    shutil.rmtree(target)
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    first = run_attempt(spark_session, config, store, fail=True, data_location=None)
    assert not Path(store.default_data_location()).exists()

    second = run_attempt(
        spark_session, config, store, data_location=None, session=first.session if same_session else None
    )

    assert second.result.status is PipelineResultStatus.SUCCESS
    reruns = events(attempt(store.load(RUN_ID, config.name), 2), "reruns")
    if same_session:  # the views are still in the session: nothing to rerun
        assert second.result.skipped_components == ["read_orders", "paid_orders", "order_stats", "totals"]
        assert reruns == []
    else:
        assert second.result.skipped_components == ["order_stats"]
        assert reruns[0]["components"]["totals"] == (
            "its view 'totals' (read by write_totals) was not saved (no data location) and is not in this session"
        )
        assert sorted(reruns[0]["components"]) == ["paid_orders", "read_orders", "totals"]
    assert read_output(spark_session, target) == expected


class _SparkWontStart(SparkSessionManager):
    def get(self) -> SparkSession:
        raise RuntimeError("cannot start Spark: no resources")


def test_spark_failing_to_start_during_a_resume_keeps_the_recorded_progress(
    spark_session: SparkSession, orders_csv: Path, tmp_path: Path
) -> None:
    config = PipelineConfig.from_string(orders_pipeline(orders_csv, tmp_path / "out" / "totals"))
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    run_attempt(spark_session, config, store, fail=True)
    done = ["read_orders", "paid_orders", "order_stats", "totals"]

    plan = plan_resume(store.load(RUN_ID, config.name), config)
    hooks = CheckpointHooks(store, RUN_ID, resume_plan=plan)
    runner = SimplePipelineRunner(config, hooks=hooks, spark_manager=_SparkWontStart(config.spark))
    with pytest.raises(RuntimeError, match="cannot start Spark"):
        runner.run(plan=plan)

    # Not mistaken for damaged saved views: nothing was invalidated, the next attempt still skips them.
    state = store.load(RUN_ID, config.name)
    assert state is not None
    assert state.completed_components == done
    second = run_attempt(spark_session, config, store)
    assert second.result.skipped_components == done
    assert second.result.status is PipelineResultStatus.SUCCESS
