"""Built-in readers: load files or a catalog table into a temp view for the components downstream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from airflow_ppf.components.base import DataFlow
from airflow_ppf.components.datasets import DatasetDecl, TableRef, location_dataset
from airflow_ppf.components.spark.arguments import (
    READ_FORMATS,
    OptionValue,
    check_choice,
    check_options,
    check_table_name,
    check_text,
    check_view_name,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["ReadFiles", "ReadTable"]


class ReadFiles(DataFlow):
    """Read files (csv, json, parquet, orc, text) and register them as the temp view ``output_view``.

    HOCON::

        config {
          path = "/data/orders.csv"          # or a list of paths; any Hadoop URL (file:, hdfs:, s3a:...)
          output_view = "orders"
          format = "csv"                      # parquet (default), csv, json, orc, text
          options { header = true, inferSchema = true }   # passed to Spark's reader
          schema = "id INT, amount DOUBLE"   # optional DDL schema (skips inference)
        }

    Raises:
        ValueError: from the constructor, naming the bad key.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        output_view: str,
        format: str = "parquet",
        options: Mapping[str, OptionValue] | None = None,
        schema: str | None = None,
    ) -> None:
        if isinstance(path, list | tuple):
            if not path:
                raise ValueError("'path' must be a path or a non-empty list of paths, got an empty list")
            self.paths = [check_text(f"path[{i}]", p) for i, p in enumerate(path)]
        else:
            self.paths = [check_text("path", path)]
        self.output_view = check_view_name("output_view", output_view)
        self.format = check_choice("format", format, READ_FORMATS)
        self.options = check_options("options", options)
        self.schema = None if schema is None else check_text("schema", schema)

    @property
    def input_views(self) -> Sequence[str]:
        """No views: it reads files or a table."""
        return ()

    @property
    def output_views(self) -> Sequence[str]:
        """The view this reader registers."""
        return (self.output_view,)

    @property
    def input_datasets(self) -> Sequence[DatasetDecl]:
        """The files it reads, one dataset per path."""
        return tuple(location_dataset(p) for p in self.paths)

    def read(self) -> DataFrame:
        """Return the files as a DataFrame (without registering a view)."""
        reader = self.spark.read.format(self.format).options(**self.options)
        if self.schema is not None:
            reader = reader.schema(self.schema)
        return reader.load(self.paths[0] if len(self.paths) == 1 else self.paths)

    def run(self) -> None:
        """Read the files and register the view."""
        frame = self.read()
        frame.createOrReplaceTempView(self.output_view)
        self.logger.info(
            "Read %s %s into view '%s' (%d columns)",
            self.format,
            ", ".join(self.paths),
            self.output_view,
            len(frame.columns),
        )


class ReadTable(DataFlow):
    """Register a catalog table (``spark.table(table)``) as the temp view ``output_view``.

    HOCON::

        config { table = "sales.orders", output_view = "orders" }

    Raises:
        ValueError: from the constructor, naming the bad key.
    """

    def __init__(self, table: str, output_view: str) -> None:
        self.table = check_table_name("table", table)
        self.output_view = check_view_name("output_view", output_view)

    @property
    def input_views(self) -> Sequence[str]:
        """No views: it reads files or a table."""
        return ()

    @property
    def output_views(self) -> Sequence[str]:
        """The view this reader registers."""
        return (self.output_view,)

    @property
    def input_datasets(self) -> Sequence[DatasetDecl]:
        """The table it reads."""
        return (TableRef(self.table),)

    def run(self) -> None:
        """Look the table up and register the view."""
        frame = self.spark.table(self.table)
        frame.createOrReplaceTempView(self.output_view)
        self.logger.info("Read table %s into view '%s' (%d columns)", self.table, self.output_view, len(frame.columns))
