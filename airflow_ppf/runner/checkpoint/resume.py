"""Resume decisions: which components a new attempt skips, which it runs again, and why.

:func:`plan_resume` compares a stored :class:`CheckpointState` with the current config and returns a
:class:`ResumePlan` with one entry per component (skip / run / rerun, with a reason such as
``completed in attempt 1`` or ``config.sql changed``). :func:`load_checkpoint_for_resume` is the
seed-compatible shortcut that returns just the set of names to skip.

When the pipeline changed since the checkpoint was written, ``on_config_change`` decides:

* ``restart`` (default): start from the beginning, with a warning that says what changed;
* ``partial``: keep completed components whose own fingerprint (which includes everything upstream) is
  unchanged; rerun the changed ones and everything downstream of them;
* ``fail``: raise :class:`PipelineConfigChangedError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_ppf.config.models import PipelineConfig
from airflow_ppf.runner.checkpoint.errors import CheckpointNotFoundError, PipelineConfigChangedError
from airflow_ppf.runner.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
    describe_field_changes,
)
from airflow_ppf.runner.checkpoint.state import CheckpointState
from airflow_ppf.runner.checkpoint.stores import CheckpointStore
from airflow_ppf.runner.report import format_seconds, format_table

__all__ = [
    "ComponentPlan",
    "OnConfigChange",
    "PlanAction",
    "ResumePlan",
    "describe_changes",
    "load_checkpoint_for_resume",
    "plan_resume",
]

log = logging.getLogger("airflow_ppf.runner.checkpoint")


class OnConfigChange(StrEnum):
    """What a resume does when the pipeline changed since its checkpoint was written."""

    RESTART = "restart"
    PARTIAL = "partial"
    FAIL = "fail"


class PlanAction(StrEnum):
    """What a new attempt does with one component."""

    SKIP = "skip"  # done earlier and still valid
    RUN = "run"  # never finished
    RERUN = "rerun"  # finished earlier but no longer valid
    DISABLED = "disabled"  # ``enabled = false``


@dataclass(frozen=True)
class ComponentPlan:
    """The decision for one component; ``recorded_ms`` is its recorded run time when skipped."""

    name: str
    action: PlanAction
    reason: str
    recorded_ms: int = 0


@dataclass
class ResumePlan:
    """Per-component decisions of a new attempt, in execution order."""

    run_id: str
    pipeline_name: str
    pipeline_fingerprint: str
    entries: list[ComponentPlan]
    previous_attempt: int = 0
    previous_status: str | None = None
    config_changed: bool = False
    changed_components: dict[str, str] = field(default_factory=dict)
    removed_components: list[str] = field(default_factory=list)
    mode: OnConfigChange = OnConfigChange.RESTART
    notes: list[str] = field(default_factory=list)

    @property
    def skip(self) -> set[str]:
        """Names to pass as ``completed_components``."""
        return {e.name for e in self.entries if e.action is PlanAction.SKIP}

    @property
    def skip_reasons(self) -> dict[str, str]:
        return {e.name: e.reason for e in self.entries if e.action is PlanAction.SKIP}

    @property
    def to_run(self) -> list[str]:
        return [e.name for e in self.entries if e.action in (PlanAction.RUN, PlanAction.RERUN)]

    @property
    def time_saved_ms(self) -> int:
        """Recorded run time of the skipped components: what resuming saves."""
        return sum(e.recorded_ms for e in self.entries if e.action is PlanAction.SKIP)

    @property
    def is_resume(self) -> bool:
        """Whether anything is skipped."""
        return bool(self.skip)

    def mark_reruns(self, reruns: dict[str, str]) -> None:
        """Turn skips into reruns (e.g. a saved view turned out to be missing), with the reason."""
        for i, entry in enumerate(self.entries):
            if entry.name in reruns and entry.action is PlanAction.SKIP:
                self.entries[i] = ComponentPlan(entry.name, PlanAction.RERUN, reruns[entry.name])

    def get(self, name: str) -> ComponentPlan | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    def headline(self) -> str:
        """One sentence: what this attempt does."""
        active = [e for e in self.entries if e.action is not PlanAction.DISABLED]
        if not self.previous_attempt:
            return f"Run {self.run_id!r}: no checkpoint, running all {len(active)} components"
        before = f"attempt {self.previous_attempt}" + (f" ({self.previous_status})" if self.previous_status else "")
        if not self.skip:
            why = " because the pipeline changed" if self.config_changed else ""
            return f"Run {self.run_id!r}: checkpoint of {before} found; starting from the beginning{why}"
        return (
            f"Run {self.run_id!r}: resuming after {before}: skipping {len(self.skip)} of {len(active)} "
            f"components (saves about {format_seconds(self.time_saved_ms / 1000)})"
        )

    def format_table(self) -> str:
        """Render the plan for logs and the CLI."""
        rows = [
            (
                i,
                e.name,
                e.action.value,
                e.reason + (f" ({format_seconds(e.recorded_ms / 1000)})" if e.action is PlanAction.SKIP else ""),
            )
            for i, e in enumerate(self.entries, start=1)
        ]
        parts = [self.headline(), format_table(["#", "component", "action", "reason"], rows)]
        parts.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(parts)

    def summary(self) -> dict[str, Any]:
        """A compact JSON-friendly record (kept in the attempt history and the task's XCom)."""
        out: dict[str, Any] = {
            "previous_attempt": self.previous_attempt,
            "skipped": len(self.skip),
            "to_run": len(self.to_run),
            "time_saved_ms": self.time_saved_ms,
            "config_changed": self.config_changed,
            "mode": self.mode.value,
        }
        if self.changed_components:
            out["changed"] = dict(self.changed_components)
        if self.removed_components:
            out["removed"] = list(self.removed_components)
        reruns = {e.name: e.reason for e in self.entries if e.action is PlanAction.RERUN}
        if reruns:
            out["reruns"] = reruns
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "pipeline_fingerprint": self.pipeline_fingerprint,
            "headline": self.headline(),
            **self.summary(),
            "entries": [
                {"name": e.name, "action": e.action.value, "reason": e.reason, "recorded_ms": e.recorded_ms}
                for e in self.entries
            ],
            "notes": list(self.notes),
        }


