"""The plugin's registration: entry point, what Airflow's plugin manager and api-server make of it, its
import cost, and that every route carries Airflow's authorisation dependency."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.usefixtures("airflow_db")

TI_HREF = "/ppf/checkpoint?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"
RUN_HREF = "/ppf/run?dag_id={DAG_ID}&run_id={RUN_ID}"


def test_entry_point_names_the_plugin_class() -> None:
    from airflow_ppf.plugins import CheckpointViewPlugin

    [entry] = [e for e in entry_points(group="airflow.plugins") if e.name == "ppf"]
    assert entry.value == "airflow_ppf.plugins.checkpoint_view:CheckpointViewPlugin"
    assert entry.load() is CheckpointViewPlugin


def test_airflow_loads_the_app_and_the_tabs() -> None:
    from airflow import plugins_manager

    from airflow_ppf.plugins.checkpoint_view import checkpoint_app

    errors = {k: v for k, v in plugins_manager.get_import_errors().items() if "airflow_ppf" in k}
    # With the repo root on sys.path (pytest's pythonpath) its airflow_ppf.egg-info is a second copy of the
    # distribution: Airflow loads the plugin once and skips the duplicate, which is not an import error.
    assert all("already registered" in v for v in errors.values()), errors
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert {"app": checkpoint_app, "url_prefix": "/ppf", "name": "airflow-ppf checkpoints"} in apps
    views, _ = plugins_manager._get_ui_plugins()
    ours = {v["url_route"]: v for v in views if v["url_route"].startswith("ppf-")}
    assert ours == {
        "ppf-checkpoint": {
            "name": "Checkpoint",
            "href": TI_HREF,
            "destination": "task_instance",
            "url_route": "ppf-checkpoint",
        },
        "ppf-run": {"name": "Pipelines", "href": RUN_HREF, "destination": "dag_run", "url_route": "ppf-run"},
    }


def test_importing_the_plugin_is_cheap() -> None:
    """Every Airflow process loads plugins: no pyspark, no FastAPI app, no API security machinery."""
    code = (
        "import sys, json, airflow\n"
        "before = set(sys.modules)\n"
        "import airflow_ppf.plugins.checkpoint_view\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(json.dumps(new))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    new = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in new if m.split(".")[0] in ("pyspark", "fastapi", "starlette") or "api_fastapi" in m]
    assert heavy == []
    # Only our modules and Airflow's plugin base class (which loading any plugin imports anyway).
    assert all(m.startswith(("airflow_ppf", "airflow.plugins_manager", "airflow._shared.plugins_manager")) for m in new)


def _auth_dependencies(route: Any) -> list[tuple[str, Any]]:
    found = []
    for dep in route.dependant.dependencies:
        call = dep.call
        if getattr(call, "__qualname__", "").startswith("requires_access_dag."):
            names = inspect.getclosurevars(call).nonlocals
            found.append((names["method"], names["access_entity"]))
    return found


def test_every_route_requires_dag_access() -> None:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from fastapi.routing import APIRoute

    from airflow_ppf.plugins.checkpoint_view import checkpoint_app

    routes = [r for r in checkpoint_app.app.routes if isinstance(r, APIRoute)]
    assert {(r.path, m) for r in routes for m in r.methods} == {
        ("/checkpoint", "GET"),
        ("/run", "GET"),
        ("/api/checkpoint", "GET"),
        ("/api/run", "GET"),
        ("/api/checkpoint/reset", "POST"),
        ("/api/checkpoint/rerun", "POST"),
        ("/api/checkpoint/resume", "POST"),
    }
    for route in routes:
        needed = "GET" if route.methods == {"GET"} else "PUT"
        assert _auth_dependencies(route) == [(needed, DagAccessEntity.TASK_INSTANCE)], route.path


def test_the_api_server_mounts_the_app_behind_airflow_auth(plugin_auth: Any, plugin_tokens: Any) -> None:
    """Airflow's own app factory (as ``airflow api-server`` runs it) serves the plugin at /ppf."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(apps="core")) as client:
        query = "?" + urlencode({"dag_id": "no_such_dag", "run_id": "manual__x", "task_id": "t", "map_index": "-1"})
        assert client.get("/ppf/api/checkpoint" + query).status_code == 401
        missing = client.get("/ppf/api/checkpoint" + query, headers=plugin_tokens["viewer"])
        assert missing.status_code == 404
        assert missing.json() == {"detail": "task instance no_such_dag/manual__x/t not found"}
        page = client.get("/ppf/checkpoint" + query, headers=plugin_tokens["viewer"])
        assert page.status_code == 200
        assert 'id="ppf-graph"' in page.text

        plugins = client.get("/api/v2/plugins", headers=plugin_tokens["admin"]).json()["plugins"]
        [ours] = [p for p in plugins if p["name"] == "airflow_ppf"]
        assert ours["fastapi_apps"] == [
            {
                "app": "airflow_ppf.plugins.checkpoint_view.LazyCheckpointApp",
                "url_prefix": "/ppf",
                "name": "airflow-ppf checkpoints",
            }
        ]
        assert {v["url_route"] for v in ours["external_views"]} == {"ppf-checkpoint", "ppf-run"}
