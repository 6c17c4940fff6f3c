"""Airflow-native observability of a pipeline task: OpenLineage, assets, ``Stats`` metrics, traces.

:class:`TaskObservability` holds the observer hooks PipelineOperator adds to every checkpointed run;
:func:`pipeline_assets` reads a config's outputs as Airflow assets (at DAG-parse time, when asked).
See docs/airflow.md, "Observability".

Importing this package imports neither the OpenLineage provider, nor OpenTelemetry, nor Airflow's
``Stats``: the modules that do (``lineage``, ``tracing``, ``metrics``) are imported when a task runs.
"""

from __future__ import annotations

from airflow_ppf.observability.assets import pipeline_assets
from airflow_ppf.observability.observer import RunObserver, TaskObservability

__all__ = ["RunObserver", "TaskObservability", "pipeline_assets"]
