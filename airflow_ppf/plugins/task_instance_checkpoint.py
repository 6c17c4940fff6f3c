"""Find, read and write the checkpoint of one task instance from the api-server (no running task needed).

A running ``PipelineOperator`` keeps its checkpoint in ``context["task_state_store"]`` (or, when configured,
a folder under ``[ppf] checkpoint_dir``). On the server the same task state store rows are reached through
Airflow's configured state backend (``airflow.state.get_state_backend()``, ``[state_store] backend``), the
API the execution API itself uses for workers. :class:`ServerTaskStateAccessor` binds it to one task
instance and gives it the ``get``/``set``/``delete`` shape of the worker's accessor, so the very same
:class:`~airflow_ppf.stores.task_state.TaskStateCheckpointStore` code (chunks, format checks, fencing) reads
and writes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow.state import TaskScope, get_state_backend

from airflow_ppf.checkpoint.errors import CheckpointError
from airflow_ppf.checkpoint.naming import pipeline_run_id
from airflow_ppf.checkpoint.stores import CheckpointStore, LocalCheckpointStore
from airflow_ppf.settings import checkpoint_dir
from airflow_ppf.stores.task_state import TaskStateCheckpointStore

if TYPE_CHECKING:
    from airflow._shared.state import BaseStoreBackend
    from sqlalchemy.orm import Session

    from airflow_ppf.checkpoint.state import CheckpointState

__all__ = [
    "LocatedCheckpoint",
    "ServerTaskStateAccessor",
    "StateStoreUnavailableError",
    "TaskInstanceRef",
    "open_checkpoint",
]

#: How the Task SDK marks a value kept by a ``[workers] state_store_backend`` instead of the DB.
_EXTERNAL_REF_KEY = "__airflow_state_ref__"


class StateStoreUnavailableError(CheckpointError):
    """The checkpoint lives somewhere this server cannot read."""


@dataclass(frozen=True)
class TaskInstanceRef:
    """One task instance: what the inspector's URLs carry."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @property
    def checkpoint_run_id(self) -> str:
        """The checkpoint run id ``PipelineOperator`` uses for this task instance."""
        return pipeline_run_id(self.dag_id, self.run_id, self.task_id, self.map_index)

    @property
    def scope(self) -> TaskScope:
        return TaskScope(dag_id=self.dag_id, run_id=self.run_id, task_id=self.task_id, map_index=self.map_index)

    def __str__(self) -> str:
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}"


@functools.cache
def _worker_backend() -> BaseStoreBackend | None:
    """The ``[workers] state_store_backend`` that workers offload values to, when one is configured."""
    from airflow.configuration import conf

    backend_class = conf.getimport("workers", "state_store_backend", fallback="")
    if backend_class is None:
        return None
    backend: BaseStoreBackend = backend_class()
    return backend


def _default_expiry() -> dt.datetime | None:
    """``expires_at`` for a write, as a worker's ``set()`` without ``retention`` computes it."""
    from airflow.configuration import conf

    days = conf.getint("state_store", "default_retention_days", fallback=30)
    return None if days <= 0 else dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


class ServerTaskStateAccessor:
    """``get``/``set``/``delete`` on one task instance's task state store, from the api-server.

    Args:
        ref: the task instance.
        session: the database session of the request; writes are committed with it.
    """

    def __init__(self, ref: TaskInstanceRef, session: Session) -> None:
        self.ref = ref
        self.scope = ref.scope
        self.session = session

    def get(self, key: str, default: Any = None) -> Any:
        """Return the stored value of ``key`` (``default`` when missing).

        Raises:
            StateStoreUnavailableError: the value was offloaded by a worker-side state backend that is not
                configured on this server.
        """
        raw = get_state_backend().get(self.scope, key, session=self.session)
        if raw is None:
            return default
        value = json.loads(raw)
        if isinstance(value, dict) and set(value) == {_EXTERNAL_REF_KEY}:
            backend = _worker_backend()
            if backend is None:
                raise StateStoreUnavailableError(
                    f"task state key '{key}' of {self.ref} is kept by a [workers] state_store_backend; "
                    "configure the same backend on the api-server to read it"
                )
            return backend.deserialize_task_state_store_from_ref(str(value[_EXTERNAL_REF_KEY]))
        return value

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        """Write ``value`` under ``key`` with the default retention (as the worker does)."""
        if value is None:
            raise ValueError("a task state value cannot be None")
        stored = value
        backend = _worker_backend()
        if backend is not None:
            ref = backend.serialize_task_state_store_to_ref(value=value, key=key, scope=self.scope)
            stored = {_EXTERNAL_REF_KEY: ref}
        get_state_backend().set(self.scope, key, json.dumps(stored), expires_at=_default_expiry(), session=self.session)

    def delete(self, key: str) -> None:
        """Remove ``key`` (no-op when missing)."""
        get_state_backend().delete(self.scope, key, session=self.session)
        backend = _worker_backend()
        if backend is not None:
            backend.delete(self.scope, key)


@dataclass
class LocatedCheckpoint:
    """A task instance's checkpoint and the store it was found in (``state`` is ``None`` when there is none)."""

    store: CheckpointStore
    kind: Literal["task_state", "local"]
    state: CheckpointState | None


def open_checkpoint(ref: TaskInstanceRef, session: Session) -> LocatedCheckpoint:
    """Load the checkpoint of ``ref``: its task state store first, else ``[ppf] checkpoint_dir``.

    Raises:
        CheckpointError: the stored checkpoint is damaged, of a newer format, or unreachable.
    """
    run_id = ref.checkpoint_run_id
    in_task_state = TaskStateCheckpointStore(ServerTaskStateAccessor(ref, session), f"task state store of {ref}")
    state = in_task_state.load(run_id)
    if state is not None:
        return LocatedCheckpoint(in_task_state, "task_state", state)
    folder = checkpoint_dir()
    if folder.is_dir():
        local = LocalCheckpointStore(folder)
        state = local.load(run_id)
        if state is not None:
            return LocatedCheckpoint(local, "local", state)
    return LocatedCheckpoint(in_task_state, "task_state", None)
