"""Real Airflow for tests: a throwaway AIRFLOW_HOME with a migrated SQLite DB, and dag.test() helpers.

The environment is set when this file is imported, before anything imports Airflow. ``dag.test()`` runs
tasks in this process and performs real retries; XComs, task state and task instances land in the DB.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ppf-airflow-home-"))
#: DAGs built inside tests need a file of the same dag_id in a bundle: dag.test() refuses unknown DAGs.
TEST_DAGS = AIRFLOW_HOME / "test-dags"
TEST_DAGS.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__PPF__CHECKPOINT_DIR": str(AIRFLOW_HOME / "ppf-checkpoints"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Long enough for HMAC-SHA512 (the plugin tests mint tokens).
        "AIRFLOW__API_AUTH__JWT_SECRET": "ppf-tests-" + "0123456789abcdef" * 4,
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {},
                },
                {
                    "name": "ppf-test-dags",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(TEST_DAGS)},
                },
            ]
        ),
    }
)


def register_test_dag(dag_id: str) -> None:
    """Put a placeholder DAG file for ``dag_id`` in the test bundle so ``dag.test()`` accepts the
    in-memory DAG of that id (it runs the tasks of the in-memory DAG, not the file's)."""
    (TEST_DAGS / f"{dag_id}.py").write_text(
        f"from airflow.sdk import DAG\n\ndag = DAG({dag_id!r}, schedule=None)\n", encoding="utf-8"
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the test metadata DB once per test process."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return AIRFLOW_HOME


@pytest.fixture
def example_base(tmp_path: Path) -> Path:
    """A folder for the example DAGs' data and reports."""
    return tmp_path / "example"


def task_state(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
    """Read one task instance's task state store straight from the metadata DB."""
    import json

    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskStateStoreModel).where(
                TaskStateStoreModel.dag_id == dag_id,
                TaskStateStoreModel.run_id == run_id,
                TaskStateStoreModel.task_id == task_id,
                TaskStateStoreModel.map_index == map_index,
            )
        ).all()
        return {row.key: json.loads(row.value) for row in rows}


def xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """Read an XCom value of a task instance from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run_id, key=key, dag_ids=dag_id, task_ids=task_id, map_indexes=map_index)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture
def load_example() -> Iterator[Any]:
    """Import an example DAG file and return its ``dag`` object."""
    import importlib.util

    loaded: list[str] = []

    def load(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(f"example_dag_{name}", EXAMPLE_DAGS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded.append(name)
        return module.dag

    return load


# ---------------------------------------------------------------------------------------------------------
# Checkpoint inspector plugin (tests/airflow/test_plugin_*.py): an auth manager, tokens, a client.
# ---------------------------------------------------------------------------------------------------------

#: Users of the plugin tests (``name: role``); ``outsider`` is a user barred from :data:`PRIVATE_DAG_PREFIX` DAGs.
PLUGIN_USERS = {"admin": "admin", "viewer": "viewer", "user1": "user", "op1": "op", "outsider": "user"}
#: DAG ids starting with this are hidden from ``outsider`` by :class:`DagScopedAuthManager`.
PRIVATE_DAG_PREFIX = "ppf_plugin_private"


@functools.cache
def _dag_scoped_auth_manager() -> type:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class DagScopedAuthManager(SimpleAuthManager):
        """SimpleAuthManager plus one per-DAG rule: ``outsider`` may not touch private DAGs at all.

        SimpleAuthManager lets every user see every DAG; real deployments (FAB, Keycloak) scope DAGs
        per user, which this rule stands in for.
        """

        def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
            dag_id = getattr(details, "id", None)
            if user.get_name() == "outsider" and (dag_id is None or str(dag_id).startswith(PRIVATE_DAG_PREFIX)):
                return False
            return bool(
                super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
            )

    return DagScopedAuthManager


def __getattr__(name: str) -> Any:
    """``tests.airflow.conftest.DagScopedAuthManager`` for ``[core] auth_manager``, built without importing
    Airflow when this file is collected."""
    if name == "DagScopedAuthManager":
        return _dag_scoped_auth_manager()
    raise AttributeError(name)


@pytest.fixture(scope="session")
def plugin_auth(airflow_db: Path) -> Any:
    """Initialise :class:`DagScopedAuthManager` with :data:`PLUGIN_USERS` as this process's auth manager.

    The settings are only in the environment while the manager is created, so processes that other tests
    start (real services) never inherit them.
    """
    from airflow.api_fastapi.app import init_auth_manager

    settings = {
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.airflow.conftest.DagScopedAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in PLUGIN_USERS.items()),
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        return init_auth_manager()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def plugin_tokens(plugin_auth: Any) -> dict[str, dict[str, str]]:
    """``user name -> Authorization header`` for every user in :data:`PLUGIN_USERS`."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        name: {"Authorization": f"Bearer {plugin_auth.generate_jwt(SimpleAuthManagerUser(username=name, role=role))}"}
        for name, role in PLUGIN_USERS.items()
    }


@pytest.fixture(scope="session")
def plugin_client(plugin_auth: Any) -> Iterator[Any]:
    """A TestClient on the plugin's registered app (the lazily built inspector app)."""
    from fastapi.testclient import TestClient

    from airflow_ppf.plugins.checkpoint_view import checkpoint_app

    with TestClient(checkpoint_app) as client:
        yield client
