"""WriteTable: external tables committed atomically and registered again by every run; managed tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.components.spark import OutputExistsError, ReadTable, TableLocationError, WriteTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Run = Callable[[Any], Any]
Leftovers = Callable[[Path], list[str]]


def table_rows(spark: SparkSession, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.table(table).collect())


@pytest.fixture
def table(spark: SparkSession) -> Iterator[str]:
    """A table name of its own for the test (the catalog is shared by every session of the process)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    spark.sql(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def views(spark: SparkSession) -> None:
    spark.createDataFrame([(1, "eu"), (2, "us")], "id INT, region STRING").createOrReplaceTempView("first")
    spark.createDataFrame([(3, "eu")], "id INT, region STRING").createOrReplaceTempView("second")


@pytest.mark.usefixtures("views")
def test_external_table_overwrite_and_append(
    spark: SparkSession, run: Run, table: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    location = tmp_path / "tbl"

    run(WriteTable(input_view="first", table=table, path=str(location)))
    assert table_rows(spark, table) == [(1, "eu"), (2, "us")]
    described = {r["col_name"]: r["data_type"] for r in spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()}
    assert (described["Type"], described["Location"]) == ("EXTERNAL", f"file:{location}")

    run(WriteTable(input_view="second", table=table, path=str(location)))
    assert table_rows(spark, table) == [(3, "eu")]

    run(WriteTable(input_view="first", table=table, path=str(location), mode="append"))
    assert table_rows(spark, table) == [(1, "eu"), (2, "us"), (3, "eu")]
    assert leftovers(location) == []


@pytest.mark.usefixtures("views")
def test_external_table_survives_a_forgetful_catalog(spark: SparkSession, run: Run, table: str, tmp_path: Path) -> None:
    location = tmp_path / "tbl"
    run(WriteTable(input_view="first", table=table, path=str(location)))
    # What a new process with the in-memory catalog sees: files, no table. Dropping an external table
    # keeps its files.
    spark.sql(f"DROP TABLE {table}")
    assert (location / "_SUCCESS").exists()

    run(WriteTable(input_view="second", table=table, path=str(location), mode="append"))

    assert table_rows(spark, table) == [(1, "eu"), (2, "us"), (3, "eu")]


@pytest.mark.usefixtures("views")
def test_external_partitioned_table(spark: SparkSession, run: Run, table: str, tmp_path: Path) -> None:
    location = tmp_path / "tbl"

    run(WriteTable(input_view="first", table=table, path=str(location), partition_by=["region"]))
    assert sorted(p.name for p in location.iterdir() if p.is_dir()) == ["region=eu", "region=us"]
    assert sorted((r["id"], r["region"]) for r in spark.table(table).collect()) == [(1, "eu"), (2, "us")]
    assert sorted(r[0] for r in spark.sql(f"SHOW PARTITIONS {table}").collect()) == ["region=eu", "region=us"]

    run(WriteTable(input_view="second", table=table, path=str(location), partition_by=["region"]))
    assert sorted((r["id"], r["region"]) for r in spark.table(table).collect()) == [(3, "eu")]
    assert [r[0] for r in spark.sql(f"SHOW PARTITIONS {table}").collect()] == ["region=eu"]


def test_external_overwrite_with_new_columns_registers_the_table_again(
    spark: SparkSession, run: Run, table: str, tmp_path: Path
) -> None:
    location = tmp_path / "tbl"
    spark.createDataFrame([(1,)], "id INT").createOrReplaceTempView("narrow")
    spark.createDataFrame([(2, "x")], "id INT, extra STRING").createOrReplaceTempView("wide")

    run(WriteTable(input_view="narrow", table=table, path=str(location)))
    run(WriteTable(input_view="wide", table=table, path=str(location)))

    assert spark.table(table).columns == ["id", "extra"]
    assert table_rows(spark, table) == [(2, "x")]


@pytest.mark.usefixtures("views")
def test_external_error_and_ignore_modes(spark: SparkSession, run: Run, table: str, tmp_path: Path) -> None:
    location = tmp_path / "tbl"
    run(WriteTable(input_view="first", table=table, path=str(location), mode="error"))

    with pytest.raises(OutputExistsError, match=rf"table {table} already exists \(mode 'error'\)"):
        run(WriteTable(input_view="second", table=table, path=str(location), mode="error"))
    run(WriteTable(input_view="second", table=table, path=str(location), mode="ignore"))

    assert table_rows(spark, table) == [(1, "eu"), (2, "us")]


@pytest.mark.usefixtures("views")
def test_external_table_at_another_location_is_refused(
    spark: SparkSession, run: Run, table: str, tmp_path: Path
) -> None:
    run(WriteTable(input_view="first", table=table, path=str(tmp_path / "a")))

    with pytest.raises(TableLocationError, match=rf"table {table} exists at file:.*/a, not at path .*/b; drop it"):
        run(WriteTable(input_view="second", table=table, path=str(tmp_path / "b")))

    assert not (tmp_path / "b").exists()
    assert table_rows(spark, table) == [(1, "eu"), (2, "us")]


def test_failed_external_overwrite_keeps_the_table(
    spark: SparkSession, run: Run, table: str, tmp_path: Path, leftovers: Leftovers
) -> None:
    from pyspark.sql.functions import col, udf

    location = tmp_path / "tbl"
    spark.createDataFrame([(1,), (2,)], "id INT").createOrReplaceTempView("good")
    run(WriteTable(input_view="good", table=table, path=str(location)))

    def check(value: int) -> int:
        if value == 2:
            raise ValueError("bad row 2")
        return value

    spark.createDataFrame([(1,), (2,)], "id INT").select(
        udf(lambda v: check(v), "int")(col("id")).alias("id")
    ).createOrReplaceTempView("poisoned")
    with pytest.raises(Exception, match="bad row 2"):
        run(WriteTable(input_view="poisoned", table=table, path=str(location)))

    assert table_rows(spark, table) == [(1,), (2,)]
    assert leftovers(location) == []


@pytest.mark.usefixtures("views")
def test_managed_table(spark: SparkSession, run: Run, table: str, caplog: pytest.LogCaptureFixture) -> None:
    run(WriteTable(input_view="first", table=table, format="orc"))
    run(WriteTable(input_view="second", table=table, mode="append", format="orc"))

    assert table_rows(spark, table) == [(1, "eu"), (2, "us"), (3, "eu")]
    assert "in-memory catalog: a new process" in caplog.text

    run(ReadTable(table=table, output_view="back"))
    assert table_rows(spark, "back") == [(1, "eu"), (2, "us"), (3, "eu")]


def orphan_files(spark: SparkSession, table: str) -> Path:
    """Leave files where the table's managed location is, as a process that wrote it and ended does."""
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    assert warehouse is not None
    location = Path(warehouse.removeprefix("file:")) / table
    spark.createDataFrame([(0, "old")], "id INT, region STRING").write.parquet(str(location))
    return location


@pytest.mark.usefixtures("views")
def test_managed_overwrite_replaces_files_the_catalog_forgot(
    spark: SparkSession, run: Run, table: str, leftovers: Leftovers
) -> None:
    location = orphan_files(spark, table)

    run(WriteTable(input_view="first", table=table))

    assert table_rows(spark, table) == [(1, "eu"), (2, "us")]
    assert leftovers(location) == []


@pytest.mark.usefixtures("views")
@pytest.mark.parametrize("mode", ["append", "error", "ignore"])
def test_managed_write_over_forgotten_files_says_what_to_do(
    spark: SparkSession, run: Run, table: str, mode: str
) -> None:
    location = orphan_files(spark, table)

    with pytest.raises(OutputExistsError, match=r"the catalog does not know table .* set 'path' = "):
        run(WriteTable(input_view="first", table=table, mode=mode))

    assert sorted(tuple(r) for r in spark.read.parquet(str(location)).collect()) == [(0, "old")]
