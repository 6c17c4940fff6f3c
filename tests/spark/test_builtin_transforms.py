"""SqlTransform registers its query's result and knows which views the query reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ppf.components.spark import SqlTransform, infer_sql_input_views
from airflow_ppf.components.spark import transforms as transforms_module

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Run = Callable[[Any], Any]


def test_sql_result_becomes_a_view(spark: SparkSession, run: Run) -> None:
    spark.createDataFrame([("a", 1), ("a", 2), ("b", 5)], "k STRING, n INT").createOrReplaceTempView("src")

    run(SqlTransform(sql="SELECT k, SUM(n) AS total FROM src GROUP BY k", output_view="totals"))

    assert sorted(tuple(r) for r in spark.table("totals").collect()) == [("a", 3), ("b", 5)]


def test_chained_transforms_see_each_other(spark: SparkSession, run: Run) -> None:
    spark.range(5).createOrReplaceTempView("numbers")

    run(SqlTransform(sql="SELECT id * 10 AS v FROM numbers WHERE id % 2 = 0", output_view="evens"))
    run(SqlTransform(sql="SELECT SUM(v) AS s FROM evens", output_view="summed"))

    assert [tuple(r) for r in spark.table("summed").collect()] == [(60,)]


def test_missing_view_fails_at_run(run: Run) -> None:
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        run(SqlTransform(sql="SELECT * FROM no_such_view", output_view="out"))


def test_declared_input_views_win(spark: SparkSession) -> None:
    transform = SqlTransform(sql="SELECT * FROM a JOIN b USING (id)", output_view="o", input_views=["a"])
    transform.set_spark_session(spark)

    assert tuple(transform.input_views or ()) == ("a",)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM orders", ("orders",)),
        ("SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN a AS again USING (id)", ("a", "b")),
        ("SELECT * FROM a WHERE id IN (SELECT id FROM b) AND EXISTS (SELECT 1 FROM c)", ("a", "b", "c")),
        ("SELECT (SELECT MAX(id) FROM s) AS m FROM t", ("t", "s")),
        ("WITH x AS (SELECT * FROM base) SELECT * FROM x JOIN other USING (id)", ("base", "other")),
        ("WITH x AS (SELECT 1 AS id), y AS (SELECT * FROM x) SELECT * FROM y", ()),
        ("WITH a AS (SELECT * FROM a) SELECT * FROM a", ("a",)),
        ("SELECT * FROM (WITH q AS (SELECT 1) SELECT * FROM q) JOIN q USING (id)", ("q",)),
        ("SELECT * FROM db.tbl JOIN parquet.`/tmp/x` JOIN global_temp.g JOIN local_view", ("local_view",)),
        ("SELECT * FROM u1 UNION ALL SELECT * FROM u2 UNION ALL SELECT * FROM u1", ("u1", "u2")),
        ("SELECT * FROM `Odd Name`", ("Odd Name",)),
        ("SELECT * FROM range(10)", ()),
        ("SELECT 1", ()),
    ],
)
def test_input_views_inferred_from_the_sql(spark: SparkSession, sql: str, expected: tuple[str, ...]) -> None:
    assert infer_sql_input_views(spark, sql) == expected


def test_inference_needs_no_existing_views(spark: SparkSession) -> None:
    transform = SqlTransform(sql="SELECT * FROM not_yet_created JOIN neither USING (k)", output_view="o")
    transform.set_spark_session(spark)

    assert tuple(transform.input_views or ()) == ("not_yet_created", "neither")


def test_inference_uses_the_active_session_before_injection(spark_session: SparkSession) -> None:
    assert SqlTransform(sql="SELECT * FROM early", output_view="o").input_views == ("early",)


def test_inputs_are_unknown_when_inference_is_impossible(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    unparsable = SqlTransform(sql="SELEC nonsense FROM", output_view="o")
    unparsable.set_spark_session(spark)
    assert unparsable.input_views is None

    monkeypatch.setattr(transforms_module, "_active_session", lambda: None)
    assert SqlTransform(sql="SELECT * FROM v", output_view="o").input_views is None


class _ConnectLikeSession:
    """Stands in for a Spark Connect session, which refuses JVM attributes."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"[JVM_ATTRIBUTE_NOT_SUPPORTED] {name}")


def test_no_inference_without_a_jvm() -> None:
    assert infer_sql_input_views(_ConnectLikeSession(), "SELECT * FROM v") is None  # type: ignore[arg-type]
    transform = SqlTransform(sql="SELECT * FROM v", output_view="o")
    transform.set_spark_session(_ConnectLikeSession())  # type: ignore[arg-type]
    assert transform.input_views is None
