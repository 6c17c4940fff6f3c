"""WriteFiles writes exactly the view's rows, honours every save mode, and never leaves a half-written output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.components.spark import OutputExistsError, WriteFiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Run = Callable[[Any], Any]
Leftovers = Callable[[Path], list[str]]


def read_rows(spark: SparkSession, path: Path, format: str = "parquet", **options: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.read.format(format).options(**options).load(str(path)).collect())


@pytest.fixture
def people(spark: SparkSession) -> str:
    spark.createDataFrame([(1, "ann"), (2, "bob")], "id INT, name STRING").createOrReplaceTempView("people")
    return "people"


@pytest.fixture
def newcomers(spark: SparkSession) -> str:
    spark.createDataFrame([(3, "cy")], "id INT, name STRING").createOrReplaceTempView("newcomers")
    return "newcomers"


def test_parquet_overwrite_creates_then_replaces(
    spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    out = tmp_path / "out"

    run(WriteFiles(input_view=people, path=str(out)))
    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]
    assert (out / "_SUCCESS").exists()

    run(WriteFiles(input_view=newcomers, path=str(out)))
    assert read_rows(spark, out) == [(3, "cy")]
    assert leftovers(out) == []


def test_csv_with_header(spark: SparkSession, run: Run, people: str, tmp_path: Path) -> None:
    out = tmp_path / "csv"

    run(WriteFiles(input_view=people, path=str(out), format="csv", options={"header": True}))

    (part,) = [p for p in out.iterdir() if p.name.startswith("part-")]
    assert part.read_text(encoding="utf-8").splitlines() == ["id,name", "1,ann", "2,bob"]


def test_json(spark: SparkSession, run: Run, people: str, tmp_path: Path) -> None:
    out = tmp_path / "json"

    run(WriteFiles(input_view=people, path=str(out), format="json"))

    assert read_rows(spark, out, "json") == [(1, "ann"), (2, "bob")]


def test_partition_by_creates_partition_directories(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    spark.createDataFrame([(1, "eu"), (2, "us"), (3, "eu")], "id INT, region STRING").createOrReplaceTempView("sales")
    out = tmp_path / "sales"

    run(WriteFiles(input_view="sales", path=str(out), partition_by=["region"]))

    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["region=eu", "region=us"]
    assert sorted(tuple(r) for r in spark.read.parquet(str(out / "region=eu")).collect()) == [(1,), (3,)]
    assert read_rows(spark, out) == [(1, "eu"), (2, "us"), (3, "eu")]


def test_append_adds_rows(spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path) -> None:
    out = tmp_path / "out"

    run(WriteFiles(input_view=people, path=str(out), mode="append"))
    run(WriteFiles(input_view=newcomers, path=str(out), mode="append"))

    assert read_rows(spark, out) == [(1, "ann"), (2, "bob"), (3, "cy")]


@pytest.mark.parametrize("mode", ["error", "errorifexists"])
def test_error_mode(
    spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path, leftovers: Leftovers, mode: str
) -> None:
    out = tmp_path / "out"
    run(WriteFiles(input_view=people, path=str(out), mode=mode))
    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]

    with pytest.raises(OutputExistsError, match=r"already exists \(mode 'error'\); use mode 'overwrite'"):
        run(WriteFiles(input_view=newcomers, path=str(out), mode=mode))

    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]
    assert leftovers(out) == []


def test_ignore_mode(spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(WriteFiles(input_view=people, path=str(out), mode="ignore"))
    run(WriteFiles(input_view=newcomers, path=str(out), mode="ignore"))

    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]


def test_trailing_slash_and_file_scheme_name_the_same_output(
    spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    out = tmp_path / "out"

    run(WriteFiles(input_view=people, path=f"{out}/"))
    run(WriteFiles(input_view=newcomers, path=f"file://{out}"))

    assert read_rows(spark, out) == [(3, "cy")]
    assert leftovers(out) == []


def _explode_on_bob(spark: SparkSession, view: str) -> None:
    from pyspark.sql.functions import col, udf

    def check(name: str) -> str:
        if name == "bob":
            raise ValueError("bad row: bob")
        return name

    # A lambda has no type hints for pyspark to (fail to) infer a pandas UDF type from.
    checked = udf(lambda name: check(name), "string")
    spark.createDataFrame([(5, "ann"), (6, "bob")], "id INT, name STRING").select(
        "id", checked(col("name")).alias("name")
    ).createOrReplaceTempView(view)


@pytest.mark.parametrize("partition_by", [None, ["name"]])
def test_failed_overwrite_keeps_the_previous_output(
    spark: SparkSession,
    run: Run,
    people: str,
    tmp_path: Path,
    leftovers: Leftovers,
    partition_by: list[str] | None,
) -> None:
    out = tmp_path / "out"
    run(WriteFiles(input_view=people, path=str(out), partition_by=partition_by))
    before = read_rows(spark, out)
    _explode_on_bob(spark, "poisoned")

    with pytest.raises(Exception, match="bad row: bob"):
        run(WriteFiles(input_view="poisoned", path=str(out), partition_by=partition_by))

    assert read_rows(spark, out) == before
    assert (out / "_SUCCESS").exists()
    assert leftovers(out) == []


def test_failed_first_write_leaves_nothing(spark: SparkSession, run: Run, tmp_path: Path, leftovers: Leftovers) -> None:
    out = tmp_path / "out"
    _explode_on_bob(spark, "poisoned")

    with pytest.raises(Exception, match="bad row: bob"):
        run(WriteFiles(input_view="poisoned", path=str(out)))

    assert not out.exists()
    assert leftovers(out) == []


def test_failed_first_append_leaves_nothing(
    spark: SparkSession, run: Run, tmp_path: Path, leftovers: Leftovers
) -> None:
    out = tmp_path / "out"
    _explode_on_bob(spark, "poisoned")

    with pytest.raises(Exception, match="bad row: bob"):
        run(WriteFiles(input_view="poisoned", path=str(out), mode="append"))

    assert not out.exists()
    assert leftovers(out) == []


def test_invalid_target_keeps_the_previous_output(
    spark: SparkSession, run: Run, people: str, newcomers: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    from pyspark.errors import AnalysisException

    out = tmp_path / "out"
    run(WriteFiles(input_view=people, path=str(out)))

    with pytest.raises(AnalysisException, match="no_such_column"):
        run(WriteFiles(input_view=newcomers, path=str(out), partition_by=["no_such_column"]))

    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]
    assert leftovers(out) == []


def test_missing_input_view_touches_nothing(
    spark: SparkSession, run: Run, people: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    from pyspark.errors import AnalysisException

    out = tmp_path / "out"
    run(WriteFiles(input_view=people, path=str(out)))

    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        run(WriteFiles(input_view="nope", path=str(out)))

    assert read_rows(spark, out) == [(1, "ann"), (2, "bob")]
    assert leftovers(out) == []
