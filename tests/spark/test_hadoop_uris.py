"""Non-local URIs (``hdfs://``, ``s3a://``...) go through Hadoop's FileSystem API in the driver JVM.

No HDFS or object store runs here, but Hadoop's own ``viewfs://`` does: a mount table in the session's
Hadoop configuration maps ``viewfs://<table>/data`` onto a local folder. To this project such a URI is
as remote as ``hdfs://`` (it is not a local path, so :class:`HadoopFileSystem` handles it), while the test
can look at, and damage, the files through the local folder behind it. Covered: every file operation of
:class:`HadoopFileSystem`, the atomic writers, and saved views (save, verify, restore, rerun when
damaged) on such a location.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_ppf.checkpoint.saved_views import COMMIT_MARKER
from airflow_ppf.components.spark.atomic import (
    OLD_INFIX,
    TMP_INFIX,
    CommitResult,
    recover_output,
    write_atomically,
)
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import CheckpointHooks, LocalCheckpointStore, PipelineResultStatus, SimplePipelineRunner
from airflow_ppf.runner.checkpoint import plan_resume
from airflow_ppf.spark.fs import HadoopFileSystem, filesystem_for
from tests.spark.resume_support import FAIL_ENV, attempt, events, orders_pipeline, read_output, write_orders

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RUN_ID = "scheduled__2026-11-01T00:00:00+00:00"


@pytest.fixture
def mounted(spark_session: SparkSession, tmp_path: Path) -> tuple[str, Path]:
    """A ``viewfs://`` URI backed by a fresh local folder: ``(uri, folder)``.

    Each test gets its own mount table (the authority of the URI), so Hadoop's FileSystem cache never
    hands out a file system configured for another test.
    """
    folder = tmp_path / "mounted"
    folder.mkdir()
    table = f"ppf{uuid.uuid4().hex[:10]}"
    conf = spark_session.sparkContext._jsc.hadoopConfiguration()
    conf.set(f"fs.viewfs.mounttable.{table}.link./data", folder.as_uri())
    return f"viewfs://{table}/data", folder


def test_a_viewfs_uri_is_handled_by_hadoop(spark_session: SparkSession, mounted: tuple[str, Path]) -> None:
    uri, _ = mounted
    assert isinstance(filesystem_for(spark_session, uri), HadoopFileSystem)


def test_hadoop_file_system_operations(spark_session: SparkSession, mounted: tuple[str, Path]) -> None:
    uri, folder = mounted
    fs = HadoopFileSystem(spark_session)
    text = '{"view": "zoë", "rows": 3}\nsecond line'

    fs.write_text(f"{uri}/a/marker.json", text)

    assert (folder / "a" / "marker.json").read_text(encoding="utf-8") == text
    assert fs.read_text(f"{uri}/a/marker.json") == text
    assert fs.exists(f"{uri}/a/marker.json")
    assert not fs.exists(f"{uri}/a/missing")
    assert fs.size(f"{uri}/a/marker.json") == len(text.encode("utf-8"))
    assert [entry.rpartition("/")[2] for entry in fs.list_dir(f"{uri}/a")] == ["marker.json"]
    assert fs.list_dir(f"{uri}/nowhere") == []

    fs.write_text(f"{uri}/b/other.json", "x")
    with pytest.raises(FileExistsError, match="the target exists"):
        fs.rename(f"{uri}/a", f"{uri}/b")
    fs.rename(f"{uri}/a", f"{uri}/c/moved")
    assert (folder / "c" / "moved" / "marker.json").exists()
    assert not (folder / "a").exists()

    assert fs.delete(f"{uri}/c") is True
    assert not (folder / "c").exists()
    assert fs.delete(f"{uri}/c") is False


def test_atomic_writes_and_recovery_on_a_hadoop_uri(spark_session: SparkSession, mounted: tuple[str, Path]) -> None:
    uri, folder = mounted
    target = f"{uri}/out"

    def write(rows: int) -> CommitResult:
        frame = spark_session.range(rows)
        return write_atomically(spark_session, target, "overwrite", lambda p, m: frame.write.mode(m).parquet(p))

    first = write(10)
    assert first.atomic
    assert spark_session.read.parquet(target).count() == 10

    def failing(location: str, mode: str) -> None:
        spark_session.range(5).write.mode(mode).parquet(location)
        raise RuntimeError("the job died after writing")

    with pytest.raises(RuntimeError, match="the job died"):
        write_atomically(spark_session, target, "overwrite", failing)
    assert spark_session.read.parquet(target).count() == 10  # the previous output is untouched
    assert sorted(p.name for p in folder.iterdir()) == ["out"]  # no temporary sibling left

    write(7)
    assert spark_session.read.parquet(target).count() == 7

    # A process killed between the two renames leaves the previous output beside a missing target.
    (folder / "out").rename(folder / f"out{OLD_INFIX}00000000000000000001-killed")
    (folder / f"out{TMP_INFIX}00000000000000000002-killed").mkdir()
    report = recover_output(spark_session, target)
    assert report.changed
    assert sorted(p.name for p in folder.iterdir()) == ["out"]
    assert spark_session.read.parquet(target).count() == 7


def test_saved_views_on_a_hadoop_uri_restore_and_rerun_when_damaged(
    spark_session: SparkSession, mounted: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, folder = mounted
    source = write_orders(tmp_path / "orders.csv")
    clean = PipelineConfig.from_string(orders_pipeline(source, tmp_path / "clean"))
    assert SimplePipelineRunner(clean, spark=spark_session.newSession()).run().status is PipelineResultStatus.SUCCESS
    expected = read_output(spark_session, tmp_path / "clean")

    config = PipelineConfig.from_string(orders_pipeline(source, tmp_path / "out"))
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    def run(attempt_number: int) -> PipelineResultStatus:
        plan = plan_resume(store.load(RUN_ID, config.name), config, run_id=RUN_ID)
        hooks = CheckpointHooks(store, RUN_ID, resume_plan=plan, data_location=f"{uri}/checkpoint-data")
        runner = SimplePipelineRunner(
            config, hooks=hooks, spark=spark_session.newSession(), context={"attempt": attempt_number}
        )
        return runner.run(plan=plan).status

    monkeypatch.setenv(FAIL_ENV, "1")
    assert run(1) is PipelineResultStatus.PARTIAL_SUCCESS
    monkeypatch.delenv(FAIL_ENV)
    markers = sorted(folder.rglob(COMMIT_MARKER))
    assert markers, sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    state = store.load(RUN_ID, config.name)
    assert state is not None
    totals = next(o for o in state.components["totals"].outputs if o["view"] == "totals")
    assert totals["path"].startswith(f"{uri}/checkpoint-data/"), totals

    # Damage the saved copy of `totals` behind Hadoop's back: its producer must rerun, not crash.
    copy = folder / totals["path"].removeprefix(f"{uri}/")
    shutil.rmtree(copy)
    assert run(2) is PipelineResultStatus.SUCCESS

    two = attempt(store.load(RUN_ID, config.name), 2)
    reruns = events(two, "reruns")[0]["components"]
    assert reruns["totals"].startswith("saved view 'totals' is missing"), reruns
    assert read_output(spark_session, tmp_path / "out") == expected
    # A completed run deletes its saved views, through Hadoop too.
    assert not list(folder.rglob(COMMIT_MARKER))
    assert not list(folder.rglob("*.parquet"))
