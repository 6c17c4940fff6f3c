"""The Airflow plugin of airflow-ppf: the checkpoint inspector, in the UI and on the api-server.

Registered through the ``airflow.plugins`` entry point. It adds

* a FastAPI app mounted by the api-server at ``/ppf`` (see :mod:`airflow_ppf.plugins.checkpoint_api`);
* a **Checkpoint** tab on every task instance page and a **Pipelines** tab on every DAG run page, both
  iframes onto that app.

Every Airflow process loads plugins, so importing this module stays cheap: the app and everything it
needs (FastAPI routes, Airflow's security dependencies, the database models) are imported on the first
request the api-server sends it, never in schedulers, workers or DAG parsing. Nothing here imports pyspark.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send

from airflow_ppf.settings import CHECKPOINT_VIEW_PATH, URL_PREFIX

__all__ = ["CheckpointViewPlugin", "LazyCheckpointApp", "checkpoint_app"]


def _base_path() -> str:
    """The path of ``[api] base_url`` (``""`` at the root): the UI's tabs need absolute paths."""
    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class LazyCheckpointApp:
    """An ASGI app that builds the inspector's FastAPI app on its first request."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        """The FastAPI app (built on first use)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_ppf.plugins.checkpoint_api import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


#: The app the plugin registers (one per process).
checkpoint_app = LazyCheckpointApp()


class CheckpointViewPlugin(AirflowPlugin):
    """Checkpoint inspector of PipelineOperator tasks: a task instance tab and a DAG run tab."""

    name = "airflow_ppf"
    fastapi_apps: list[Any] = [  # noqa: RUF012 (AirflowPlugin declares these as mutable class lists)
        {"app": checkpoint_app, "url_prefix": URL_PREFIX, "name": "airflow-ppf checkpoints"}
    ]
    external_views: list[Any] = [  # noqa: RUF012
        {
            "name": "Checkpoint",
            "href": (
                f"{_base_path()}{CHECKPOINT_VIEW_PATH}"
                "?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"  # UI placeholders
            ),
            "destination": "task_instance",
            "url_route": "ppf-checkpoint",
        },
        {
            "name": "Pipelines",
            "href": f"{_base_path()}{URL_PREFIX}/run" + "?dag_id={DAG_ID}&run_id={RUN_ID}",
            "destination": "dag_run",
            "url_route": "ppf-run",
        },
    ]
