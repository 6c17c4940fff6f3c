"""The checkpoint inspector's API against real runs: DAGs run by dag.test() write real checkpoints into the
metadata DB (task state store) or ``[ppf] checkpoint_dir``, and a TestClient queries the plugin's app with
real Airflow tokens."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_ppf.components import Component
from tests.airflow.conftest import PRIVATE_DAG_PREFIX, register_test_dag, task_state

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

STEP = f"{__name__}.Step"
SECRET = "hunter2"
#: extract -> clean -> (load, stats) -> report; load fails on its first run in each DAG run.
COMPONENTS: list[dict[str, Any]] = [
    {"name": "extract", "config": {"endpoint": f"postgresql://etl:{SECRET}@db:5432/shop", "password": SECRET}},
    {"name": "clean", "depends_on": ["extract"]},
    {
        "name": "load",
        "depends_on": ["clean"],
        "config": {"fail_first": 1, "message": f"cannot reach postgresql://etl:{SECRET}@db/shop (password={SECRET})"},
    },
    {"name": "stats", "depends_on": ["clean"]},
    {"name": "report", "depends_on": ["load", "stats"]},
]
SHOP_DAG = f"{PRIVATE_DAG_PREFIX}_shop"
LOCAL_DAG = "ppf_plugin_local_shop"
RETRY_DAG = f"{PRIVATE_DAG_PREFIX}_pause"
MAPPED_DAG = "ppf_plugin_mapped_shop"

#: How often each component ran, per task instance: ``("dag_run_id[map_index]", name) -> runs``.
RUNS: Counter[tuple[str, str]] = Counter()


class Step(Component):
    """Fail the first ``fail_first`` runs in a task instance with ``message``; accept (and ignore) credentials."""

    def __init__(self, fail_first: int = 0, message: str = "boom", endpoint: str = "", password: str = "") -> None:
        self.fail_first = fail_first
        self.message = message

    def run(self) -> None:
        key = (f"{self.context.get('dag_run_id')}[{self.context.get('map_index')}]", self.name)
        RUNS[key] += 1
        if RUNS[key] <= self.fail_first:
            raise ConnectionError(self.message)


def make_dag(
    dag_id: str, *, retry_delay: float = 0, mapped: int = 0, load_fails: int = 1, **operator_kwargs: Any
) -> Any:
    """A DAG with one pipeline task (``pipeline``, mapped over ``mapped`` inputs when given) and one ordinary
    task (``notify``), ready for dag.test(); ``load`` fails on its first ``load_fails`` runs."""
    from airflow.sdk import DAG, BaseOperator

    from airflow_ppf.operators import PipelineOperator

    class Notify(BaseOperator):
        def execute(self, context: Any) -> None:
            return None

    register_test_dag(dag_id)
    with DAG(
        dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=retry_delay)},
    ) as dag:
        components = [
            {**c, "config": {**c["config"], "fail_first": load_fails}} if c["name"] == "load" else c for c in COMPONENTS
        ]
        config = {"name": "shop", "components": [{"class_path": STEP, **c} for c in components]}
        if mapped:
            pipeline: Any = PipelineOperator.partial(task_id="pipeline", pipeline=config, **operator_kwargs).expand(
                pipeline_vars=[{"PART": str(i)} for i in range(mapped)]
            )
        else:
            pipeline = PipelineOperator(task_id="pipeline", pipeline=config, **operator_kwargs)
        pipeline >> Notify(task_id="notify")
    return dag


def ti_query(dag_id: str, run_id: str, task_id: str = "pipeline", map_index: int | str = -1) -> str:
    return "?" + urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})


def node_states(payload: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["state"] for n in payload["checkpoint"]["graph"]["nodes"]}


@pytest.fixture(scope="module")
def shop_dag() -> Any:
    return make_dag(SHOP_DAG)


@pytest.fixture(scope="module")
def shop_run(shop_dag: Any) -> str:
    """A finished run of the shop DAG: try 1 failed in ``load``, try 2 resumed and succeeded."""
    dag_run = shop_dag.test()
    assert dag_run.state == "success"
    return str(dag_run.run_id)


@pytest.fixture
def fresh_shop_run(shop_dag: Any) -> str:
    """A run of its own, for tests that change the checkpoint."""
    dag_run = shop_dag.test()
    assert dag_run.state == "success"
    return str(dag_run.run_id)


@pytest.fixture(scope="module")
def local_run() -> str:
    """A finished run whose checkpoint lives in ``[ppf] checkpoint_dir`` instead of the task state store."""
    dag_run = make_dag(LOCAL_DAG, checkpoint_store="local").test()
    assert dag_run.state == "success"
    return str(dag_run.run_id)


# -- reading ----------------------------------------------------------------------------------------------


def test_checkpoint_json_describes_the_real_run(plugin_client: Any, plugin_tokens: Any, shop_run: str) -> None:
    resp = plugin_client.get("/api/checkpoint" + ti_query(SHOP_DAG, shop_run), headers=plugin_tokens["admin"])
    assert resp.status_code == 200, resp.text
    data = resp.json()

    assert data["task_instance"] == {
        "dag_id": SHOP_DAG,
        "run_id": shop_run,
        "task_id": "pipeline",
        "map_index": -1,
        "state": "success",
        "try_number": 2,
        "max_tries": 1,
        "operator": "PipelineOperator",
    }
    assert data["store"] == "task_state"
    assert data["checkpoint_run_id"] == f"{SHOP_DAG}/{shop_run}/pipeline"
    assert data["live"] is False
    assert data["can_edit"] is True
    cp = data["checkpoint"]
    assert cp["edited"] is None
    assert (cp["pipeline_name"], cp["status"], cp["attempt"]) == ("shop", "completed", 2)

    graph = cp["graph"]
    assert graph["known"] is True
    assert node_states(data) == {
        "extract": "skipped",
        "clean": "skipped",
        "load": "done",
        "stats": "done",
        "report": "done",
    }
    assert {(e["from"], e["to"]) for e in graph["edges"]} == {
        ("extract", "clean"),
        ("clean", "load"),
        ("clean", "stats"),
        ("load", "report"),
        ("stats", "report"),
    }
    assert [n["depth"] for n in graph["nodes"]] == [0, 1, 2, 2, 3]

    first, second = cp["attempts"]
    assert (first["try_number"], first["status"]) == (1, "failed")
    assert [r["name"] for r in first["ran"]] == ["extract", "clean"]
    assert first["failed"]["name"] == "load"
    assert first["failed"]["error_type"] == "ConnectionError"
    assert first["failed"]["error_message"].startswith("cannot reach postgresql://***@db/shop")
    assert (second["try_number"], second["status"]) == (2, "completed")
    assert second["skipped"] == ["extract", "clean"]
    assert [r["name"] for r in second["ran"]] == ["load", "stats", "report"]

    resume = cp["resume"]
    assert resume["attempt"] == 2
    assert resume["previous_attempt"] == 1
    assert resume["skipped"] == 2
    assert [(e["name"], e["action"]) for e in resume["entries"]] == [
        ("extract", "skip"),
        ("clean", "skip"),
        ("load", "run"),
        ("stats", "run"),
        ("report", "run"),
    ]
    assert resume["entries"][2]["reason"].startswith("failed in attempt 1: ConnectionError")
    assert cp["time_saved_ms"]["latest"] == resume["time_saved_ms"]
    assert cp["fingerprint"]["current"] == first["fingerprint"] == second["fingerprint"]
    assert cp["fingerprint"]["changes"] == []


def test_nothing_secret_leaves_the_server(plugin_client: Any, plugin_tokens: Any, shop_run: str) -> None:
    query = ti_query(SHOP_DAG, shop_run)
    bodies = [
        plugin_client.get(path, headers=plugin_tokens["admin"]).text
        for path in (
            "/api/checkpoint" + query,
            "/checkpoint" + query,
            "/api/run?" + urlencode({"dag_id": SHOP_DAG, "run_id": shop_run}),
            "/run?" + urlencode({"dag_id": SHOP_DAG, "run_id": shop_run}),
        )
    ]
    stored = task_state(SHOP_DAG, shop_run, "pipeline")["ppf_checkpoint"]
    assert SECRET in str(stored)  # the error message as the component raised it: only masked on the way out
    for body in bodies:
        assert SECRET not in body
        assert "field_digests" not in body
        assert "postgresql://etl" not in body


def test_run_lists_only_pipeline_tasks_with_a_digest(plugin_client: Any, plugin_tokens: Any, shop_run: str) -> None:
    resp = plugin_client.get(
        "/api/run?" + urlencode({"dag_id": SHOP_DAG, "run_id": shop_run}), headers=plugin_tokens["viewer"]
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["dag_id"], data["run_id"], data["state"], data["truncated"]) == (SHOP_DAG, shop_run, "success", False)
    [task] = data["tasks"]
    assert (task["task_id"], task["map_index"], task["state"], task["store"]) == (
        "pipeline",
        -1,
        "success",
        "task_state",
    )
    digest = task["checkpoint"]
    assert (digest["status"], digest["attempt"], digest["components"]) == ("completed", 2, 5)
    assert digest["counts"]["done"] + digest["counts"]["skipped"] == 5
    assert digest["failed"] is None


def test_local_store_checkpoint_is_found_under_checkpoint_dir(
    plugin_client: Any, plugin_tokens: Any, local_run: str
) -> None:
    assert "ppf_checkpoint" not in task_state(LOCAL_DAG, local_run, "pipeline")
    data = plugin_client.get("/api/checkpoint" + ti_query(LOCAL_DAG, local_run), headers=plugin_tokens["viewer"]).json()
    assert data["store"] == "local"
    assert data["checkpoint"]["status"] == "completed"
    assert node_states(data)["extract"] == "skipped"
    assert data["can_edit"] is False  # a viewer

    resp = plugin_client.post(
        "/api/checkpoint/rerun" + ti_query(LOCAL_DAG, local_run),
        json={"component": "stats"},
        headers=plugin_tokens["user1"],
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["invalidated"] == ["stats", "report"]
    from airflow_ppf.runner.checkpoint import LocalCheckpointStore
    from airflow_ppf.settings import checkpoint_dir

    stored = LocalCheckpointStore(checkpoint_dir()).load(f"{LOCAL_DAG}/{local_run}/pipeline")
    assert stored is not None
    assert stored.completed_components == ["extract", "clean", "load"]


def test_mapped_task_instances_each_have_their_checkpoint(plugin_client: Any, plugin_tokens: Any) -> None:
    dag_run = make_dag(MAPPED_DAG, mapped=2).test()
    assert dag_run.state == "success"
    run_id = str(dag_run.run_id)
    overview = plugin_client.get(
        "/api/run?" + urlencode({"dag_id": MAPPED_DAG, "run_id": run_id}), headers=plugin_tokens["viewer"]
    ).json()
    assert [(t["task_id"], t["map_index"], t["checkpoint"]["status"]) for t in overview["tasks"]] == [
        ("pipeline", 0, "completed"),
        ("pipeline", 1, "completed"),
    ]
    second = plugin_client.get(
        "/api/checkpoint" + ti_query(MAPPED_DAG, run_id, map_index=1), headers=plugin_tokens["viewer"]
    )
    assert second.json()["checkpoint_run_id"] == f"{MAPPED_DAG}/{run_id}/pipeline[1]"
    assert second.json()["checkpoint"]["attempt"] == 2
    # The unmapped placeholder names no instance of a mapped task.
    placeholder = ti_query(MAPPED_DAG, run_id, map_index="{MAP_INDEX}")
    assert plugin_client.get("/api/checkpoint" + placeholder, headers=plugin_tokens["viewer"]).status_code == 404


def test_task_without_checkpoint_and_unmapped_map_index_placeholder(
    plugin_client: Any, plugin_tokens: Any, shop_run: str
) -> None:
    resp = plugin_client.get(
        "/api/checkpoint" + ti_query(SHOP_DAG, shop_run, task_id="notify", map_index="{MAP_INDEX}"),
        headers=plugin_tokens["viewer"],
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["task_instance"]["map_index"] == -1
    assert (data["checkpoint"], data["store"], data["error"]) == (None, None, None)
    # The page explains the tab instead of waiting for a checkpoint that never comes.
    assert (data["pipeline_task"], data["task_error"]) == (False, None)


#: A DAG of a PipelineOperator subclass, as Airflow serializes it (the tab recognises subclasses by it).
CONFIG_ERROR_DAG_FILE = """
from airflow.sdk import DAG
from airflow_ppf.operators import PipelineOperator

