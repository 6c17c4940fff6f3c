"""Datasets components declare, named per the OpenLineage naming spec (no OpenLineage, no Airflow, no Spark)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from airflow_ppf.components import Component, DatasetRef, TableRef
from airflow_ppf.components.datasets import CatalogInfo, location_dataset, resolve_dataset
from airflow_ppf.components.spark import ReadFiles, ReadTable, SqlTransform, WriteFiles, WriteTable


@pytest.mark.parametrize(
    ("location", "namespace", "name", "uri"),
    [
        ("/data/orders.csv", "file", "/data/orders.csv", "file:///data/orders.csv"),
        ("file:///data/out/", "file", "/data/out", "file:///data/out"),
        ("file:/data/out", "file", "/data/out", "file:///data/out"),
        ("file://localhost/data/out", "file", "/data/out", "file:///data/out"),
        ("file://nas1/share/x", "file://nas1", "/share/x", "file://nas1/share/x"),
        ("hdfs://nn:8020/warehouse/t", "hdfs://nn:8020", "/warehouse/t", "hdfs://nn:8020/warehouse/t"),
        ("s3a://bucket/key/part", "s3://bucket", "key/part", "s3://bucket/key/part"),
        ("s3://bucket/key/", "s3://bucket", "key", "s3://bucket/key"),
        ("gs://bucket/a/b", "gs://bucket", "a/b", "gs://bucket/a/b"),
        (
            "abfss://box@acct.dfs.core.windows.net/dir/f",
            "abfss://box@acct.dfs.core.windows.net",
            "dir/f",
            "abfss://box@acct.dfs.core.windows.net/dir/f",
        ),
    ],
)
def test_locations_are_named_per_the_openlineage_spec(location: str, namespace: str, name: str, uri: str) -> None:
    ref = location_dataset(location)
    assert (ref.namespace, ref.name) == (namespace, name)
    assert ref.uri == uri


def test_a_relative_path_is_relative_to_the_working_directory() -> None:
    assert location_dataset("data/../out/x") == DatasetRef("file", os.path.join(os.getcwd(), "out", "x"))


def test_tables_are_named_by_their_location_with_the_table_as_symlink() -> None:
    catalog = CatalogInfo(warehouse="/wh")
    assert resolve_dataset(TableRef("Totals"), catalog) == DatasetRef(
        "file", "/wh/totals", "default.totals", "file:///wh"
    )
    assert resolve_dataset(TableRef("spark_catalog.`Sales`.orders"), catalog) == DatasetRef(
        "file", "/wh/sales.db/orders", "sales.orders", "file:///wh"
    )
    external = resolve_dataset(TableRef("sales.orders", "s3a://lake/orders"), catalog)
    assert external == DatasetRef("s3://lake", "orders", "sales.orders", "file:///wh")


def test_with_a_hive_metastore_the_symlink_is_the_hive_table() -> None:
    catalog = CatalogInfo.from_spark_conf(
        {
            "spark.sql.catalogImplementation": "hive",
            "spark.hadoop.hive.metastore.uris": "thrift://meta:9083,thrift://meta2:9083",
            "spark.sql.warehouse.dir": "hdfs://nn:8020/user/hive/warehouse",
        }
    )
    ref = resolve_dataset(TableRef("sales.orders"), catalog)
    assert ref == DatasetRef(
        "hdfs://nn:8020", "/user/hive/warehouse/sales.db/orders", "sales.orders", "hive://meta:9083"
    )


def test_catalog_defaults_follow_spark() -> None:
    assert CatalogInfo.from_spark_conf({}) == CatalogInfo("spark-warehouse", None)
    # Without Hive as the catalog implementation a metastore URI is not used.
    assert CatalogInfo.from_spark_conf({"spark.hadoop.hive.metastore.uris": "thrift://m:9083"}).metastore_uri is None


def test_builtin_components_declare_their_datasets_from_their_config() -> None:
    read = ReadFiles(path=["/in/a.csv", "s3a://b/k.csv"], output_view="v", format="csv")
    assert read.input_datasets == (DatasetRef("file", "/in/a.csv"), DatasetRef("s3://b", "k.csv"))
    assert read.output_datasets == ()
    assert ReadTable(table="sales.orders", output_view="v").input_datasets == (TableRef("sales.orders"),)
    assert WriteFiles(input_view="v", path="hdfs://nn:8020/out").output_datasets == (
        DatasetRef("hdfs://nn:8020", "/out"),
    )
    assert WriteTable(input_view="v", table="t", path="/tables/t").output_datasets == (TableRef("t", "/tables/t"),)
    assert WriteTable(input_view="v", table="t").output_datasets == (TableRef("t", None),)
    # Views are not datasets: a SQL transform reads and writes views only.
    assert SqlTransform(sql="SELECT 1", output_view="v").input_datasets == ()


def test_a_custom_component_declares_any_dataset() -> None:
    class Export(Component):
        @property
        def output_datasets(self) -> Sequence[DatasetRef]:
            return (DatasetRef("postgres://db:5432", "shop.public.orders"),)

        def run(self) -> None:
            pass

    (ref,) = Export().output_datasets
    assert ref.uri == "postgres://db:5432/shop.public.orders"
    assert Export().input_datasets == ()
