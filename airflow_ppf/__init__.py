"""airflow-ppf: configuration-driven PySpark pipelines with checkpoint & resume, as an Airflow provider.

The pipeline core (:mod:`airflow_ppf.config`, :mod:`airflow_ppf.components`, :mod:`airflow_ppf.runner`,
:mod:`airflow_ppf.spark`) runs without Airflow; :mod:`airflow_ppf.operators` is the Airflow-facing part.
Importing this package imports neither pyspark nor Airflow.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