class TeamPipelineOperator(PipelineOperator):
    pass

with DAG("ppf_plugin_config_error", schedule=None, default_args={"retries": 2}) as dag:
    TeamPipelineOperator(task_id="pipeline", pipeline={"name": "bad", "components": []})
"""


def test_a_config_error_is_shown_where_the_checkpoint_would_be(plugin_client: Any, plugin_tokens: Any) -> None:
    """A try that fails before its pipeline starts writes no checkpoint: the tab shows its error instead
    (here of a PipelineOperator subclass, whose operator name is its own)."""
    from airflow.sdk import DAG

    from airflow_ppf.operators import PipelineOperator
    from tests.airflow.conftest import TEST_DAGS

    class TeamPipelineOperator(PipelineOperator):
        pass

    dag_id = "ppf_plugin_config_error"
    (TEST_DAGS / f"{dag_id}.py").write_text(CONFIG_ERROR_DAG_FILE, encoding="utf-8")
    bad = {"name": "bad", "components": [{"name": "a", "class_path": STEP, "depends_on": ["nope"]}]}
    with DAG(dag_id, schedule=None, default_args={"retries": 2, "retry_delay": dt.timedelta(0)}) as dag:
        TeamPipelineOperator(task_id="pipeline", pipeline=bad)
    dag_run = dag.test()
    assert dag_run.state == "failed"

    data = plugin_client.get("/api/checkpoint" + ti_query(dag_id, dag_run.run_id), headers=plugin_tokens["viewer"])
    assert data.status_code == 200, data.text
    payload = data.json()
    assert payload["task_instance"]["operator"] == "TeamPipelineOperator"
    assert (payload["checkpoint"], payload["pipeline_task"]) == (None, True)
    error = payload["task_error"]
    assert error["try_number"] == 1
    assert error["message"].startswith("Pipeline config error (no retry: fix the config): ")
    assert "components[0].depends_on" in error["message"]
    assert "'nope'" in error["message"]
    overview = plugin_client.get(
        "/api/run?" + urlencode({"dag_id": dag_id, "run_id": dag_run.run_id}), headers=plugin_tokens["viewer"]
    ).json()
    assert [(t["task_id"], t["checkpoint"], t["task_error"]) for t in overview["tasks"]] == [("pipeline", None, error)]


def test_page_is_self_contained_and_carries_no_data(plugin_client: Any, plugin_tokens: Any, shop_run: str) -> None:
    resp = plugin_client.get("/checkpoint" + ti_query(SHOP_DAG, shop_run), headers=plugin_tokens["viewer"])
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    policy = resp.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "connect-src 'self'" in policy
    assert resp.headers["x-content-type-options"] == "nosniff"
    page = resp.text
    for element_id in ("ppf-graph", "ppf-legend", "ppf-attempts", "ppf-resume", "ppf-confirm", "ppf-reset-button"):
        assert f'id="{element_id}"' in page
    assert "innerHTML" not in page
    assert "outerHTML" not in page
    assert "insertAdjacentHTML" not in page
    assert "<script src" not in page
    assert "<link" not in page
    assert shop_run not in page
    # The only absolute URL is the SVG namespace: nothing is fetched from the internet.
    import re

    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}
    run_page = plugin_client.get(
        "/run?" + urlencode({"dag_id": SHOP_DAG, "run_id": shop_run}), headers=plugin_tokens["viewer"]
    )
    assert run_page.status_code == 200
    assert run_page.text == page


# -- actions ----------------------------------------------------------------------------------------------


def test_rerun_from_marks_descendants_not_done_and_is_recorded(
    plugin_client: Any, plugin_tokens: Any, fresh_shop_run: str
) -> None:
    query = ti_query(SHOP_DAG, fresh_shop_run)
    resp = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "load"}, headers=plugin_tokens["user1"]
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["invalidated"] == ["load", "report"]
    assert node_states(data) == {
        "extract": "skipped",
        "clean": "skipped",
        "load": "pending",
        "stats": "done",
        "report": "pending",
    }
    events = data["checkpoint"]["attempts"][-1]["events"]
    assert events[-2]["event"] == "invalidated"
    assert events[-2]["reason"] == "rerun from 'load' requested by user1"
    assert {k: v for k, v in events[-1].items() if k != "at"} == {
        "event": "rerun_from",
        "by": "user1",
        "component": "load",
        "invalidated": ["load", "report"],
    }
    edited = data["checkpoint"]["edited"]
    assert (edited["event"], edited["by"], edited["component"]) == ("rerun_from", "user1", "load")
    overview = plugin_client.get(
        "/api/run?" + urlencode({"dag_id": SHOP_DAG, "run_id": fresh_shop_run}), headers=plugin_tokens["viewer"]
    ).json()
    assert overview["tasks"][0]["checkpoint"]["edited"]["event"] == "rerun_from"

    # What is stored is what the next try reads: a valid checkpoint, same attempt and writer (fencing kept).
    from airflow_ppf.runner.checkpoint import CheckpointState

    head = task_state(SHOP_DAG, fresh_shop_run, "pipeline")["ppf_checkpoint"]
    state = CheckpointState.from_dict(head["state"])
    assert state.completed_components == ["extract", "clean", "stats"]
    assert (head["attempt"], head["writer"]) == (2, state.attempts[-1].writer)
    assert task_state(SHOP_DAG, fresh_shop_run, "pipeline")["ppf_summary"]["done"] == 3

    again = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "report"}, headers=plugin_tokens["op1"]
    )
    assert again.status_code == 409
    assert "nothing to rerun" in again.json()["detail"]

    reset = plugin_client.post("/api/checkpoint/reset" + query, json={}, headers=plugin_tokens["admin"])
    assert reset.status_code == 200, reset.text
    assert reset.json()["invalidated"] == ["extract", "clean", "stats"]
    assert set(node_states(reset.json()).values()) == {"pending"}
    last_event = reset.json()["checkpoint"]["attempts"][-1]["events"][-1]
    assert (last_event["event"], last_event["by"]) == ("reset", "admin")


def test_edits_wait_while_the_task_runs(plugin_client: Any, plugin_tokens: Any, fresh_shop_run: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    def set_state(state: str) -> None:
        with create_session() as session:
            session.execute(
                update(TaskInstance)
                .where(
                    TaskInstance.dag_id == SHOP_DAG,
                    TaskInstance.run_id == fresh_shop_run,
                    TaskInstance.task_id == "pipeline",
                )
                .values(state=state)
            )

    query = ti_query(SHOP_DAG, fresh_shop_run)
    set_state("running")
    try:
        data = plugin_client.get("/api/checkpoint" + query, headers=plugin_tokens["admin"]).json()
        assert data["live"] is True
        assert data["edit_blocked"] == "the task instance is running: wait until its try ends"
        resp = plugin_client.post("/api/checkpoint/reset" + query, json={}, headers=plugin_tokens["admin"])
        assert resp.status_code == 409
        assert "running" in resp.json()["detail"]
    finally:
        set_state("success")
    assert len(task_state(SHOP_DAG, fresh_shop_run, "pipeline")["ppf_checkpoint"]["state"]["completed_components"]) == 5


@pytest.mark.slow
def test_rerun_between_tries_is_honoured_by_the_retry(plugin_client: Any, plugin_tokens: Any) -> None:
    """The real loop: try 1 fails, a user asks to rerun from ``clean`` while the task waits for its retry,
    and try 2 reruns ``clean`` (and what follows) instead of skipping it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = make_dag(RETRY_DAG, retry_delay=4)
    outcome: dict[str, Any] = {}

    def rerun_when_waiting() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with create_session() as session:
                ti = session.scalars(
                    select(TaskInstance).where(
                        TaskInstance.dag_id == RETRY_DAG,
                        TaskInstance.task_id == "pipeline",
                        TaskInstance.state == "up_for_retry",
                    )
                ).first()
                run_id = ti.run_id if ti is not None else None
            if run_id is not None:
                outcome["response"] = plugin_client.post(
                    "/api/checkpoint/rerun" + ti_query(RETRY_DAG, run_id),
                    json={"component": "clean"},
                    headers=plugin_tokens["user1"],
                )
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=rerun_when_waiting, daemon=True)
    watcher.start()
    dag_run = dag.test()
    watcher.join(timeout=5)

    assert dag_run.state == "success"
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert response.json()["invalidated"] == ["clean"]
    data = plugin_client.get("/api/checkpoint" + ti_query(RETRY_DAG, dag_run.run_id), headers=plugin_tokens["admin"])
    first, second = data.json()["checkpoint"]["attempts"]
    assert [e["event"] for e in first["events"]][-2:] == ["invalidated", "rerun_from"]
    assert second["skipped"] == ["extract"]
    assert [r["name"] for r in second["ran"]] == ["clean", "load", "stats", "report"]


