"""Bad config values of the built-in Spark components fail at construction with the key named."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from airflow_ppf.components import ComponentLoadError, create_component
from airflow_ppf.components.spark import ReadFiles, ReadTable, SqlTransform, WriteFiles, WriteTable
from airflow_ppf.config import ComponentConfig

BAD_ARGUMENTS: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
    (ReadFiles, {"path": "", "output_view": "v"}, r"'path' must be a non-empty string"),
    (ReadFiles, {"path": [], "output_view": "v"}, r"'path' must be a path or a non-empty list"),
    (ReadFiles, {"path": ["/a", 3], "output_view": "v"}, r"'path\[1\]' must be a non-empty string"),
    (ReadFiles, {"path": "/a", "output_view": "a.b"}, r"'output_view' must be a temp view name"),
    (ReadFiles, {"path": "/a", "output_view": "1v"}, r"'output_view' must be a temp view name"),
    (ReadFiles, {"path": "/a", "output_view": "v", "format": "delta"}, r"unsupported 'format' 'delta'; use one of"),
    (ReadFiles, {"path": "/a", "output_view": "v", "options": ["header"]}, r"'options' must be a mapping"),
    (ReadFiles, {"path": "/a", "output_view": "v", "options": {"sep": [","]}}, r"'options.sep' must be a string"),
    (ReadFiles, {"path": "/a", "output_view": "v", "schema": " "}, r"'schema' must be a non-empty string"),
    (ReadTable, {"table": "a b", "output_view": "v"}, r"'table' must be a table name"),
    (ReadTable, {"table": "a.b.c.d", "output_view": "v"}, r"'table' must be a table name"),
    (ReadTable, {"table": "t", "output_view": None}, r"'output_view' must be a non-empty string"),
    (SqlTransform, {"sql": "", "output_view": "v"}, r"'sql' must be a non-empty string"),
    (SqlTransform, {"sql": "SELECT 1", "output_view": "v", "input_views": 3}, r"'input_views' must be a list"),
    (SqlTransform, {"sql": "SELECT 1", "output_view": "v", "input_views": ["ok", "x-y"]}, r"'input_views\[1\]'"),
    (WriteFiles, {"input_view": "v", "path": "/o", "mode": "upsert"}, r"unsupported 'mode' 'upsert'; use one of"),
    (WriteFiles, {"input_view": "v", "path": "/o", "format": "avro"}, r"unsupported 'format' 'avro'"),
    (WriteFiles, {"input_view": "v", "path": "/o", "partition_by": {"a": 1}}, r"'partition_by' must be a list"),
    (WriteFiles, {"input_view": "v", "path": "/o", "partition_by": ["a", "a"]}, r"'partition_by' names a column"),
    (WriteFiles, {"input_view": "v", "path": "/o", "partition_by": ["a", ""]}, r"'partition_by\[1\]'"),
    (WriteFiles, {"input_view": "", "path": "/o"}, r"'input_view' must be a non-empty string"),
    (WriteFiles, {"input_view": "v", "path": None}, r"'path' must be a non-empty string"),
    (WriteTable, {"input_view": "v", "table": "t;drop"}, r"'table' must be a table name"),
    (WriteTable, {"input_view": "v", "table": "t", "mode": 1}, r"unsupported 'mode' 1"),
    (WriteTable, {"input_view": "v", "table": "t", "path": ""}, r"'path' must be a non-empty string"),
    (WriteTable, {"input_view": "v", "table": "t", "format": "jdbc"}, r"unsupported 'format' 'jdbc'"),
]


@pytest.mark.parametrize(
    ("cls", "arguments", "message"),
    BAD_ARGUMENTS,
    ids=[f"{cls.__name__}-{i}" for i, (cls, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_argument_raises_value_error_naming_the_key(
    cls: Callable[..., Any], arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**arguments)


def test_values_are_normalized() -> None:
    writer = WriteFiles(input_view="v", path="/o", format="CSV", mode="ErrorIfExists", partition_by="day")
    assert (writer.format, writer.mode, writer.partition_by) == ("csv", "error", ("day",))
    table = WriteTable(input_view="v", table="`my db`.t", mode="IGNORE")
    assert (table.table, table.mode) == ("`my db`.t", "ignore")
    assert SqlTransform(sql="SELECT 1", output_view="v", input_views="a").input_views == ("a",)


def test_views_are_declared() -> None:
    assert tuple(ReadFiles(path="/a", output_view="v").output_views) == ("v",)
    assert tuple(ReadFiles(path="/a", output_view="v").input_views) == ()
    assert tuple(ReadTable(table="db.t", output_view="v").output_views) == ("v",)
    assert tuple(WriteFiles(input_view="v", path="/o").input_views) == ("v",)
    assert tuple(WriteTable(input_view="v", table="t").input_views) == ("v",)
    assert tuple(WriteTable(input_view="v", table="t").output_views) == ()
    assert tuple(WriteFiles(input_view="v", path="/o").output_views) == ()
    assert tuple(SqlTransform(sql="SELECT 1", output_view="v").output_views) == ("v",)


def test_pipeline_config_errors_name_the_component_and_key() -> None:
    config = ComponentConfig(
        name="load",
        class_path="airflow_ppf.components.spark.ReadFiles",
        config={"path": "/data", "output_view": "v", "format": "xml"},
    )
    with pytest.raises(ComponentLoadError, match=r"'load'.*unsupported 'format' 'xml'; use one of: csv"):
        create_component(config, location="components[0]")


def test_unknown_key_is_reported_with_a_hint() -> None:
    config = ComponentConfig(
        name="load",
        class_path="airflow_ppf.components.spark.ReadFiles",
        config={"path": "/data", "output_view": "v", "opts": {"header": True}},
    )
    with pytest.raises(ComponentLoadError, match=r"unknown config key 'opts' \(did you mean 'options'\?\)"):
        create_component(config)


def test_importing_the_components_does_not_import_pyspark() -> None:
    code = "import sys, airflow_ppf.components.spark; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
