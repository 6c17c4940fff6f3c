"""The "Checkpoint" button of a PipelineOperator task: a link to the checkpoint inspector view."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

from airflow_ppf.settings import CHECKPOINT_VIEW_PATH

__all__ = ["CheckpointLink", "checkpoint_view_url", "task_checkpoint_url"]


def checkpoint_view_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1, base_url: str = "") -> str:
    """Return the URL of the checkpoint view of one task instance.

    Identifiers travel as query parameters, so run ids with ``:``, ``+`` or ``/`` survive any proxy.
    """
    query = urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})
    return f"{base_url.rstrip('/')}{CHECKPOINT_VIEW_PATH}?{query}"


def task_checkpoint_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """Return the checkpoint view URL of one task instance under ``[api] base_url`` (a path when unset)."""
    from airflow.sdk import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    return checkpoint_view_url(dag_id, run_id, task_id, map_index, base_url)


class CheckpointLink(BaseOperatorLink):
    """Link from a task instance to its checkpoint: components, attempts, resume plan."""

    name = "Checkpoint"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return task_checkpoint_url(ti_key.dag_id, ti_key.run_id, ti_key.task_id, getattr(ti_key, "map_index", -1))
