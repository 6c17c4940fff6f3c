"""Edits a person makes to a stored checkpoint from the inspector: reset it, or rerun from a component.

Both only mark components *not done* (:meth:`CheckpointState.invalidate`) and record who asked
(:meth:`CheckpointState.record_event`) in the latest attempt's history; the next try of the task then runs
them again. They change the loaded state in place and keep its latest attempt and writer, so saving it
back passes the stores' fencing check unless a newer attempt wrote in the meantime.
"""

from __future__ import annotations

from airflow_ppf.checkpoint.state import CheckpointState, recorded_graph
from airflow_ppf.config.graph import descendants

__all__ = ["NothingToRerunError", "UnknownComponentError", "rerun_from", "rerun_targets", "reset_checkpoint"]


class UnknownComponentError(ValueError):
    """The component is not part of the checkpoint."""


class NothingToRerunError(ValueError):
    """The request would change nothing: none of the components it names is done."""


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


def rerun_from(state: CheckpointState, component: str, user: str) -> list[str]:
    """Mark ``component`` and all its descendants not done; return the names that were done.

    Raises:
        UnknownComponentError: ``component`` is not in the checkpoint.
        NothingToRerunError: neither ``component`` nor anything downstream of it is done.
    """
    done = state.completed_set()
    names = [name for name in rerun_targets(state, component) if name in done]
    if not names:
        raise NothingToRerunError(f"nothing to rerun: neither {component!r} nor anything downstream of it is done")
    state.invalidate(names, f"rerun from {component!r} requested by {user}")
    state.record_event("rerun_from", by=user, component=component, invalidated=names)
    return names
