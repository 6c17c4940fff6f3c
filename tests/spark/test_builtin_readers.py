"""ReadFiles and ReadTable register exactly the rows of their source as a temp view."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.components.spark import ReadFiles, ReadTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Run = Callable[[Any], Any]


def rows(spark: SparkSession, view: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in spark.table(view).collect())


def test_csv_with_header_and_inferred_schema(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("id,name,score\n1,ann,1.5\n2,bob,2.0\n", encoding="utf-8")

    run(ReadFiles(path=str(source), output_view="people", format="csv", options={"header": True, "inferSchema": True}))

    assert rows(spark, "people") == [(1, "ann", 1.5), (2, "bob", 2.0)]
    assert spark.table("people").schema.simpleString() == "struct<id:int,name:string,score:double>"


def test_csv_with_ddl_schema_and_separator(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("1;ann\n2;bob\n", encoding="utf-8")

    run(
        ReadFiles(
            path=str(source), output_view="people", format="csv", options={"sep": ";"}, schema="id INT, who STRING"
        )
    )

    assert spark.table("people").columns == ["id", "who"]
    assert rows(spark, "people") == [(1, "ann"), (2, "bob")]


def test_json_lines(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    source = tmp_path / "events.json"
    source.write_text('{"id": 1, "kind": "a"}\n{"id": 2, "kind": "b"}\n', encoding="utf-8")

    run(ReadFiles(path=str(source), output_view="events", format="json"))

    assert rows(spark, "events") == [(1, "a"), (2, "b")]


def test_parquet_is_the_default(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    source = tmp_path / "data"
    spark.createDataFrame([(1, "x"), (2, "y")], "id INT, v STRING").write.parquet(str(source))

    run(ReadFiles(path=f"file://{source}", output_view="data"))

    assert rows(spark, "data") == [(1, "x"), (2, "y")]


def test_several_paths_and_text_format(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("three\n", encoding="utf-8")

    run(ReadFiles(path=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], output_view="lines", format="text"))

    assert rows(spark, "lines") == [("one",), ("three",), ("two",)]


def test_orc(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    spark.createDataFrame([(7,)], "n INT").write.orc(str(tmp_path / "o"))

    run(ReadFiles(path=str(tmp_path / "o"), output_view="o", format="orc"))

    assert rows(spark, "o") == [(7,)]


def test_missing_path_fails_at_run(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException, match="PATH_NOT_FOUND"):
        run(ReadFiles(path=str(tmp_path / "nothing"), output_view="v"))


@pytest.fixture
def table(spark: SparkSession) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    yield name
    spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_read_table(spark: SparkSession, run: Run, table: str) -> None:
    spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING").write.saveAsTable(table)

    run(ReadTable(table=f"default.{table}", output_view="from_table"))

    assert rows(spark, "from_table") == [(1, "a"), (2, "b")]


def test_views_stay_in_their_session(spark: SparkSession, run: Run, tmp_path: Path) -> None:
    source = tmp_path / "x.json"
    source.write_text('{"id": 1}\n', encoding="utf-8")

    run(ReadFiles(path=str(source), output_view="only_here", format="json"))

    assert spark.catalog.tableExists("only_here")
    assert not spark.newSession().catalog.tableExists("only_here")
