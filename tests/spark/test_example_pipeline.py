"""A real pipeline from HOCON: ReadFiles (csv) -> SqlTransform -> SqlTransform -> WriteFiles (parquet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ppf.components.spark import SqlTransform
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import PipelineResultStatus, SimplePipelineRunner

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ORDERS = """order_id,customer,amount,status
1,ann,10.5,paid
2,bob,3.0,paid
3,ann,4.5,paid
4,cy,99.0,cancelled
5,bob,1.0,paid
"""

PIPELINE = """
name = "orders-report"
version = "1.0.0"
components = [
  {
    name = "read_orders"
    component_type = "source"
    class_path = "airflow_ppf.components.spark.ReadFiles"
    config {
      path = %(source)s
      format = "csv"
      output_view = "orders"
      options { header = true, inferSchema = true }
    }
  }
  {
    name = "paid_orders"
    class_path = "airflow_ppf.components.spark.SqlTransform"
    depends_on = ["read_orders"]
    config {
      sql = "SELECT customer, amount FROM orders WHERE status = 'paid'"
      output_view = "paid"
    }
  }
  {
    name = "totals"
    class_path = "airflow_ppf.components.spark.SqlTransform"
    depends_on = ["paid_orders"]
    config {
      sql = \"\"\"
        SELECT customer, SUM(amount) AS total, COUNT(*) AS orders
        FROM paid
        GROUP BY customer
      \"\"\"
      output_view = "totals"
    }
  }
  {
    name = "write_totals"
    component_type = "sink"
    class_path = "airflow_ppf.components.spark.WriteFiles"
    depends_on = ["totals"]
    config {
      input_view = "totals"
      path = %(target)s
      format = "parquet"
      mode = "overwrite"
    }
  }
]
"""


def test_csv_to_parquet_pipeline(spark: SparkSession, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS, encoding="utf-8")
    target = tmp_path / "report" / "totals"
    config = PipelineConfig.from_string(
        PIPELINE % {"source": json.dumps(str(source)), "target": json.dumps(str(target))}
    )

    with SimplePipelineRunner(config, spark=spark) as runner:
        result = runner.run()
        components = runner.build_components({"paid_orders", "totals"})

    assert result.status is PipelineResultStatus.SUCCESS, result.failed_components
    assert result.completed_components == ["read_orders", "paid_orders", "totals", "write_totals"]
    written = spark.read.parquet(str(target))
    assert written.columns == ["customer", "total", "orders"]
    assert sorted(tuple(r) for r in written.collect()) == [("ann", 15.0, 2), ("bob", 4.0, 2)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["totals"]

    # The transforms know what they read without being told.
    transforms = [c for c in components.values() if isinstance(c, SqlTransform)]
    assert sorted(tuple(c.input_views or ()) for c in transforms) == [("orders",), ("paid",)]

    # The runner used the session it was given and did not stop it, not even on close().
    assert not runner.spark_manager.owns_session
    assert spark.sparkContext._jsc is not None
    assert spark.range(3).count() == 3
    assert sorted(r[0] for r in spark.table("totals").collect()) == ["ann", "bob"]


def test_rerun_replaces_the_output(spark: SparkSession, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    target = tmp_path / "totals"
    config = PipelineConfig.from_string(
        PIPELINE % {"source": json.dumps(str(source)), "target": json.dumps(str(target))}
    )
    runner = SimplePipelineRunner(config, spark=spark)

    source.write_text(ORDERS, encoding="utf-8")
    assert runner.run().status is PipelineResultStatus.SUCCESS
    source.write_text("order_id,customer,amount,status\n9,dee,2.5,paid\n", encoding="utf-8")
    assert runner.run().status is PipelineResultStatus.SUCCESS

    assert [tuple(r) for r in spark.read.parquet(str(target)).collect()] == [("dee", 2.5, 1)]


# -- the example DAGs' pipelines (example_dags/*.conf), run here on the test session ---------------------

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def _example_data(folder: Path, orders: int = 2000) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_orders_data", EXAMPLE_DAGS / "orders_data.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(folder, orders=orders)
    return folder


def _run_example(spark: SparkSession, config: PipelineConfig) -> None:
    # attempt 2: the examples' fault injection fails attempt 1 only.
    with SimplePipelineRunner(config, spark=spark.newSession(), context={"attempt": 2}) as runner:
        result = runner.run()
    assert result.status is PipelineResultStatus.SUCCESS, result.failed_components


def test_region_example_reports_only_its_region(spark: SparkSession, tmp_path: Path) -> None:
    """The region's name sits in a quoted SQL string: pipeline variables must reach it."""
    from tests.helpers.example_reports import check_region_report

    data = _example_data(tmp_path / "data")
    counts = {}
    for region in ("north", "west"):
        out = tmp_path / "report" / region
        config = PipelineConfig.from_file(
            EXAMPLE_DAGS / "region_pipeline.conf",
            variables={"DATA_DIR": str(data), "OUTPUT_DIR": str(out), "REGION": region},
        )
        _run_example(spark, config)
        counts[region] = check_region_report(out / "top_customers", data, region)
    assert counts == {"north": 20, "west": 20}


def test_region_example_without_its_region_is_a_config_error() -> None:
    import pytest

    from airflow_ppf.config import ConfigError

    with pytest.raises(ConfigError, match=r"components\[2\]\.config\.sql: unknown variable 'REGION'"):
        PipelineConfig.from_file(EXAMPLE_DAGS / "region_pipeline.conf", variables={"DATA_DIR": "d", "OUTPUT_DIR": "o"})


def test_orders_example_writes_the_daily_revenue(spark: SparkSession, tmp_path: Path) -> None:
    from tests.helpers.example_reports import check_daily_revenue

    data = _example_data(tmp_path / "data")
    config = PipelineConfig.from_file(
        EXAMPLE_DAGS / "orders_pipeline.conf", variables={"DATA_DIR": str(data), "OUTPUT_DIR": str(tmp_path / "out")}
    )
    _run_example(spark, config)
    assert check_daily_revenue(tmp_path / "out" / "daily_revenue", data) == 30 * 4  # 30 days, 4 regions
