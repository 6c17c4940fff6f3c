"""The checkpoint inspector's FastAPI app, served by Airflow's api-server under ``/ppf``.

Routes (all take the task instance as query parameters, so run ids with ``:``/``+``/``/`` need no path
escaping, and Airflow's ``requires_access_dag`` finds ``dag_id`` where it looks for it):

``GET  /checkpoint``            the inspector page of one task instance (HTML)
``GET  /api/checkpoint``        its checkpoint as JSON (graph, attempts, resume plan, fingerprints)
``GET  /run``                   the overview page of a DAG run (HTML)
``GET  /api/run``               the run's PipelineOperator task instances with a checkpoint digest (JSON)
``POST /api/checkpoint/reset``  mark every component not done: the next try starts from the beginning
``POST /api/checkpoint/rerun``  body ``{"component": name, "resume": false}``: mark it and its descendants
                                not done (with ``"resume": true``, then resume as below)
``POST /api/checkpoint/resume`` keep the checkpoint and clear the task instance through Airflow's own
                                clear (the code of the REST API's ``clearTaskInstances``): the next try resumes

Reading needs GET access to the DAG's task instances, editing PUT access, the permission Airflow's own
clear asks for (Airflow's auth manager decides; with the SimpleAuthManager: viewer reads, user and above
edit). Edits are refused while the task instance is running or about to run, and saved with the fencing
of the stores: a try that started in the meantime wins and the edit fails with 409. A resume records its
event and clears the task instance in the request's database transaction: either both happen or neither
(with a checkpoint in ``[ppf] checkpoint_dir``, the file is written last, after the clear succeeded).
Edits are written to Airflow's audit log (``ppf_checkpoint_*`` events).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.api_fastapi.logging.decorators import action_logging
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.task_state_store import TaskStateStoreModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from airflow_ppf.checkpoint.edits import (
    NothingToRerunError,
    NothingToResumeError,
    UnknownComponentError,
    rerun_from,
    reset_checkpoint,
    resume_checkpoint,
    resume_targets,
)
from airflow_ppf.checkpoint.errors import CheckpointError, CheckpointFencedError
from airflow_ppf.plugins.checkpoint_report import describe_checkpoint, redact, summarize_checkpoint
from airflow_ppf.plugins.task_instance_checkpoint import LocatedCheckpoint, TaskInstanceRef, open_checkpoint
from airflow_ppf.settings import SUMMARY_XCOM_KEY
from airflow_ppf.stores.task_state import HEAD_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.models.dagbag import DBDagBag
    from sqlalchemy.orm import Session

    from airflow_ppf.checkpoint.state import CheckpointState

__all__ = ["OPERATOR_NAME", "create_app"]

log = logging.getLogger(__name__)

#: ``TaskInstance.operator`` of the tasks the run overview lists (plus any task holding a checkpoint).
OPERATOR_NAME = "PipelineOperator"
#: Task instance states in which a try is running or about to start: edits would race with it.
BUSY_STATES = frozenset({"running", "queued", "scheduled", "restarting", "deferred", "up_for_reschedule"})
#: States in which the page keeps refreshing (a try runs now or soon).
LIVE_STATES = BUSY_STATES | {"up_for_retry"}
#: DAG run states in which a task instance without a state (e.g. just cleared) is still to run.
LIVE_RUN_STATES = frozenset({"queued", "running"})
#: Most task instances the run overview lists.
MAX_RUN_TASKS = 500

_KEY_PATTERN = r"^[\w.-]+$"  # Airflow's KEY_REGEX for dag and task ids
_RUN_ID_PATTERN = r"^[\w.~:+@,=/ -]+$"  # Airflow's allowed_run_id_pattern, plus what generated ids use
_ID_LEN = 250  # Airflow's ID_LEN
_MAP_INDEX = re.compile(r"^-?\d+$")
_IDENTITY_PARAMS = ("dag_id", "run_id", "task_id", "map_index")

DagId = Annotated[str, Query(min_length=1, max_length=_ID_LEN, pattern=_KEY_PATTERN)]
RunId = Annotated[str, Query(min_length=1, max_length=_ID_LEN, pattern=_RUN_ID_PATTERN)]
TaskId = Annotated[str, Query(min_length=1, max_length=_ID_LEN, pattern=_KEY_PATTERN)]


def _once(request: Request) -> None:
    """Refuse identity parameters given twice (authorisation and lookup must see the same DAG)."""
    for name in _IDENTITY_PARAMS:
        if len(request.query_params.getlist(name)) > 1:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"query parameter {name!r} given more than once")


def parse_map_index(text: str) -> int:
    """Read ``map_index``: an integer ≥ -1; anything else (the UI's literal ``{MAP_INDEX}``) means -1.

    Raises:
        HTTPException: an integer below -1 or out of range.
    """
    if not _MAP_INDEX.match(text.strip()):
        return -1
    value = int(text)
    if value < -1 or value > 2**31 - 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"map_index must be an integer >= -1, got {value}")
    return value


def task_instance_ref(
    dag_id: DagId,
    run_id: RunId,
    task_id: TaskId,
    map_index: Annotated[str, Query(max_length=32)] = "-1",
) -> TaskInstanceRef:
    """The task instance named by the query parameters (validated)."""
    return TaskInstanceRef(dag_id, run_id, task_id, parse_map_index(map_index))


TIRefDep = Annotated[TaskInstanceRef, Depends(task_instance_ref)]


class RerunBody(BaseModel):
    """Body of ``POST /api/checkpoint/rerun`` (``resume``: also resume the task, as ``/resume`` does)."""

    model_config = ConfigDict(extra="forbid")
    component: str = Field(min_length=1, max_length=512)
    resume: bool = False


class ResetBody(BaseModel):
    """Body of ``POST /api/checkpoint/reset`` and ``/resume`` (an empty JSON object)."""

    model_config = ConfigDict(extra="forbid")


# -- the page ------------------------------------------------------------------------------------------


def _load_page() -> tuple[str, str]:
    """Return the inspector page and its Content-Security-Policy (the inline script pinned by hash)."""
    page = resources.files("airflow_ppf.plugins").joinpath("checkpoint_inspector.html").read_text("utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii") + "'" for s in scripts
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
    return page, policy


def _page_response(page: str, policy: str) -> HTMLResponse:
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


# -- helpers -------------------------------------------------------------------------------------------


def _task_instance(session: Session, ref: TaskInstanceRef) -> TaskInstance:
    ti: TaskInstance | None = session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == ref.dag_id,
            TaskInstance.run_id == ref.run_id,
            TaskInstance.task_id == ref.task_id,
            TaskInstance.map_index == ref.map_index,
        )
    )
    if ti is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task instance {ref} not found")
    return ti


def _state(ti: TaskInstance) -> str | None:
    return str(ti.state) if ti.state is not None else None  # TaskInstanceState's str() is its value


def _ti_json(ti: TaskInstance) -> dict[str, Any]:
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "state": _state(ti),
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "operator": ti.custom_operator_name or ti.operator,
    }


def _task_busy(ti: TaskInstance) -> bool:
    """A try runs now or is about to start: edits would race with it."""
    return _state(ti) in BUSY_STATES


def _task_running(ti: TaskInstance) -> bool:
    """A try runs now: an ``in_progress`` checkpoint is being written (else it was left by a hard stop)."""
    return _state(ti) == "running"


def _live(ti: TaskInstance) -> bool:
    """A try runs now or soon: the task is busy or waits for a retry, or has no state in a live DAG run."""
    state = _state(ti)
    if state is None:
        run = ti.dag_run
        return run is not None and run.state is not None and str(run.state) in LIVE_RUN_STATES
    return state in LIVE_STATES


def _can_edit(user: BaseUser, dag_id: str) -> bool:
    try:
        return bool(
            get_auth_manager().is_authorized_dag(
                method="PUT",
                access_entity=DagAccessEntity.TASK_INSTANCE,
                details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
                user=user,
            )
        )
    except Exception:  # only decides whether buttons show; the POST routes check for real
        log.exception("Could not check edit permission on DAG %s", dag_id)
        return False


def _locate(ref: TaskInstanceRef, session: Session) -> tuple[LocatedCheckpoint | None, str | None]:
    try:
        return open_checkpoint(ref, session), None
    except CheckpointError as exc:
        return None, str(exc)


def _try_summary(ti: TaskInstance, session: Session) -> dict[str, Any] | None:
    """The ``ppf_summary`` XCom the task's latest try pushed (Airflow clears it when a new try starts)."""
    row = session.scalars(
        XComModel.get_many(
            run_id=ti.run_id, key=SUMMARY_XCOM_KEY, dag_ids=ti.dag_id, task_ids=ti.task_id, map_indexes=ti.map_index
        )
    ).first()
    if row is None:
        return None
    try:
        value = XComModel.deserialize_value(row)
    except Exception:  # a summary is for people: an unreadable one is no summary
        log.warning("Unreadable %s XCom of %s", SUMMARY_XCOM_KEY, ti, exc_info=True)
        return None
    return value if isinstance(value, dict) else None


def _task_error(ti: TaskInstance, session: Session) -> dict[str, Any] | None:
    """Why a task instance without a checkpoint failed: the error its try reported, else where to look.

    A try that fails before it writes a checkpoint (a config error, a damaged checkpoint, a pipeline that
    changed with ``on_config_change="fail"``) reports its error in the ``ppf_summary`` XCom.
    """
    summary = _try_summary(ti, session)
    if summary is not None and summary.get("error"):
        return {"try_number": summary.get("try_number", ti.try_number), "message": redact(str(summary["error"]))}
    if _state(ti) in ("failed", "up_for_retry"):
        return {
            "try_number": ti.try_number,
            "message": f"try {ti.try_number} failed before it recorded a checkpoint: its task log says why",
        }
    return None


def _pipeline_task_ids(dag_run: DagRun, session: Session, dag_bag: DBDagBag) -> set[str]:
    """Tasks of the run's DAG that are PipelineOperator tasks, subclasses included (their operator name is
    their own): the serialized tasks with PipelineOperator's templated fields."""
    try:
        dag = dag_bag.get_dag_for_run(dag_run, session=session)
    except Exception:  # only decides what the pages list and explain
        log.warning("Could not load the serialized DAG of %s", dag_run, exc_info=True)
        return set()
    if dag is None:
        return set()
    return {
        task_id
        for task_id, task in dag.task_dict.items()
        if {"pipeline", "pipeline_vars"} <= set(getattr(task, "template_fields", ()))
    }


def _is_pipeline_task(ti: TaskInstance, session: Session, dag_bag: DBDagBag) -> bool:
    """Whether the task is a PipelineOperator task (or of a subclass)."""
    if OPERATOR_NAME in (ti.operator, ti.custom_operator_name):
        return True
    return ti.task_id in _pipeline_task_ids(ti.dag_run, session, dag_bag)


def _checkpoint_payload(
    ref: TaskInstanceRef, ti: TaskInstance, located: LocatedCheckpoint | None, error: str | None
) -> dict[str, Any]:
    state = located.state if located is not None else None
    checkpoint = describe_checkpoint(state, task_active=_task_running(ti)) if state is not None else None
    busy = f"the task instance is {_state(ti)}: wait until its try ends" if _task_busy(ti) else None
    resume_blocked = busy
    if resume_blocked is None and state is not None:
        # What a resume runs: the next try's plan the description already predicted, when it shows one.
        planned = checkpoint["next"] if checkpoint is not None else None
        if not (planned["to_run"] if planned is not None else resume_targets(state)):
            resume_blocked = "every component is done: use rerun from to mark components not done first"
    return {
        "task_instance": _ti_json(ti),
        "checkpoint_run_id": ref.checkpoint_run_id,
        "store": located.kind if located is not None and state is not None else None,
        "checkpoint": checkpoint,
        "error": error,
        "live": _live(ti),
        "edit_blocked": busy,
        "resume_blocked": resume_blocked,
        # A retry is on its way: edits apply to it. Otherwise an edit waits for a clear (or goes with a resume).
        "retry_pending": _state(ti) == "up_for_retry",
    }


def _clear_for_resume(ref: TaskInstanceRef, session: Session, user: BaseUser, dag_bag: DBDagBag) -> int:
    """Clear the task instance with Airflow's own clear; return the ``max_tries`` it set.

    This calls the function behind the REST API's ``POST /dags/{dag_id}/clearTaskInstances`` (not a copy of
    it), in the request's session: the caller already passed the same permission check that endpoint makes
    (PUT on the DAG's task instances). Only this one task instance is cleared (no upstream, downstream,
    past or future); its DAG run is queued again when it had ended, as the UI's "Clear" does.

    Raises:
        HTTPException: Airflow refused the clear (409 while the task runs), or did not clear this instance.
    """
    from airflow.api_fastapi.core_api.datamodels.task_instances import ClearTaskInstancesBody
    from airflow.api_fastapi.core_api.routes.public.task_instances import post_clear_task_instances

    marker: str | tuple[str, int] = ref.task_id if ref.map_index < 0 else (ref.task_id, ref.map_index)
    body = ClearTaskInstancesBody(
        dry_run=False,
        only_failed=False,
        reset_dag_runs=True,
        dag_run_id=ref.run_id,
        task_ids=[marker],
        prevent_running_task=True,
    )
    cleared = post_clear_task_instances(dag_id=ref.dag_id, dag_bag=dag_bag, body=body, session=session, user=user)
    mine = [t for t in cleared.task_instances if (t.task_id, t.map_index) == (ref.task_id, ref.map_index)]
    if len(mine) != 1:
        raise HTTPException(status.HTTP_409_CONFLICT, f"Airflow did not clear task instance {ref}")
    return int(mine[0].max_tries)


# -- the app -------------------------------------------------------------------------------------------


def create_app() -> FastAPI:
    """Build the inspector app (mounted by the api-server at the plugin's ``url_prefix``)."""
    from airflow.api_fastapi.common.dagbag import create_dag_bag

    app = FastAPI(
        title="airflow-ppf checkpoints",
        description="Checkpoint inspector of airflow-ppf PipelineOperator tasks.",
        docs_url=None,
        redoc_url=None,
    )
    page, policy = _load_page()
    dag_bag = create_dag_bag()  # serialized DAGs, for Airflow's clear (the api-server's own is not reachable here)
    can_read = [Depends(_once), Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))]
    # PUT on the DAG's task instances: what Airflow's own clearTaskInstances endpoint requires.
    can_edit = [Depends(_once), Depends(requires_access_dag("PUT", DagAccessEntity.TASK_INSTANCE))]

    @app.get("/checkpoint", dependencies=can_read, response_class=HTMLResponse)
    def checkpoint_page(ref: TIRefDep) -> HTMLResponse:
        """The inspector page of one task instance (its data comes from ``api/checkpoint``)."""
        return _page_response(page, policy)

    @app.get("/run", dependencies=can_read, response_class=HTMLResponse)
    def run_page(dag_id: DagId, run_id: RunId) -> HTMLResponse:
        """The overview page of one DAG run (its data comes from ``api/run``)."""
        return _page_response(page, policy)

    @app.get("/api/checkpoint", dependencies=can_read)
    def get_checkpoint(ref: TIRefDep, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
        """The checkpoint of one task instance: graph, attempts, resume plan, fingerprints."""
        ti = _task_instance(session, ref)
        located, error = _locate(ref, session)
        payload = _checkpoint_payload(ref, ti, located, error)
        payload["can_edit"] = _can_edit(user, ref.dag_id)
        if payload["checkpoint"] is None and error is None:
            payload["pipeline_task"] = _is_pipeline_task(ti, session, dag_bag)
            payload["task_error"] = _task_error(ti, session) if payload["pipeline_task"] else None
        else:
            payload["pipeline_task"], payload["task_error"] = True, None
        return payload

    @app.get("/api/run", dependencies=can_read)
    def get_run(dag_id: DagId, run_id: RunId, session: SessionDep) -> dict[str, Any]:
        """The run's PipelineOperator task instances (subclasses and any task holding a checkpoint included),
        each with a digest."""
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG run {dag_id}/{run_id} not found")
        holders = (
            select(TaskStateStoreModel.task_id)
            .where(
                TaskStateStoreModel.dag_id == dag_id,
                TaskStateStoreModel.run_id == run_id,
                TaskStateStoreModel.key == HEAD_KEY,
            )
            .scalar_subquery()
        )
        tis = session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                or_(
                    TaskInstance.operator == OPERATOR_NAME,
                    TaskInstance.custom_operator_name == OPERATOR_NAME,
                    TaskInstance.task_id.in_(holders),
                    TaskInstance.task_id.in_(_pipeline_task_ids(dag_run, session, dag_bag)),
                ),
            )
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
            .limit(MAX_RUN_TASKS + 1)
        ).all()
        tasks = []
        for ti in tis[:MAX_RUN_TASKS]:
            ref = TaskInstanceRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
            located, error = _locate(ref, session)
            state = located.state if located is not None else None
            tasks.append(
                {
                    **_ti_json(ti),
                    "store": located.kind if located is not None and state is not None else None,
                    "checkpoint": summarize_checkpoint(state, task_active=_task_running(ti)) if state else None,
                    "error": error,
                    "task_error": _task_error(ti, session) if state is None and error is None else None,
                }
            )
        run_state = str(dag_run.state) if dag_run.state is not None else None
        return {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": run_state,
            "tasks": tasks,
            "truncated": len(tis) > MAX_RUN_TASKS,
            "live": run_state in LIVE_RUN_STATES,
        }

    def edit(
        ref: TaskInstanceRef,
        session: Session,
        user: BaseUser,
        change: Callable[[CheckpointState, str], list[str]],
        *,
        resume: bool = False,
    ) -> dict[str, Any]:
        ti = _task_instance(session, ref)
        if _task_busy(ti):
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"the task instance is {_state(ti)}: wait until its try ends, then retry"
            )
        try:
            located = open_checkpoint(ref, session)
        except CheckpointError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        state = located.state
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"task instance {ref} has no checkpoint")
        if not state.attempts:
            raise HTTPException(status.HTTP_409_CONFLICT, "the checkpoint records no attempt yet")
        who = user.get_name()
        to_run: list[str] = []
        try:
            invalidated = change(state, who)
            if resume:
                # The clear and the recorded resume share the request's transaction (SessionDep commits at
                # the end, rolls back on any error); a file checkpoint is written after the clear succeeded.
                to_run = resume_checkpoint(state, who, max_tries=_clear_for_resume(ref, session, user, dag_bag))
            located.store.save(state)
        except UnknownComponentError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        except (NothingToRerunError, NothingToResumeError) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except CheckpointFencedError as exc:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"a newer try wrote the checkpoint meanwhile; reload the page ({exc})"
            ) from None
        except CheckpointError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        log.info(
            "Checkpoint of %s edited by %s: %d components marked not done%s",
            ref,
            who,
            len(invalidated),
            f"; task instance cleared to resume, the next try runs {', '.join(to_run)}" if resume else "",
        )
        if resume:
            ti = _task_instance(session, ref)  # as the clear left it (Airflow gives a cleared try a new id)
        payload = _checkpoint_payload(ref, ti, located, None)
        payload["invalidated"] = invalidated
        payload["resumed"] = resume
        payload["to_run"] = to_run
        payload["can_edit"] = True
        payload["pipeline_task"], payload["task_error"] = True, None
        return payload

    @app.post("/api/checkpoint/reset", dependencies=[*can_edit, Depends(action_logging("ppf_checkpoint_reset"))])
    def post_reset(ref: TIRefDep, body: ResetBody, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
        """Mark every component not done: the next try of the task starts from the beginning."""
        return edit(ref, session, user, reset_checkpoint)

    @app.post("/api/checkpoint/rerun", dependencies=[*can_edit, Depends(action_logging("ppf_checkpoint_rerun"))])
    def post_rerun(ref: TIRefDep, body: RerunBody, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
        """Mark ``body.component`` and everything downstream of it not done: the next try reruns them.

        With ``body.resume``, then resume the task (as ``/api/checkpoint/resume``): a task whose retries are
        exhausted reruns from the component now (the one that failed is accepted: it runs anyway).
        """
        return edit(
            ref,
            session,
            user,
            lambda state, who: rerun_from(state, body.component, who, resuming=body.resume),
            resume=body.resume,
        )

    @app.post("/api/checkpoint/resume", dependencies=[*can_edit, Depends(action_logging("ppf_checkpoint_resume"))])
    def post_resume(ref: TIRefDep, body: ResetBody, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
        """Keep the checkpoint and clear the task instance: the next try resumes (skips what is done).

        For a task whose last retry failed: a plain clear starts over, this resumes.
        """
        return edit(ref, session, user, lambda state, who: [], resume=True)

    return app