def describe_changes(state: CheckpointState, config: PipelineConfig) -> tuple[dict[str, str], list[str]]:
    """Say which components changed since ``state`` was written, and which were removed.

    Returns ``({name: how}, removed)`` where ``how`` is e.g. ``config.sql changed``, ``new component`` or
    ``upstream 'clean' changed``.
    """
    current = compute_component_fingerprints(config)
    stored = state.component_fingerprints
    changed: dict[str, str] = {}
    by_name = {c.name: c for c in config.components}
    for name in config.get_execution_order():
        if stored.get(name) == current[name]:
            continue
        if name not in stored:
            changed[name] = "new component" if stored else "not comparable (older checkpoint)"
            continue
        own = describe_field_changes(state.field_digests.get(name), compute_field_digests(by_name[name]))
        if own != "unchanged":
            changed[name] = own
        else:
            upstream = [d for d in by_name[name].depends_on if d in changed]
            changed[name] = f"upstream '{upstream[0]}' changed" if upstream else "changed"
    removed = [n for n in stored if n not in current]
    return changed, removed


Verifier = Callable[[str], str | None]


def plan_resume(
    state: CheckpointState | None,
    config: PipelineConfig,
    *,
    on_config_change: OnConfigChange | str = OnConfigChange.RESTART,
    run_id: str | None = None,
    verify: Verifier | None = None,
) -> ResumePlan:
    """Decide, per component, what a new attempt does.

    Args:
        state: the stored checkpoint (``None`` when there is none).
        config: the pipeline as it is now.
        on_config_change: ``restart``, ``partial`` or ``fail`` (see the module docstring).
        run_id: used in messages when ``state`` is ``None``.
        verify: called for each component that would be skipped; returning a reason (e.g. ``output
            view 'clean' is missing``) turns the skip into a rerun.

    Raises:
        PipelineConfigChangedError: the pipeline changed and ``on_config_change`` is ``fail``.
    """
    mode = OnConfigChange(on_config_change)
    fingerprint = compute_pipeline_fingerprint(config)
    by_name = {c.name: c for c in config.components}
    order = [by_name[name] for name in config.get_execution_order()]
    rid = state.run_id if state else (run_id or "?")
    if state is None:
        fresh = [
            ComponentPlan(c.name, PlanAction.RUN if c.enabled else PlanAction.DISABLED, "no checkpoint yet")
            for c in order
        ]
        return ResumePlan(rid, config.name, fingerprint, fresh, mode=mode)

    changed_fp = state.pipeline_fingerprint != fingerprint
    changed: dict[str, str] = {}
    removed: list[str] = []
    notes: list[str] = []
    if changed_fp:
        changed, removed = describe_changes(state, config)
        if state.pipeline_fingerprint.startswith("seed:"):
            notes.append("checkpoint written by pyspark-pipeline-framework: its fingerprint is not comparable")
        if mode is OnConfigChange.FAIL:
            raise PipelineConfigChangedError(state.run_id, config.name, list(changed), changed)
    current_fps = compute_component_fingerprints(config)
    completed = state.completed_set()
    last = state.current_attempt
    # Why a component that was done is done no more (a rerun asked for, a damaged saved view...).
    invalidated = {
        name: str(event.get("reason") or "marked not done")
        for attempt in state.attempts
        for event in attempt.events
        if event.get("event") == "invalidated"
        for name in event.get("names") or []
    }
    entries: list[ComponentPlan] = []
    reruns: dict[str, str] = {}
    for comp in order:
        name = comp.name
        if not comp.enabled:
            entries.append(ComponentPlan(name, PlanAction.DISABLED, "disabled"))
            continue
        record = state.components.get(name)
        done_in = f"attempt {record.attempt}" if record and record.attempt else "an earlier attempt"
        if name in completed:
            why: str | None = None
            if changed_fp and mode is OnConfigChange.RESTART:
                why = "pipeline changed: starting from the beginning"
            elif changed_fp and (record is None or record.fingerprint != current_fps[name]):
                why = changed.get(name, "changed")
            elif verify is not None:
                why = verify(name)
            if why is None:
                entries.append(
                    ComponentPlan(name, PlanAction.SKIP, f"completed in {done_in}", record.duration_ms if record else 0)
                )
            else:
                reruns[name] = why
                entries.append(ComponentPlan(name, PlanAction.RERUN, why))
            continue
        if last is not None and last.failed == name:
            reason = f"failed in attempt {last.attempt}" + (
                f": {last.error_type}: {last.error_message}" if last.error_type else ""
            )
        elif name in changed and changed[name] == "new component":
            reason = "new component"
        else:
            reason = invalidated.get(name, "not completed yet")
        entries.append(ComponentPlan(name, PlanAction.RUN, reason))
    if removed:
        notes.append(f"removed since the checkpoint: {', '.join(removed)}")
    return ResumePlan(
        run_id=state.run_id,
        pipeline_name=config.name,
        pipeline_fingerprint=fingerprint,
        entries=entries,
        previous_attempt=state.attempt,
        previous_status=state.status,
        config_changed=changed_fp,
        changed_components=changed,
        removed_components=removed,
        mode=mode,
        notes=notes,
    )