# -- who may do what --------------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/checkpoint", None),
    ("GET", "/api/checkpoint", None),
    ("GET", "/run", None),
    ("GET", "/api/run", None),
    ("POST", "/api/checkpoint/reset", {}),
    ("POST", "/api/checkpoint/rerun", {"component": "stats"}),
    ("POST", "/api/checkpoint/resume", {}),
]


def _call(client: Any, method: str, path: str, body: dict[str, Any] | None, run_id: str, headers: Any) -> Any:
    if path.endswith("/run"):
        query = "?" + urlencode({"dag_id": SHOP_DAG, "run_id": run_id})
    else:
        query = ti_query(SHOP_DAG, run_id)
    return client.request(method, path + query, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_a_user(plugin_client: Any, shop_run: str, method: str, path: str, body: Any) -> None:
    resp = _call(plugin_client, method, path, body, shop_run, None)
    assert resp.status_code == 401
    assert resp.json() == {"detail": "Not authenticated"}
    forged = _call(plugin_client, method, path, body, shop_run, {"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_viewers_read_but_do_not_edit(
    plugin_client: Any, plugin_tokens: Any, shop_run: str, method: str, path: str, body: Any
) -> None:
    resp = _call(plugin_client, method, path, body, shop_run, plugin_tokens["viewer"])
    assert resp.status_code == (200 if method == "GET" else 403), resp.text


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_users_without_access_to_the_dag_get_nothing(
    plugin_client: Any, plugin_tokens: Any, shop_run: str, local_run: str, method: str, path: str, body: Any
) -> None:
    resp = _call(plugin_client, method, path, body, shop_run, plugin_tokens["outsider"])
    assert resp.status_code == 403
    assert resp.json() == {"detail": "Forbidden"}
    # The same user reads a DAG they have access to.
    other = plugin_client.get("/api/checkpoint" + ti_query(LOCAL_DAG, local_run), headers=plugin_tokens["outsider"])
    assert other.status_code == 200


def test_cookie_token_is_accepted(plugin_auth: Any, shop_run: str) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from airflow_ppf.plugins.checkpoint_view import checkpoint_app

    token = plugin_auth.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
    with TestClient(checkpoint_app, cookies={"_token": token}) as client:
        assert client.get("/api/checkpoint" + ti_query(SHOP_DAG, shop_run)).status_code == 200


# -- input validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"dag_id": "bad<dag>"}, 422),
        ({"dag_id": "d" * 251}, 422),
        ({"dag_id": ""}, 422),
        ({"task_id": "a/b"}, 422),
        ({"run_id": "run\nid"}, 422),
        ({"run_id": "<script>alert(1)</script>"}, 422),
        ({"map_index": "-2"}, 422),
        ({"map_index": "99999999999"}, 422),
        ({"map_index": "3"}, 404),
        ({"run_id": "manual__1999-01-01T00:00:00+00:00"}, 404),
        ({"task_id": "no_such_task"}, 404),
    ],
)
def test_identity_is_validated(
    plugin_client: Any, plugin_tokens: Any, shop_run: str, params: dict[str, str], status: int
) -> None:
    query = {"dag_id": SHOP_DAG, "run_id": shop_run, "task_id": "pipeline", "map_index": "-1", **params}
    resp = plugin_client.get("/api/checkpoint?" + urlencode(query), headers=plugin_tokens["admin"])
    assert resp.status_code == status, resp.text


