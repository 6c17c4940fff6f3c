"""Edits a person makes to a stored checkpoint from the inspector: reset it, rerun from a component, resume.

Reset and rerun-from only mark components *not done* (:meth:`CheckpointState.invalidate`) and record who
asked (:meth:`CheckpointState.record_event`) in the latest attempt's history; the next try of the task then
runs them again. Resume marks nothing: it records that the clear going with it must resume (see
:func:`~airflow_ppf.checkpoint.planner.resume_request`). Each changes the loaded state in place and keeps its
latest attempt and writer, so saving it back passes the stores' fencing check unless a newer attempt wrote
in the meantime.
"""

from __future__ import annotations

from airflow_ppf.checkpoint.planner import predict_next_attempt
from airflow_ppf.checkpoint.state import RESUME_EVENT, CheckpointState, recorded_graph
from airflow_ppf.config.graph import descendants

__all__ = [
    "NothingToRerunError",
    "NothingToResumeError",
    "UnknownComponentError",
    "rerun_from",
    "rerun_targets",
    "reset_checkpoint",
    "resume_checkpoint",
    "resume_targets",
]


class UnknownComponentError(ValueError):
    """The component is not part of the checkpoint."""


class NothingToRerunError(ValueError):
    """The request would change nothing: none of the components it names is done."""


class NothingToResumeError(ValueError):
    """A resume would run nothing: every component is done and none was marked not done since."""


def rerun_targets(state: CheckpointState, component: str) -> list[str]:
    """Return ``component`` and everything downstream of it, in execution order.

    Checkpoints written before the dependency graph was recorded cannot tell what is downstream; there
    ``component`` and every component that completed after it are returned (a superset, so nothing
    that read its output stays done).

    Raises:
        UnknownComponentError: ``component`` is not in the checkpoint.
    """
    graph, known = recorded_graph(state)
    if component not in graph:
        raise UnknownComponentError(f"unknown component {component!r}; the checkpoint has: {', '.join(graph)}")
    if known:
        wanted = {component} | descendants(graph, [component])
        return [name for name in graph if name in wanted]
    completed = state.completed_components
    later = completed[completed.index(component) + 1 :] if component in completed else []
    return [component, *later]


def reset_checkpoint(state: CheckpointState, user: str) -> list[str]:
    """Mark every component not done (the next try starts from the beginning); return their names."""
    names = list(state.completed_components)
    if names:
        state.invalidate(names, f"checkpoint reset by {user}")
    state.record_event("reset", by=user, invalidated=names)
    return names


def rerun_from(state: CheckpointState, component: str, user: str, *, resuming: bool = False) -> list[str]:
    """Mark ``component`` and all its descendants not done; return the names that were done.

    With ``resuming`` (the same request resumes the task: :func:`resume_checkpoint`), a ``component`` that
    is not done, such as the one that failed, is no error: the resume runs it anyway, so nothing is marked
    and nothing is recorded here.

    Raises:
        UnknownComponentError: ``component`` is not in the checkpoint.
        NothingToRerunError: neither ``component`` nor anything downstream of it is done (and not ``resuming``).
    """
    done = state.completed_set()
    names = [name for name in rerun_targets(state, component) if name in done]
    if not names and resuming:
        return []
    if not names:
        raise NothingToRerunError(f"nothing to rerun: neither {component!r} nor anything downstream of it is done")
    state.invalidate(names, f"rerun from {component!r} requested by {user}")
    state.record_event("rerun_from", by=user, component=component, invalidated=names)
    return names


def resume_targets(state: CheckpointState) -> list[str]:
    """Return what a resume of ``state`` runs (the planner's prediction of the next attempt), in order."""
    return predict_next_attempt(state).to_run


def resume_checkpoint(state: CheckpointState, user: str, *, max_tries: int | None) -> list[str]:
    """Record that ``user`` resumes the task from ``state``; return what the next attempt will run.

    A person clears the task instance to run it again after its last retry failed; Airflow raises its
    ``max_tries`` then, which otherwise makes the next attempt start over (a plain clear). The event keeps
    ``max_tries`` as that clear set it, so the planner resumes across exactly that clear
    (:func:`~airflow_ppf.checkpoint.planner.resume_request`).

    Raises:
        NothingToResumeError: the next attempt would run nothing (the pipeline completed and no component
            was marked not done since).
    """
    to_run = resume_targets(state)
    if not to_run:
        raise NothingToResumeError(
            f"nothing to resume: all {len(state.completed_components)} components of attempt {state.attempt} are "
            "done; use rerun from to mark components not done first"
        )
    state.record_event(RESUME_EVENT, by=user, max_tries=max_tries)
    return to_run
