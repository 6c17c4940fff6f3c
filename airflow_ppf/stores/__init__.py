"""Checkpoint stores backed by Airflow (the file and in-memory stores live in airflow_ppf.checkpoint)."""

from __future__ import annotations

from airflow_ppf.stores.task_state import TaskStateCheckpointStore

__all__ = ["TaskStateCheckpointStore"]
