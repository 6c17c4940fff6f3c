"""Airflow-facing helpers: reading Spark connections."""

from __future__ import annotations

from airflow_ppf.hooks.spark_connection import (
    SparkConnectionError,
    SparkConnectionSettings,
    spark_settings_from_connection,
)

__all__ = ["SparkConnectionError", "SparkConnectionSettings", "spark_settings_from_connection"]