def test_identity_given_twice_is_refused(plugin_client: Any, plugin_tokens: Any, shop_run: str, local_run: str) -> None:
    query = ti_query(LOCAL_DAG, local_run) + "&" + urlencode({"dag_id": SHOP_DAG})
    resp = plugin_client.get("/api/checkpoint" + query, headers=plugin_tokens["admin"])
    assert resp.status_code == 422
    assert "more than once" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"component": "nope"}, 422, "unknown component 'nope'"),
        ({"component": ""}, 422, None),
        ({"component": "x" * 513}, 422, None),
        ({"component": "stats", "also": "load"}, 422, None),
        ({}, 422, None),
    ],
)
def test_rerun_body_is_validated(
    plugin_client: Any, plugin_tokens: Any, shop_run: str, body: dict[str, Any], status: int, detail: str | None
) -> None:
    resp = plugin_client.post(
        "/api/checkpoint/rerun" + ti_query(SHOP_DAG, shop_run), json=body, headers=plugin_tokens["admin"]
    )
    assert resp.status_code == status, resp.text
    if detail:
        assert detail in resp.json()["detail"]


def test_edits_need_a_json_body(plugin_client: Any, plugin_tokens: Any, shop_run: str) -> None:
    """A cross-site form (text/plain or form-encoded) cannot trigger an edit."""
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        resp = plugin_client.post(
            "/api/checkpoint/rerun" + ti_query(SHOP_DAG, shop_run),
            content=b'{"component": "stats"}',
            headers={**plugin_tokens["admin"], "Content-Type": content_type},
        )
        assert resp.status_code == 422, (content_type, resp.text)
    state = task_state(SHOP_DAG, shop_run, "pipeline")["ppf_checkpoint"]["state"]
    assert "stats" in state["completed_components"]


