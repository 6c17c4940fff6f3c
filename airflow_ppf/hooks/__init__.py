"""Airflow hooks of airflow-ppf: :class:`SparkConnectionHook` reads Spark connections for pipelines."""

from __future__ import annotations

from airflow_ppf.hooks.spark_connection import (
    SparkConnectionError,
    SparkConnectionHook,
    SparkConnectionSettings,
    spark_settings_from_connection,
)

__all__ = ["SparkConnectionError", "SparkConnectionHook", "SparkConnectionSettings", "spark_settings_from_connection"]
