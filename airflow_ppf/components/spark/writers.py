"""Built-in writers: save a temp view to files or a table, committing file outputs atomically.

Row counts are not logged: Spark does not return them from a write, and counting would run the query a
second time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from airflow_ppf.components.base import DataFlow
from airflow_ppf.components.datasets import DatasetDecl, TableRef, location_dataset
from airflow_ppf.components.spark.arguments import (
    WRITE_FORMATS,
    OptionValue,
    check_choice,
    check_columns,
    check_options,
    check_table_name,
    check_text,
    check_view_name,
    check_write_mode,
    quote_table_name,
)
from airflow_ppf.components.spark.atomic import (
    CommitAction,
    OutputExistsError,
    RecoveryReport,
    displaced,
    qualify_path,
    recover_output,
    write_atomically,
)
from airflow_ppf.spark.fs import filesystem_for
from airflow_ppf.spark.jvm import session_state

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["TableLocationError", "WriteFiles", "WriteTable"]


class TableLocationError(RuntimeError):
    """The table to write exists, but it is not an external table at the configured ``path``."""


def _save(
    frame: DataFrame,
    format: str,
    partition_by: Sequence[str],
    options: Mapping[str, OptionValue],
    location: str,
    spark_mode: str,
) -> None:
    writer = frame.write.format(format).mode(spark_mode).options(**options)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(location)


class WriteFiles(DataFlow):
    """Write the temp view ``input_view`` to files at ``path``; a failed write never leaves a complete-looking output.

    HOCON::

        config {
          input_view = "totals"
          path = "/data/out/totals"     # any Hadoop URL (file:, hdfs:, s3a:...)
          format = "parquet"            # parquet (default), csv, json, orc, text
          mode = "overwrite"            # overwrite (default), append, error (errorifexists), ignore
          partition_by = ["day"]        # optional
          options { compression = "snappy" }   # passed to Spark's writer
        }

    Every mode but ``append`` to an existing output writes to a temporary sibling and then swaps it in
    (see :mod:`airflow_ppf.components.spark.atomic`): a failure leaves the previous output as it was and
    removes the temporary directory. ``overwrite`` replaces the whole directory (all partitions).
    ``append`` to an existing output relies on Spark's job commit. Every write first repairs an
    interrupted earlier commit (:meth:`recover`). With Spark Connect (no JVM) the write is a plain Spark
    write, with Spark's weaker guarantee.

    Raises:
        ValueError: from the constructor, naming the bad key.
    """

    def __init__(
        self,
        input_view: str,
        path: str,
        format: str = "parquet",
        mode: str = "overwrite",
        partition_by: Sequence[str] | None = None,
        options: Mapping[str, OptionValue] | None = None,
    ) -> None:
        self.input_view = check_view_name("input_view", input_view)
        self.path = check_text("path", path)
        self.format = check_choice("format", format, WRITE_FORMATS)
        self.mode = check_write_mode(mode)
        self.partition_by = check_columns("partition_by", partition_by)
        self.options = check_options("options", options)

    @property
    def input_views(self) -> Sequence[str]:
        """The view this writer saves."""
        return (self.input_view,)

    @property
    def output_views(self) -> Sequence[str]:
        """No views: it writes files or a table."""
        return ()

    @property
    def output_datasets(self) -> Sequence[DatasetDecl]:
        """The files it writes."""
        return (location_dataset(self.path),)

    def recover(self) -> RecoveryReport:
        """Repair ``path`` after a write that was killed while committing (also done before every write)."""
        return recover_output(self.spark, self.path)

    def run(self) -> None:
        """Write the view's rows to ``path``."""
        frame = self.spark.table(self.input_view)
        save = functools.partial(_save, frame, self.format, self.partition_by, self.options)
        result = write_atomically(self.spark, self.path, self.mode, save)
        self.logger.info(
            "View '%s' -> %s %s: %s%s",
            self.input_view,
            self.format,
            result.path,
            result.action.value,
            "" if result.atomic or result.action is CommitAction.APPENDED else " (not atomic: no JVM)",
        )


