"""What the checkpoint inspector shows: a JSON-friendly description of one :class:`CheckpointState`.

Pure functions over a loaded checkpoint (no Airflow, no I/O), so the view model is testable on its own:

* the component graph: nodes with a state (see :data:`NODE_STATES`) and their box, edges from
  ``depends_on`` with the route the page draws (:mod:`airflow_ppf.plugins.graph_layout`: no edge passes
  under a box);
* the attempt history (what each try ran, skipped, where it failed, its events);
* the plan the latest attempt followed, as that attempt recorded it (never re-derived here), and the time
  resuming saved;
* what the next attempt will do, as the planner predicts it from the checkpoint (after a failure, or
  after a person edited the checkpoint);
* the pipeline fingerprint and, per attempt where it changed, which components changed.

A checkpoint holds no config values (only digests); this module adds none and masks anything that looks
like a credential in free text (error messages, event details, URIs) before it leaves the server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_ppf.checkpoint.fingerprint import disabled_in
from airflow_ppf.checkpoint.planner import predict_next_attempt
from airflow_ppf.checkpoint.state import EDIT_EVENTS, AttemptRecord, CheckpointState, CheckpointStatus, recorded_graph
from airflow_ppf.config.graph import topological_order
from airflow_ppf.plugins.graph_layout import layout_graph

__all__ = [
    "NODE_STATES",
    "describe_checkpoint",
    "last_edit",
    "redact",
    "summarize_checkpoint",
]

#: Node states, in legend order. ``skipped`` = done in an earlier attempt and skipped by the latest one.
NODE_STATES = ("done", "skipped", "running", "failed", "blocked", "pending", "disabled")

_MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*@")
_SECRET_FIELD = re.compile(
    r"(?i)(?P<key>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|authorization)[\w.-]*)(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s,;&\"'})\]]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact(value: Any) -> Any:
    """Mask credentials in free text: URL user info, ``password=...``-style pairs, bearer tokens.

    Works through lists and dicts (keys that name a secret get their whole value masked).
    """
    if isinstance(value, str):
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", value)
        text = _BEARER.sub(lambda m: f"{m[1]} {_MASK}", text)
        return _SECRET_FIELD.sub(lambda m: f"{m['key']}{m['sep']}{_MASK}", text)
    if isinstance(value, Mapping):
        return {
            str(k): _MASK if _SECRET_FIELD.fullmatch(f"{k}=x") and not isinstance(v, bool) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    try:
        return topological_order(graph)
    except ValueError:  # a damaged graph must not break the page
        return list(graph)


def _is_disabled(state: CheckpointState, name: str) -> bool:
    return disabled_in(state.field_digests.get(name))


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _elapsed_ms(start: str | None, end: str | None) -> int | None:
    begin, finish = _parse_time(start), _parse_time(end)
    if begin is None or finish is None:
        return None
    return max(0, int((finish - begin).total_seconds() * 1000))


def _node_states(
    state: CheckpointState, graph: Mapping[str, Sequence[str]], order: Sequence[str], task_active: bool | None
) -> dict[str, str]:
    latest = state.current_attempt
    completed = state.completed_set()
    states: dict[str, str] = {}
    running_found = False
    in_progress = state.status == CheckpointStatus.IN_PROGRESS and task_active is not False
    # Done earlier but to run again in the current attempt (it is marked not done when it starts).
    reruns = set(latest.resume.get("reruns") or {}) if latest is not None and in_progress else set()
    for name in order:
        record = state.components.get(name)
        upstream = [states.get(d) for d in graph.get(name, ())]
        earlier = latest is not None and record is not None and record.attempt < latest.attempt
        if name in completed and not (earlier and name in reruns):
            states[name] = "skipped" if earlier or (latest is not None and name in latest.skipped) else "done"
        elif _is_disabled(state, name):
            states[name] = "disabled"
        elif latest is not None and latest.failed == name:
            states[name] = "failed"
        elif any(s in ("failed", "blocked") for s in upstream):
            states[name] = "blocked"
        elif (
            in_progress
            and not running_found
            and latest is not None
            and all(s in ("done", "skipped", "disabled") for s in upstream)
        ):
            states[name] = "running"
            running_found = True
        else:
            states[name] = "pending"
    return states


def _recorded_plan(state: CheckpointState) -> dict[str, Any]:
    """The plan the latest attempt followed, as it recorded it (nothing is re-derived here)."""
    latest = state.current_attempt
    if latest is None:
        return {"attempt": 0, "headline": "No attempt recorded yet", "entries": []}
    resume = dict(redact(latest.resume))
    entries = resume.get("entries")
    if not isinstance(entries, list):
        resume["headline"] = f"Attempt {latest.attempt}: its plan was not recorded (an older airflow-ppf wrote it)"
        entries = []
    resume.update(attempt=latest.attempt, entries=entries)
    resume.setdefault("headline", f"Attempt {latest.attempt}")
    return resume


def _next_plan(state: CheckpointState, task_active: bool | None) -> dict[str, Any] | None:
    """What the next attempt will do, when one is to come: the latest attempt did not complete, or a person
    edited the checkpoint since. ``None`` while an attempt runs, or when nothing is left to do."""
    latest = state.current_attempt
    if latest is None or task_active or (state.status == CheckpointStatus.IN_PROGRESS and task_active is None):
        return None
    if state.status == CheckpointStatus.COMPLETED and last_edit(state) is None:
        return None
    plan = predict_next_attempt(state)
    active = [e for e in plan.entries if e.action.value != "disabled"]
    to_run = plan.to_run
    resumed = f"Resumed by {plan.resumed_by} from the Checkpoint tab: " if plan.resumed_by else ""
    return {
        "headline": (
            f"{resumed}{'t' if resumed else 'T'}he next try runs {len(to_run)} of {len(active)} components"
            + (f" and skips {len(plan.skip)} ({plan.savings()})" if plan.skip else "")
            + (f": {', '.join(to_run)}" if 0 < len(to_run) <= 12 else "")
        ),
        "entries": redact([e.to_dict() for e in plan.entries]),
        "to_run": to_run,
        "resumed_by": plan.resumed_by,
    }


def _attempt(attempt: AttemptRecord, previous: AttemptRecord | None) -> dict[str, Any]:
    changed_fp = (
        previous is not None
        and attempt.pipeline_fingerprint is not None
        and previous.pipeline_fingerprint is not None
        and attempt.pipeline_fingerprint != previous.pipeline_fingerprint
    )
    meta = attempt.meta
    return {
        "attempt": attempt.attempt,
        "try_number": meta.get("try_number", attempt.attempt),
        "max_tries": meta.get("max_tries"),
        "host": redact(meta.get("hostname")) if meta.get("hostname") else None,
        "status": attempt.status,
        "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        "duration_ms": _elapsed_ms(attempt.started_at, attempt.ended_at),
        "ran": [{"name": n, "duration_ms": attempt.durations_ms.get(n, 0)} for n in attempt.ran],
        "skipped": list(attempt.skipped),
        "failed": (
            {
                "name": attempt.failed,
                "error_type": attempt.error_type,
                "error_message": redact(attempt.error_message),
                "duration_ms": attempt.durations_ms.get(attempt.failed, 0),
            }
            if attempt.failed
            else None
        ),
        "events": redact(attempt.events),
        "fingerprint": attempt.pipeline_fingerprint,
        "fingerprint_changed": changed_fp,
        "resume": redact(attempt.resume),
        "time_saved_ms": int(attempt.resume.get("time_saved_ms", 0) or 0),
    }


def _fingerprint_changes(state: CheckpointState) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for previous, attempt in zip(state.attempts, state.attempts[1:], strict=False):
        if (
            attempt.pipeline_fingerprint is None
            or previous.pipeline_fingerprint is None
            or attempt.pipeline_fingerprint == previous.pipeline_fingerprint
        ):
            continue
        changes.append(
            {
                "attempt": attempt.attempt,
                "previous": previous.pipeline_fingerprint,
                "current": attempt.pipeline_fingerprint,
                "changed": redact(dict(attempt.resume.get("changed") or {})),
                "removed": list(attempt.resume.get("removed") or []),
                "mode": attempt.resume.get("mode"),
            }
        )
    return changes


def last_edit(state: CheckpointState) -> dict[str, Any] | None:
    """The latest person's edit made after the latest attempt ended (what the next try will see), if any."""
    latest = state.current_attempt
    if latest is None or not latest.ended_at:
        return None
    ended = _parse_time(latest.ended_at)
    for event in reversed(latest.events):
        at = _parse_time(event.get("at"))
        if event.get("event") in EDIT_EVENTS and at is not None and ended is not None and at >= ended:
            return {k: v for k, v in redact(event).items() if k in ("event", "by", "at", "component", "invalidated")}
    return None