# -- resume after the last retry failed ---------------------------------------------------------------------

EXHAUSTED_DAG = "ppf_plugin_exhausted_shop"


#: The DAG file Airflow serializes for :data:`EXHAUSTED_DAG`: its clear reads the task's retries from there
#: (dag.test() runs the in-memory DAG's tasks; a placeholder without them would make the clear guess).
EXHAUSTED_DAG_FILE = f"""
from airflow.sdk import DAG, BaseOperator
from airflow_ppf.operators import PipelineOperator

with DAG({EXHAUSTED_DAG!r}, schedule=None, default_args={{"retries": 1}}) as dag:
    pipeline = PipelineOperator(task_id="pipeline", pipeline={{"name": "shop", "components": []}})
    pipeline >> BaseOperator(task_id="notify")
"""


@pytest.fixture
def exhausted_run() -> str:
    """A run whose pipeline task failed in ``load`` on both tries (no retry left); extract and clean are done."""
    from tests.airflow.conftest import TEST_DAGS

    dag = make_dag(EXHAUSTED_DAG, load_fails=2)
    (TEST_DAGS / f"{EXHAUSTED_DAG}.py").write_text(EXHAUSTED_DAG_FILE, encoding="utf-8")
    dag_run = dag.test()
    assert dag_run.state == "failed"
    return str(dag_run.run_id)