class WriteTable(DataFlow):
    """Save the temp view ``input_view`` as the table ``table``: external at ``path``, else managed.

    HOCON::

        config {
          input_view = "totals"
          table = "reports.totals"
          mode = "overwrite"            # overwrite (default), append, error (errorifexists), ignore
          format = "parquet"            # parquet (default), csv, json, orc, text
          partition_by = ["day"]        # optional
          path = "/data/tables/totals"  # optional: makes it an external table, written atomically
          options { compression = "zstd" }   # optional, passed to Spark's writer
        }

    With ``path`` (recommended) the files are written and committed exactly like :class:`WriteFiles`, then
    the table is registered with ``CREATE TABLE IF NOT EXISTS ... USING <format> LOCATION <path>`` (made
    again when an overwrite changed the columns) and refreshed (``MSCK REPAIR TABLE ... SYNC PARTITIONS``
    when partitioned). The files survive the process, and each run registers the table again, so this also
    works with Spark's default in-memory catalog, which forgets every table when the process ends. Mode
    ``error`` fails and ``ignore`` writes nothing when the table or the files exist (``ignore`` registers a
    missing table over files already at ``path``).

    Without ``path`` the table is managed, written by ``saveAsTable`` with Spark's own guarantees: an
    overwrite of an existing table drops it first, so a failed write loses the previous data. With the
    in-memory catalog a new process (an Airflow retry) no longer knows the table while its files remain in
    the warehouse, and Spark refuses to write it again (``LOCATION_ALREADY_EXISTS``). Mode ``overwrite``
    handles that: the orphaned files are moved aside, the table written, and the old files deleted (or put
    back if the write fails). Other modes raise :class:`OutputExistsError` saying to set ``path``.

    Raises:
        ValueError: from the constructor, naming the bad key.
    """

    def __init__(
        self,
        input_view: str,
        table: str,
        mode: str = "overwrite",
        format: str = "parquet",
        partition_by: Sequence[str] | None = None,
        path: str | None = None,
        options: Mapping[str, OptionValue] | None = None,
    ) -> None:
        self.input_view = check_view_name("input_view", input_view)
        self.table = check_table_name("table", table)
        self.mode = check_write_mode(mode)
        self.format = check_choice("format", format, WRITE_FORMATS)
        self.partition_by = check_columns("partition_by", partition_by)
        self.path = None if path is None else check_text("path", path)
        self.options = check_options("options", options)

    @property
    def input_views(self) -> Sequence[str]:
        """The view this writer saves."""
        return (self.input_view,)

    @property
    def output_views(self) -> Sequence[str]:
        """No views: it writes files or a table."""
        return ()

    @property
    def output_datasets(self) -> Sequence[DatasetDecl]:
        """The table it writes (at ``path`` when set)."""
        return (TableRef(self.table, self.path),)

    def run(self) -> None:
        """Write the view's rows and register the table."""
        frame = self.spark.table(self.input_view)
        if self.path is None:
            self._save_managed(frame)
        else:
            self._save_external(frame, self.path)

    # -- external tables -----------------------------------------------------------------------------

    def _save_external(self, frame: DataFrame, path: str) -> None:
        spark = self.spark
        quoted = quote_table_name(self.table)
        exists = spark.catalog.tableExists(self.table)
        if exists:
            location = _table_location(spark, quoted)
            if location is None or not _same_location(spark, location, path):
                raise TableLocationError(
                    f"table {self.table} exists at {location or 'no location (a view?)'}, not at path {path}; "
                    "drop it, or point 'path' at its location, or write another table"
                )
            if self.mode == "error":
                raise OutputExistsError(f"table {self.table} already exists (mode 'error'); use 'overwrite'")
            if self.mode == "ignore":
                self.logger.info("Table %s already exists (mode 'ignore'): not written", self.table)
                return
        save = functools.partial(_save, frame, self.format, self.partition_by, self.options)
        result = write_atomically(spark, path, self.mode, save)
        location_sql = _sql_string(result.path)
        create = f"CREATE TABLE IF NOT EXISTS {quoted} USING {self.format} LOCATION {location_sql}"
        if not exists:
            spark.sql(create)
        elif self.mode == "overwrite" and _columns_changed(spark.table(quoted).schema, frame.schema, self.partition_by):
            # The catalog keeps the columns a table was created with; an external table is dropped without
            # touching its files, so it is registered again over the new files.
            self.logger.info("Columns of %s changed: registering the table again", self.table)
            spark.sql(f"DROP TABLE {quoted}")
            spark.sql(create)
        else:
            spark.sql(f"REFRESH TABLE {quoted}")
        if self.partition_by:
            spark.sql(f"MSCK REPAIR TABLE {quoted} SYNC PARTITIONS")
        self.logger.info(
            "View '%s' -> external table %s (%s at %s): %s",
            self.input_view,
            self.table,
            self.format,
            result.path,
            result.action.value,
        )

    # -- managed tables ------------------------------------------------------------------------------

    def _save_managed(self, frame: DataFrame) -> None:
        spark = self.spark
        if _catalog_implementation(spark) == "in-memory":
            self.logger.warning(
                "Table %s is a managed table in Spark's in-memory catalog: a new process (an Airflow retry) "
                "will not know it; set 'path' to make it an external table whose files survive",
                self.table,
            )
        writer = frame.write.format(self.format).mode(self.mode).options(**self.options)
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        orphan = None if spark.catalog.tableExists(self.table) else _orphaned_location(spark, self.table)
        if orphan is None:
            writer.saveAsTable(self.table)
        elif self.mode == "overwrite":
            self.logger.warning(
                "The catalog does not know table %s but its files exist at %s (left by another process); "
                "replacing them",
                self.table,
                orphan,
            )
            with displaced(spark, orphan):
                writer.saveAsTable(self.table)
        else:
            raise OutputExistsError(
                f"the catalog does not know table {self.table} but its files exist at {orphan} (left by another "
                f"process: Spark's in-memory catalog forgets tables when the process ends), so mode "
                f"'{self.mode}' cannot write it; set 'path' = \"{orphan}\" to use those files as an external "
                "table, or use mode 'overwrite' to replace them"
            )
        self.logger.info("View '%s' -> managed table %s (%s, %s)", self.input_view, self.table, self.format, self.mode)


