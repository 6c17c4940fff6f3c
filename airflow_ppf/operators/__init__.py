"""Airflow operators of airflow-ppf. Importing this does not import pyspark."""

from __future__ import annotations

from airflow_ppf.operators.pipeline import PipelineOperator, pipeline_run_id

__all__ = ["PipelineOperator", "pipeline_run_id"]