def _airflow_state(dag_id: str, run_id: str) -> dict[str, Any]:
    """What Airflow's metadata DB says of the pipeline task instance and its DAG run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:  # dag.test()'s scoped session still holds the old objects
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == "pipeline"
            )
        ).one()
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        return {"ti": (ti.state, ti.try_number, ti.max_tries), "run": run.state}


def _audit(event: str, run_id: str) -> list[str]:
    """Owners of Airflow audit log entries ``event`` about ``run_id``."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(select(Log.owner).where(Log.event == event, Log.run_id == run_id)))


def test_resume_keeps_the_checkpoint_and_clears_the_task_with_airflows_clear(
    plugin_client: Any, plugin_tokens: Any, exhausted_run: str
) -> None:
    from airflow_ppf.runner.checkpoint import CheckpointState, ResumePolicy, fresh_start_reason

    query = ti_query(EXHAUSTED_DAG, exhausted_run)
    before = plugin_client.get("/api/checkpoint" + query, headers=plugin_tokens["viewer"]).json()
    assert (before["task_instance"]["state"], before["task_instance"]["try_number"]) == ("failed", 2)
    assert (before["retry_pending"], before["resume_blocked"], before["can_edit"]) == (False, None, False)
    assert before["checkpoint"]["next"]["to_run"] == ["load", "stats", "report"]

    resp = plugin_client.post("/api/checkpoint/resume" + query, json={}, headers=plugin_tokens["op1"])
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["resumed"], data["invalidated"], data["to_run"]) == (True, [], ["load", "stats", "report"])
    # Airflow cleared the task instance: no state, max_tries = try_number 2 + retries 1, its run queued again.
    assert (data["task_instance"]["state"], data["task_instance"]["max_tries"]) == (None, 3)
    assert _airflow_state(EXHAUSTED_DAG, exhausted_run) == {"ti": (None, 2, 3), "run": "queued"}
    assert data["live"] is True
    cp = data["checkpoint"]
    assert (cp["edited"]["event"], cp["edited"]["by"]) == ("resume", "op1")
    assert cp["next"]["headline"].startswith(
        "Resumed by op1 from the Checkpoint tab: the next try runs 3 of 5 components and skips 2"
    )
    assert node_states(data) == {
        "extract": "skipped",
        "clean": "skipped",
        "load": "failed",
        "stats": "pending",
        "report": "blocked",
    }

    # The checkpoint is kept, with the resume recorded for exactly that clear (fenced like any edit: same
    # attempt and writer), and the planner resumes the next try from it.
    head = task_state(EXHAUSTED_DAG, exhausted_run, "pipeline")["ppf_checkpoint"]
    state = CheckpointState.from_dict(head["state"])
    assert (head["attempt"], head["writer"]) == (2, state.attempts[-1].writer)
    assert state.completed_components == ["extract", "clean"]
    event = state.attempts[-1].events[-1]
    assert {k: v for k, v in event.items() if k != "at"} == {"event": "resume", "by": "op1", "max_tries": 3}
    assert fresh_start_reason(state, ResumePolicy(), attempt=3, max_tries=3) is None
    # Airflow's audit log has it, as it has its own clears.
    assert _audit("ppf_checkpoint_resume", exhausted_run) == ["op1"]


