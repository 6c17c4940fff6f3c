"""SparkSession lifecycle for pipelines: lazy creation, local / cluster / Spark Connect, owner-only stop.

Importing this package does not import pyspark.
"""

from __future__ import annotations

from airflow_ppf.spark.session import SparkSessionManager, SparkUnavailableError, check_pyspark_install
from airflow_ppf.spark.wrapper import SparkSessionWrapper

__all__ = ["SparkSessionManager", "SparkSessionWrapper", "SparkUnavailableError", "check_pyspark_install"]
