"""The Airflow plugin of airflow-ppf: a checkpoint inspector in the Airflow UI (served by the api-server)."""

from __future__ import annotations

from airflow_ppf.plugins.checkpoint_view import CheckpointViewPlugin

__all__ = ["CheckpointViewPlugin"]