def test_rerun_from_on_a_failed_task_resumes_it(plugin_client: Any, plugin_tokens: Any, exhausted_run: str) -> None:
    query = ti_query(EXHAUSTED_DAG, exhausted_run)
    # Without a resume, rerunning from the component that failed changes nothing: refused, as before.
    alone = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "load"}, headers=plugin_tokens["admin"]
    )
    assert alone.status_code == 409
    assert "nothing to rerun" in alone.json()["detail"]
    assert _airflow_state(EXHAUSTED_DAG, exhausted_run)["ti"] == ("failed", 2, 1)

    resp = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "load", "resume": True}, headers=plugin_tokens["user1"]
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["invalidated"], resp.json()["to_run"]) == ([], ["load", "stats", "report"])
    assert _airflow_state(EXHAUSTED_DAG, exhausted_run)["ti"] == (None, 2, 3)

    upstream = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "clean", "resume": True}, headers=plugin_tokens["user1"]
    )
    assert upstream.status_code == 200, upstream.text
    assert upstream.json()["invalidated"] == ["clean"]
    assert upstream.json()["to_run"] == ["clean", "load", "stats", "report"]
    events = [e["event"] for e in upstream.json()["checkpoint"]["attempts"][-1]["events"]]
    assert events[-4:] == ["resume", "invalidated", "rerun_from", "resume"]