def load_checkpoint_for_resume(
    store: CheckpointStore,
    run_id: str,
    config: PipelineConfig,
    *,
    strict: bool = False,
    partial: bool = False,
) -> set[str]:
    """Return the names of the components a resumed run may skip.

    No checkpoint gives an empty set. A changed pipeline gives an empty set and a warning that says what
    changed (the run starts from the beginning); with ``partial=True`` the unchanged completed components
    are kept instead.

    Raises:
        CheckpointNotFoundError: ``strict`` and there is no checkpoint.
        PipelineConfigChangedError: ``strict`` and the pipeline changed.
        CheckpointCorruptError: the stored checkpoint is damaged.
    """
    state = store.load(run_id, config.name)
    if state is None:
        if strict:
            raise CheckpointNotFoundError(run_id, config.name)
        return set()
    mode = OnConfigChange.FAIL if strict else OnConfigChange.PARTIAL if partial else OnConfigChange.RESTART
    plan = plan_resume(state, config, on_config_change=mode)
    if plan.config_changed:
        what = "; ".join(f"{k}: {v}" for k, v in plan.changed_components.items()) or "components removed"
        action = (
            f"keeping {len(plan.skip)} unchanged completed components"
            if mode is OnConfigChange.PARTIAL
            else "starting from the beginning"
        )
        log.warning(
            "Pipeline %r changed since the checkpoint of run %r was saved (%s); %s",
            config.name,
            run_id,
            what,
            action,
        )
    return plan.skip
