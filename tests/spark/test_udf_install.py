"""The installed pyspark runs Python UDFs: its Python files and its jars are the same release.

apache-airflow-providers-apache-spark pulls in pyspark-client, which installs into the same ``pyspark/``
folder as pyspark. Different releases of the two give Python files that do not match the jars: plain
DataFrame jobs still work, Python UDFs fail, and ``pip check`` says nothing. These tests catch that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_python_udf_runs(spark_session: SparkSession) -> None:
    from pyspark.sql.functions import col, udf

    # A lambda has no type hints for pyspark to (fail to) infer a pandas UDF type from.
    shout = udf(lambda text: text.upper() + "!", "string")
    frame = spark_session.createDataFrame([("a",), ("b",)], "v STRING")

    assert [r[0] for r in frame.select(shout(col("v"))).orderBy(1).collect()] == ["A!", "B!"]


def test_python_udf_in_sql(spark: SparkSession) -> None:
    spark.udf.register("plus_one", lambda n: n + 1, "long")

    assert [r[0] for r in spark.sql("SELECT plus_one(id) FROM range(3) ORDER BY 1").collect()] == [1, 2, 3]


def test_pyspark_python_files_match_the_jvm(spark_session: SparkSession) -> None:
    import pyspark

    assert pyspark.__version__ == spark_session.version, (
        f"pyspark's Python files are {pyspark.__version__} but the Spark jars are {spark_session.version}: "
        "pyspark-client (from the Airflow Spark provider) overwrote pyspark's files; install both at one "
        "release, e.g. pip install 'pyspark==X' 'pyspark-client==X'"
    )
