"""The seed's import path of checkpoint & resume: everything of :mod:`airflow_ppf.checkpoint`, unchanged.

``from airflow_ppf.runner.checkpoint import LocalCheckpointStore, compute_pipeline_fingerprint`` works as
pyspark-pipeline-framework's ``pyspark_pipeline_framework.runner.checkpoint`` does.
"""

from __future__ import annotations

from airflow_ppf.checkpoint import *  # noqa: F403 - this module is the seed's name for that package
from airflow_ppf.checkpoint import __all__ as __all__