def _sql_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _table_location(spark: SparkSession, quoted: str) -> str | None:
    for row in spark.sql(f"DESCRIBE TABLE EXTENDED {quoted}").collect():
        if row["col_name"] == "Location":
            location: str = row["data_type"]
            return location
    return None


def _same_location(spark: SparkSession, left: str, right: str) -> bool:
    return qualify_path(spark, left).rstrip("/") == qualify_path(spark, right).rstrip("/")


def _columns_changed(old: StructType, new: StructType, partition_by: Sequence[str]) -> bool:
    # Partition column types are inferred from directory names, so only their names are compared.
    partitions = {c.lower() for c in partition_by}

    def signature(schema: StructType) -> set[tuple[str, str]]:
        return {
            (f.name.lower(), "" if f.name.lower() in partitions else f.dataType.simpleString()) for f in schema.fields
        }

    return signature(old) != signature(new)


def _catalog_implementation(spark: SparkSession) -> str | None:
    try:
        # No default argument: with one, Spark returns it instead of the built-in default of a static conf.
        return spark.conf.get("spark.sql.catalogImplementation")
    except Exception:
        return None


def _orphaned_location(spark: SparkSession, table: str) -> str | None:
    """Return the default location of ``table`` if files exist there although the catalog lacks the table."""
    state = session_state(spark)
    if state is None:  # Spark Connect: Spark decides
        return None
    try:
        identifier = state.sqlParser().parseTableIdentifier(table)
        location = str(state.catalog().defaultTablePath(identifier).toString())
    except Exception:  # Spark Connect, or a name the session catalog does not handle: Spark decides
        return None
    return location if filesystem_for(spark, location).exists(location) else None
