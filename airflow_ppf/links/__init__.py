"""Operator extra links of airflow-ppf."""

from __future__ import annotations

from airflow_ppf.links.checkpoint import CheckpointLink, checkpoint_view_url

__all__ = ["CheckpointLink", "checkpoint_view_url"]