def describe_checkpoint(state: CheckpointState, *, task_active: bool | None = None) -> dict[str, Any]:
    """Return everything the inspector page shows about ``state``.

    Args:
        state: the loaded checkpoint.
        task_active: whether Airflow says the task instance is running now (``None``: unknown). A
            checkpoint still ``in_progress`` while the task is not running was left by a hard stop; no
            component is shown as running then.
    """
    graph, graph_known = recorded_graph(state)
    order = _order(graph)
    states = _node_states(state, graph, order, task_active)
    latest = state.current_attempt
    layout = layout_graph(order, graph)  # ``order`` holds every name of ``graph``: it drops unknown dependencies
    nodes = []
    for index, name in enumerate(order):
        record = state.components.get(name)
        box = layout.boxes[name]
        node: dict[str, Any] = {
            "name": name,
            "state": states[name],
            "depth": layout.columns[name],
            "order": index,
            "box": [box.x, box.y, box.w, box.h],
            "depends_on": [d for d in graph.get(name, []) if d in graph],
            "fingerprint": state.component_fingerprints.get(name),
            "done_in_attempt": record.attempt if record is not None else None,
            "duration_ms": record.duration_ms if record is not None else None,
            "completed_at": record.completed_at if record is not None else None,
        }
        if states[name] == "failed" and latest is not None:
            node["error"] = {"type": latest.error_type, "message": redact(latest.error_message)}
        nodes.append(node)
    edges: list[dict[str, Any]] = [
        {"from": e.source, "to": e.target, "points": [list(p) for p in e.points]} for e in layout.edges
    ]
    edges += [{"from": source, "to": target, "points": None} for source, target in layout.omitted]
    counts = {s: sum(1 for v in states.values() if v == s) for s in NODE_STATES}
    latest_saved = int(latest.resume.get("time_saved_ms", 0) or 0) if latest is not None else 0
    attempts = [_attempt(a, state.attempts[i - 1] if i else None) for i, a in enumerate(state.attempts)]
    stale = state.status == CheckpointStatus.IN_PROGRESS and task_active is False
    return {
        "run_id": state.run_id,
        "pipeline_name": state.pipeline_name,
        "status": state.status,
        "stale": stale,
        "schema_version": state.schema_version,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "attempt": state.attempt,
        "edited": last_edit(state),
        "data_location": redact(state.data_location),
        "graph": {
            "known": graph_known,
            "nodes": nodes,
            "edges": edges,
            "counts": counts,
            "size": [layout.width, layout.height],
        },
        "attempts": attempts,
        "resume": _recorded_plan(state),
        "next": _next_plan(state, task_active),
        "time_saved_ms": {"latest": latest_saved, "total": sum(a["time_saved_ms"] for a in attempts)},
        "fingerprint": {"current": state.pipeline_fingerprint, "changes": _fingerprint_changes(state)},
    }


def summarize_checkpoint(state: CheckpointState, *, task_active: bool | None = None) -> dict[str, Any]:
    """A one-line digest of ``state`` for the run overview."""
    graph, _ = recorded_graph(state)
    order = _order(graph)
    states = _node_states(state, graph, order, task_active)
    latest = state.current_attempt
    counts = {s: sum(1 for v in states.values() if v == s) for s in NODE_STATES}
    return {
        "pipeline_name": state.pipeline_name,
        "status": state.status,
        "attempt": state.attempt,
        "components": len(order),
        "counts": counts,
        "failed": (
            {
                "name": latest.failed,
                "error_type": latest.error_type,
                "error_message": redact(latest.error_message),
            }
            if latest is not None and latest.failed
            else None
        ),
        "time_saved_ms": sum(int(a.resume.get("time_saved_ms", 0) or 0) for a in state.attempts),
        "edited": last_edit(state),
        "updated_at": state.updated_at,
    }
