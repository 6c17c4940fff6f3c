"""Row counts read from parquet footers in Python agree with Spark's, and damaged footers give ``None``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from airflow_ppf.spark.parquet import parquet_row_count


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def test_row_counts_of_files_spark_wrote_match_spark(spark: SparkSession, tmp_path: Path) -> None:
    frame = spark.range(30_000).selectExpr(
        "id",
        "sha2(CAST(id AS STRING), 256) AS token",
        "CAST(id AS DOUBLE) / 7 AS ratio",
        "id % 2 = 0 AS even",
        "map('k', id) AS m",
        "array(id, id + 1) AS pair",
        "named_struct('x', id, 'y', CAST(id AS STRING)) AS s",
        "IF(id % 3 = 0, NULL, CAST(id AS DECIMAL(12, 2))) AS amount",
    )
    # Small row groups: several per file, so the footer lists many.
    frame.repartition(3).write.option("parquet.block.size", 64 * 1024).parquet(str(tmp_path / "v"))
    spark.range(0).write.parquet(str(tmp_path / "empty"))

    parts = _parts(tmp_path / "v")
    assert len(parts) == 3
    counts = [parquet_row_count(p) for p in parts]
    assert counts == [spark.read.parquet(str(p)).count() for p in parts]
    assert sum(c or 0 for c in counts) == 30_000
    assert [parquet_row_count(p) for p in _parts(tmp_path / "empty")] == [0] * len(_parts(tmp_path / "empty"))


def _garbage_at_the_start_of_the_footer(data: bytes) -> bytes:
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    return data[:start] + b"\xff" * 16 + data[start + 16 :]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-100], id="truncated"),
        pytest.param(lambda data: data[:-4] + b"XXXX", id="no-magic"),
        pytest.param(lambda data: data[:-8] + (10**9).to_bytes(4, "little") + b"PAR1", id="footer-length-too-big"),
        pytest.param(_garbage_at_the_start_of_the_footer, id="garbage-footer"),
        pytest.param(lambda data: b"", id="empty-file"),
    ],
)
def test_damaged_footers_give_none(spark: SparkSession, tmp_path: Path, damage: object) -> None:
    spark.range(1000).selectExpr("id", "CAST(id AS STRING) AS s").coalesce(1).write.parquet(str(tmp_path / "v"))
    (part,) = _parts(tmp_path / "v")
    part.write_bytes(damage(part.read_bytes()))  # type: ignore[operator]

    assert parquet_row_count(part) is None


def test_files_that_are_not_there_or_not_parquet_give_none(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("not parquet at all, but long enough", encoding="utf-8")
    assert parquet_row_count(tmp_path / "x.parquet") is None
    assert parquet_row_count(tmp_path / "missing.parquet") is None
