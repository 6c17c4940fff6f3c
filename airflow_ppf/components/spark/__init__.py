"""Built-in Spark components: read files or tables, transform with SQL, write files or tables atomically.

Use them from a pipeline config by class path, e.g.
``class_path = "airflow_ppf.components.spark.ReadFiles"``. Each constructor argument is a key of the
component's ``config {}`` block; bad values raise ``ValueError`` naming the key.

Importing this package does not import pyspark.
"""

from __future__ import annotations

from airflow_ppf.components.spark.atomic import (
    AtomicCommitError,
    CommitAction,
    CommitResult,
    OutputExistsError,
    RecoveryReport,
    recover_output,
    write_atomically,
)
from airflow_ppf.components.spark.readers import ReadFiles, ReadTable
from airflow_ppf.components.spark.transforms import SqlTransform, infer_sql_input_views
from airflow_ppf.components.spark.writers import TableLocationError, WriteFiles, WriteTable

__all__ = [
    "AtomicCommitError",
    "CommitAction",
    "CommitResult",
    "OutputExistsError",
    "ReadFiles",
    "ReadTable",
    "RecoveryReport",
    "SqlTransform",
    "TableLocationError",
    "WriteFiles",
    "WriteTable",
    "infer_sql_input_views",
    "recover_output",
    "write_atomically",
]
