"""The atomic commit: recovery after a crash between the renames, rollback of a failed swap, Connect fallback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.components.spark import (
    AtomicCommitError,
    CommitAction,
    WriteFiles,
    recover_output,
    write_atomically,
)
from airflow_ppf.components.spark.atomic import displaced
from airflow_ppf.spark.fs import LocalFileSystem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Run = Callable[[Any], Any]
Leftovers = Callable[[Path], list[str]]


def read_rows(spark: SparkSession, path: Path) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.read.parquet(str(path)).collect())


@pytest.fixture
def out(spark: SparkSession, tmp_path: Path) -> Path:
    """An existing output with rows (1,) and (2,)."""
    path = tmp_path / "out"
    spark.createDataFrame([(1,), (2,)], "id INT").write.parquet(str(path))
    return path


def crash_between_renames(out: Path) -> None:
    """Leave what a process killed between 'rename old aside' and 'rename new in' leaves."""
    token = "00000000000000000001-abc"
    out.rename(out.with_name(f"{out.name}.ppf-old-{token}"))
    new = out.with_name(f"{out.name}.ppf-tmp-{token}")
    new.mkdir()
    (new / "part-00000.parquet").write_bytes(b"half a file")


def test_recover_restores_the_old_output(spark: SparkSession, out: Path, leftovers: Leftovers) -> None:
    crash_between_renames(out)
    assert not out.exists()

    report = WriteFiles(input_view="v", path=str(out))
    report.set_spark_session(spark)
    result = report.recover()

    assert result.changed
    assert result.restored_from is not None
    assert result.restored_from.endswith(".ppf-old-00000000000000000001-abc")
    assert [Path(p).name for p in result.removed] == ["out.ppf-tmp-00000000000000000001-abc"]
    assert read_rows(spark, out) == [(1,), (2,)]
    assert leftovers(out) == []


def test_recover_restores_the_newest_old_output(spark: SparkSession, out: Path, leftovers: Leftovers) -> None:
    older = out.with_name("out.ppf-old-00000000000000000001-aaa")
    shutil.copytree(out, older)
    spark.createDataFrame([(9,)], "id INT").write.mode("overwrite").parquet(str(out))
    out.rename(out.with_name("out.ppf-old-00000000000000000002-bbb"))

    report = recover_output(spark, str(out))

    assert report.restored_from is not None
    assert report.restored_from.endswith("00000000000000000002-bbb")
    assert read_rows(spark, out) == [(9,)]
    assert leftovers(out) == []


def test_recover_removes_an_old_output_left_after_the_commit(
    spark: SparkSession, out: Path, leftovers: Leftovers
) -> None:
    shutil.copytree(out, out.with_name("out.ppf-old-00000000000000000001-abc"))

    report = recover_output(spark, str(out))

    assert report.restored_from is None
    assert len(report.removed) == 1
    assert read_rows(spark, out) == [(1,), (2,)]
    assert leftovers(out) == []


def test_recover_with_nothing_to_do(spark: SparkSession, out: Path, tmp_path: Path) -> None:
    assert not recover_output(spark, str(out)).changed
    assert not recover_output(spark, str(tmp_path / "never-written")).changed
    (tmp_path / "out-other.ppf-old-1").mkdir()  # another output's name: not ours to touch
    assert not recover_output(spark, str(out)).changed
    assert (tmp_path / "out-other.ppf-old-1").exists()


def test_next_write_recovers_first(spark: SparkSession, run: Run, out: Path, leftovers: Leftovers) -> None:
    crash_between_renames(out)
    spark.createDataFrame([(3,)], "id INT").createOrReplaceTempView("more")

    run(WriteFiles(input_view="more", path=str(out), mode="append"))

    assert read_rows(spark, out) == [(1,), (2,), (3,)]
    assert leftovers(out) == []


def _failing_second_rename(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    real = LocalFileSystem.rename

    def rename(self: LocalFileSystem, src: str, dst: str) -> None:
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("disk said no")
        real(self, src, dst)

    monkeypatch.setattr(LocalFileSystem, "rename", rename)
    return calls


def test_failed_swap_puts_the_old_output_back(
    spark: SparkSession, run: Run, out: Path, leftovers: Leftovers, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark.createDataFrame([(7,)], "id INT").createOrReplaceTempView("new_rows")
    calls = _failing_second_rename(monkeypatch)

    with pytest.raises(AtomicCommitError, match=r"disk said no.*the previous output is back in place"):
        run(WriteFiles(input_view="new_rows", path=str(out)))

    assert [Path(dst).name.split("-")[0] for _, dst in calls] == ["out.ppf", "out", "out"]
    assert read_rows(spark, out) == [(1,), (2,)]
    assert leftovers(out) == []


def test_write_atomically_reports_what_it_did(spark: SparkSession, tmp_path: Path) -> None:
    frame = spark.createDataFrame([(1,)], "id INT")
    target = tmp_path / "t"
    seen: list[tuple[str, str]] = []

    def write(location: str, mode: str) -> None:
        seen.append((Path(location.removeprefix("file:")).name, mode))
        frame.write.mode(mode).parquet(location)

    results = [write_atomically(spark, str(target), mode, write) for mode in ("error", "overwrite", "ignore", "append")]

    assert [r.action for r in results] == [
        CommitAction.CREATED,
        CommitAction.REPLACED,
        CommitAction.SKIPPED,
        CommitAction.APPENDED,
    ]
    assert all(r.path == f"file:{target}" for r in results)
    assert [mode for _, mode in seen] == ["error", "error", "append"]  # "errorifexists" is unknown to Spark Connect
    assert seen[0][0].startswith("t.ppf-tmp-")
    assert seen[2][0] == "t"


def test_displaced_puts_the_output_back_when_the_body_fails(
    spark: SparkSession, out: Path, leftovers: Leftovers
) -> None:
    seen: list[str | None] = []

    def write_half_and_fail() -> None:
        with displaced(spark, str(out)) as old:
            seen.append(old)
            assert not out.exists()
            out.mkdir()
            (out / "junk").write_text("partial", encoding="utf-8")
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError, match="half way"):
        write_half_and_fail()

    assert seen[0] is not None
    assert ".ppf-old-" in seen[0]
    assert read_rows(spark, out) == [(1,), (2,)]
    assert leftovers(out) == []

    with displaced(spark, str(out)):
        spark.createDataFrame([(5,)], "id INT").write.parquet(str(out))
    assert read_rows(spark, out) == [(5,)]
    assert leftovers(out) == []


class _ConnectLikeSession:
    """Stands in for a Spark Connect session, which refuses JVM attributes."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"[JVM_ATTRIBUTE_NOT_SUPPORTED] {name}")