def test_a_refused_resume_changes_nothing_in_airflow(
    plugin_client: Any, plugin_tokens: Any, fresh_shop_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clear and the recorded resume commit together: when the resume is refused after Airflow's clear
    ran (nothing to resume; a newer try wrote the checkpoint), the clear is rolled back."""
    from airflow_ppf.plugins import checkpoint_api
    from airflow_ppf.plugins.task_instance_checkpoint import TaskInstanceRef, open_checkpoint

    query = ti_query(SHOP_DAG, fresh_shop_run)
    before = _airflow_state(SHOP_DAG, fresh_shop_run)
    assert before == {"ti": ("success", 2, 1), "run": "success"}
    blocked = plugin_client.get("/api/checkpoint" + query, headers=plugin_tokens["admin"]).json()["resume_blocked"]
    assert blocked == "every component is done: use rerun from to mark components not done first"
    done = plugin_client.post("/api/checkpoint/resume" + query, json={}, headers=plugin_tokens["admin"])
    assert done.status_code == 409
    assert "nothing to resume: all 5 components of attempt 2 are done" in done.json()["detail"]
    assert _airflow_state(SHOP_DAG, fresh_shop_run) == before

    # A newer try takes the checkpoint over between the read and the write: fenced, and nothing is cleared.
    clear = checkpoint_api._clear_for_resume

    def newer_try_meanwhile(ref: TaskInstanceRef, session: Any, user: Any, dag_bag: Any) -> int:
        from airflow.utils.session import create_session

        with create_session() as other:
            located = open_checkpoint(ref, other)
            assert located.state is not None
            zombie = located.state
            zombie.begin_attempt(
                3,
                "zombie:1:w",
                pipeline_fingerprint=zombie.pipeline_fingerprint,
                component_fingerprints=zombie.component_fingerprints,
                field_digests=zombie.field_digests,
            )
            located.store.save(zombie)
        return clear(ref, session, user, dag_bag)

    monkeypatch.setattr(checkpoint_api, "_clear_for_resume", newer_try_meanwhile)
    fenced = plugin_client.post(
        "/api/checkpoint/rerun" + query, json={"component": "stats", "resume": True}, headers=plugin_tokens["admin"]
    )
    assert fenced.status_code == 409, fenced.text
    assert "a newer try wrote the checkpoint meanwhile" in fenced.json()["detail"]
    assert _airflow_state(SHOP_DAG, fresh_shop_run) == before
    head = task_state(SHOP_DAG, fresh_shop_run, "pipeline")["ppf_checkpoint"]
    assert (head["attempt"], head["writer"]) == (3, "zombie:1:w")
    events = [e["event"] for a in head["state"]["attempts"] for e in a.get("events", [])]
    assert "resume" not in events
    assert "rerun_from" not in events