def test_without_a_jvm_the_write_is_a_plain_spark_write(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str]] = []
    session: Any = _ConnectLikeSession()

    result = write_atomically(session, "s3a://bucket/out", "errorifexists", lambda p, m: seen.append((p, m)))

    assert seen == [("s3a://bucket/out", "error")]
    assert (result.action, result.atomic) == (CommitAction.WRITTEN, False)
    assert "plain Spark write" in caplog.text
    assert not recover_output(session, "s3a://bucket/out").changed


class _ListingOnly:
    """A file system that only lists: records which directory was asked for."""

    def __init__(self, entries: list[str]) -> None:
        self.entries = entries
        self.listed: list[str] = []

    def list_dir(self, uri: str) -> list[str]:
        self.listed.append(uri)
        return self.entries


@pytest.mark.parametrize(
    ("target", "parent"),
    [
        ("file:/data/out", "file:/data"),
        ("file:/out", "file:/"),
        ("hdfs://nn:8020/out", "hdfs://nn:8020/"),
        ("s3a://bucket/a/out/", "s3a://bucket/a"),
    ],
)
def test_siblings_are_looked_up_in_the_parent(target: str, parent: str) -> None:
    from airflow_ppf.components.spark.atomic import OLD_INFIX, _siblings

    fs = _ListingOnly(
        [f"{parent.rstrip('/')}/out.ppf-old-2", f"{parent.rstrip('/')}/out.ppf-old-1", "x/outer.ppf-old-3"]
    )

    found = _siblings(fs, target, OLD_INFIX)  # type: ignore[arg-type]

    assert fs.listed == [parent]
    assert [f.rpartition("/")[2] for f in found] == ["out.ppf-old-1", "out.ppf-old-2"]
