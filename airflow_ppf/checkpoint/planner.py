"""The resume planner: the one place that decides what a new attempt skips, runs and reruns, and why.

Every reason a component is skipped or run is decided here, and nowhere else:

* there is no checkpoint yet, or the attempt does not resume (:func:`fresh_start_reason`: resume turned
  off, the first try of an Airflow task instance, a task a user cleared);
* the pipeline changed since the checkpoint was written (``on_config_change``: ``restart`` starts from the
  beginning, ``partial`` keeps completed components whose own fingerprint, which includes everything
  upstream, is unchanged, ``fail`` raises :class:`PipelineConfigChangedError`);
* a person marked components not done (the checkpoint view's *reset* and *rerun from*), or a damaged
  saved view was found while reading it;
* a person resumed the task from the checkpoint view after its last retry failed (:func:`resume_request`):
  the clear that came with it resumes instead of starting over;
* a saved view a component about to run reads is missing, damaged, was never saved, or was deleted when
  the pipeline completed (:func:`settle_saved_views`): its producer reruns, transitively;
* a saved view found damaged only when a component read it (bit rot inside the data, which the checks
  before a resume cannot see): :func:`plan_recovery` says what the attempt runs again, within itself, to
  remake it.

:func:`plan_resume` makes the plan from a checkpoint and the config; :func:`settle_saved_views` turns skips
into reruns where a needed saved view is unusable; :func:`predict_next_attempt` says what the next attempt
will do from the checkpoint alone (the checkpoint view, ``ppf checkpoints show``). The plan an attempt
follows is recorded with the attempt (:meth:`ResumePlan.summary`); logs, the CLI, the task's XCom and the
checkpoint view show that record. :func:`load_checkpoint_for_resume` is the seed-compatible shortcut that
returns just the set of names to skip.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_ppf.checkpoint.dataflow import ViewIO, views_to_restore
from airflow_ppf.checkpoint.errors import CheckpointNotFoundError, PipelineConfigChangedError
from airflow_ppf.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
    describe_field_changes,
    disabled_in,
)
from airflow_ppf.checkpoint.state import EDIT_EVENTS, RESUME_EVENT, CheckpointState, recorded_graph
from airflow_ppf.checkpoint.stores import CheckpointStore
from airflow_ppf.config.graph import descendants, topological_order
from airflow_ppf.config.models import PipelineConfig
from airflow_ppf.runner.report import format_seconds, format_table
from airflow_ppf.spark.fs import is_local_uri

__all__ = [
    "ComponentPlan",
    "OnConfigChange",
    "PlanAction",
    "RecoveryPlan",
    "ResumePlan",
    "ResumePolicy",
    "SavedViewCheck",
    "describe_changes",
    "fresh_start_reason",
    "load_checkpoint_for_resume",
    "missing_on_this_worker",
    "plan_for_skip",
    "plan_recovery",
    "plan_resume",
    "predict_next_attempt",
    "resume_request",
    "saved_view_problem",
    "settle_saved_views",
]

log = logging.getLogger("airflow_ppf.checkpoint")


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
class ResumePolicy:
    """How a new attempt treats the checkpoint it finds.

    Args:
        resume: skip what earlier attempts finished (``False``: run everything).
        on_config_change: ``restart``, ``partial`` or ``fail`` when the pipeline changed.
        keep_state_on_clear: resume even when the attempt count shows a user cleared the task (Airflow).
        forget_on_fresh_start: when an attempt does not resume, delete the checkpoint and its saved views
            (Airflow's semantics of a clear) instead of keeping the history and rerunning everything.
        no_resume_reason: how to say that resuming is turned off (``resume=False``, ``no --resume``).
    """

    resume: bool = True
    on_config_change: OnConfigChange = OnConfigChange.RESTART
    keep_state_on_clear: bool = False
    forget_on_fresh_start: bool = True
    no_resume_reason: str = "resume=False"

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_config_change", OnConfigChange(self.on_config_change))


@dataclass(frozen=True)
class ComponentPlan:
    """The decision for one component; ``recorded_ms`` is its recorded run time when skipped."""

    name: str
    action: PlanAction
    reason: str
    recorded_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "action": self.action.value, "reason": self.reason}
        if self.action is PlanAction.SKIP:
            out["recorded_ms"] = self.recorded_ms
        return out


@dataclass(frozen=True)
class ResumePlan:
    """Per-component decisions of a new attempt, in execution order.

    ``fresh_start`` says why the attempt starts from the beginning although a checkpoint exists;
    ``restore_ms`` is what checking and restoring saved views cost in this attempt (set once they are
    restored): the net saving is the recorded time of the skipped components minus that cost.
    ``resumed_by`` names the person who resumed the task from the checkpoint view (:func:`resume_request`).
    """

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
    fresh_start: str | None = None
    restore_ms: int | None = None
    restored_views: list[str] = field(default_factory=list)
    resumed_by: str | None = None

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
    def reruns(self) -> dict[str, str]:
        """``{name: why}`` of the components that finished earlier and run again."""
        return {e.name: e.reason for e in self.entries if e.action is PlanAction.RERUN}

    @property
    def time_saved_gross_ms(self) -> int:
        """Recorded run time of the skipped components."""
        return sum(e.recorded_ms for e in self.entries if e.action is PlanAction.SKIP)

    @property
    def time_saved_ms(self) -> int:
        """What resuming saves: the skipped components' recorded time minus the restore cost of this attempt."""
        return self.time_saved_gross_ms - (self.restore_ms or 0)

    @property
    def is_resume(self) -> bool:
        """Whether anything is skipped."""
        return bool(self.skip)

    def get(self, name: str) -> ComponentPlan | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    def with_reruns(self, reruns: Mapping[str, str]) -> ResumePlan:
        """This plan with the named skips turned into reruns (a needed saved view is unusable)."""
        if not reruns:
            return self
        entries = [
            ComponentPlan(e.name, PlanAction.RERUN, reruns[e.name])
            if e.name in reruns and e.action is PlanAction.SKIP
            else e
            for e in self.entries
        ]
        return dataclasses.replace(self, entries=entries)

    def with_restore(self, seconds: float, views: Sequence[str]) -> ResumePlan:
        """This plan with the measured cost of checking and restoring its saved views."""
        return dataclasses.replace(self, restore_ms=round(seconds * 1000), restored_views=list(views))

    def savings(self) -> str:
        """``saves about 3.9 s`` (net; the gross figure and the restore cost follow when they differ)."""
        net = format_seconds(max(self.time_saved_ms, 0) / 1000)
        if not self.restore_ms:
            return f"saves about {net}"
        gross, restore = format_seconds(self.time_saved_gross_ms / 1000), format_seconds(self.restore_ms / 1000)
        if self.time_saved_ms < 0:
            return f"saves nothing: restoring saved views took {restore}, more than the {gross} of skipped work"
        return f"saves about {net}: {gross} of skipped work minus {restore} restoring saved views"

    def describe_changes(self, limit: int = 3) -> str:
        """``read: config.sql changed; clean: upstream 'read' changed`` (at most ``limit``, then a count)."""
        parts = [f"{name}: {how}" for name, how in self.changed_components.items()]
        more = len(parts) - limit
        text = "; ".join(parts[:limit]) + (f"; and {more} more" if more > 0 else "")
        if self.removed_components:
            text += ("; " if text else "") + f"removed: {', '.join(self.removed_components)}"
        return text

    def headline(self) -> str:
        """One sentence: what this attempt does."""
        active = [e for e in self.entries if e.action is not PlanAction.DISABLED]
        if not self.previous_attempt:
            return f"Run {self.run_id!r}: no checkpoint, running all {len(active)} components"
        before = f"attempt {self.previous_attempt}" + (f" ({self.previous_status})" if self.previous_status else "")
        resumed = f", resumed by {self.resumed_by} from the Checkpoint tab" if self.resumed_by else ""
        if self.fresh_start:
            return f"Run {self.run_id!r}: checkpoint of {before} found; starting from the beginning: {self.fresh_start}"
        if not self.skip:
            why = ""
            if self.config_changed:
                what = self.describe_changes()
                why = f" because the pipeline changed ({self.mode.value})" + (f": {what}" if what else "")
            return f"Run {self.run_id!r}: checkpoint of {before} found{resumed}; starting from the beginning{why}"
        return (
            f"Run {self.run_id!r}: resuming after {before}{resumed}: skipping {len(self.skip)} of {len(active)} "
            f"components ({self.savings()})"
        )

    def format_table(self, *, headline: bool = True) -> str:
        """Render the plan for logs and the CLI (headline first unless ``headline=False``)."""
        rows = [
            (
                i,
                e.name,
                e.action.value,
                e.reason + (f" ({format_seconds(e.recorded_ms / 1000)})" if e.action is PlanAction.SKIP else ""),
            )
            for i, e in enumerate(self.entries, start=1)
        ]
        parts = [self.headline()] if headline else []
        parts.append(format_table(["#", "component", "action", "reason"], rows))
        parts.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(parts)

    def summary(self) -> dict[str, Any]:
        """The JSON record of the plan: kept in the attempt history, shown by the UI and the task's XCom."""
        out: dict[str, Any] = {
            "headline": self.headline(),
            "previous_attempt": self.previous_attempt,
            "skipped": len(self.skip),
            "to_run": len(self.to_run),
            "time_saved_ms": self.time_saved_ms,
            "time_saved_gross_ms": self.time_saved_gross_ms,
            "config_changed": self.config_changed,
            "mode": self.mode.value,
            "entries": [e.to_dict() for e in self.entries],
        }
        if self.restore_ms is not None:
            out["restore_ms"] = self.restore_ms
            out["restored_views"] = list(self.restored_views)
        if self.fresh_start:
            out["fresh_start"] = self.fresh_start
        if self.resumed_by:
            out["resumed_by"] = self.resumed_by
        if self.changed_components:
            out["changed"] = dict(self.changed_components)
        if self.removed_components:
            out["removed"] = list(self.removed_components)
        if self.reruns:
            out["reruns"] = self.reruns
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "pipeline_fingerprint": self.pipeline_fingerprint,
            **self.summary(),
        }


# -- deciding --------------------------------------------------------------------------------------------


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


def fresh_start_reason(
    state: CheckpointState | None,
    policy: ResumePolicy,
    *,
    attempt: int | None = None,
    max_tries: int | None = None,
) -> str | None:
    """Say why a new attempt must not resume from ``state`` (``None`` when it resumes).

    Args:
        state: the stored checkpoint.
        policy: how the caller resumes.
        attempt: this attempt's number when the caller knows it (Airflow's try number): a first attempt
            that finds a checkpoint starts from the beginning.
        max_tries: Airflow's ``max_tries`` of the task instance. Airflow keeps a task's state store across
            a clear and raises ``max_tries`` then (a retry does not): a change since the last attempt is a
            clear, which starts from the beginning unless ``policy.keep_state_on_clear``, unless a person
            resumed the task from the checkpoint view with exactly this clear (:func:`resume_request`), or
            unless a person edited the checkpoint there (reset, rerun from) and cleared the task to apply
            the edit.
    """
    if state is None:
        return None
    if not policy.resume:
        return policy.no_resume_reason
    if attempt is not None and attempt <= 1:
        return "first try of this task instance"
    last = state.current_attempt
    previous_max = last.meta.get("max_tries") if last is not None else None
    if max_tries is None or policy.keep_state_on_clear or previous_max is None or previous_max == max_tries:
        return None
    if resume_request(state, max_tries) is not None:
        return None
    edits = (e.get("event") for e in (last.events if last is not None else []))
    if any(event in EDIT_EVENTS and event != RESUME_EVENT for event in edits):
        return None
    return "the task was cleared (max_tries changed); keep_state_on_clear=True would resume"


def resume_request(state: CheckpointState | None, max_tries: int | None = None) -> dict[str, Any] | None:
    """The "Resume" a person asked for in the checkpoint view that the next attempt answers, if any.

    That is the latest attempt's last ``resume`` event (:func:`airflow_ppf.checkpoint.edits.resume_checkpoint`).
    The event keeps Airflow's ``max_tries`` as the clear that came with it set it: given the ``max_tries`` of
    the new attempt, only that clear counts, and any later clear of the task starts over like a plain clear.
    Without ``max_tries`` (a prediction, before the attempt starts) the latest event counts.
    """
    last = state.current_attempt if state is not None else None
    for event in reversed(last.events if last is not None else []):
        if event.get("event") == RESUME_EVENT:
            return event if max_tries is None or event.get("max_tries") == max_tries else None
    return None


def _invalidated(state: CheckpointState) -> dict[str, str]:
    """Why a component that was done is done no more (a rerun asked for, a damaged saved view...)."""
    return {
        name: str(event.get("reason") or "marked not done")
        for attempt in state.attempts
        for event in attempt.events
        if event.get("event") == "invalidated"
        for name in event.get("names") or []
    }


def _entries(
    state: CheckpointState,
    order: Sequence[tuple[str, bool]],
    *,
    stale: Mapping[str, str],
    fresh: str | None,
) -> list[ComponentPlan]:
    """One entry per component of ``order`` (``(name, enabled)``); ``stale`` names completed components
    that must rerun (and why); ``fresh`` reruns everything that was done."""
    completed = state.completed_set()
    last = state.current_attempt
    invalidated = _invalidated(state)
    entries: list[ComponentPlan] = []
    for name, enabled in order:
        record = state.components.get(name)
        if not enabled:
            entries.append(ComponentPlan(name, PlanAction.DISABLED, "disabled"))
        elif fresh is not None:
            was_done = name in completed or name in invalidated
            entries.append(ComponentPlan(name, PlanAction.RERUN if was_done else PlanAction.RUN, fresh))
        elif name in completed and name in stale:
            entries.append(ComponentPlan(name, PlanAction.RERUN, stale[name]))
        elif name in completed:
            done_in = f"attempt {record.attempt}" if record and record.attempt else "an earlier attempt"
            recorded = record.duration_ms if record else 0
            entries.append(ComponentPlan(name, PlanAction.SKIP, f"completed in {done_in}", recorded))
        elif last is not None and last.failed == name:
            error = f": {last.error_type}: {last.error_message}" if last.error_type else ""
            entries.append(ComponentPlan(name, PlanAction.RUN, f"failed in attempt {last.attempt}{error}"))
        elif name in invalidated:
            # Done before, then marked not done (by a person, or because its saved view was damaged).
            entries.append(ComponentPlan(name, PlanAction.RERUN, invalidated[name]))
        else:
            entries.append(ComponentPlan(name, PlanAction.RUN, "not completed yet"))
    return entries


def plan_resume(
    state: CheckpointState | None,
    config: PipelineConfig,
    *,
    on_config_change: OnConfigChange | str = OnConfigChange.RESTART,
    run_id: str | None = None,
    fresh_start: str | None = None,
    max_tries: int | None = None,
) -> ResumePlan:
    """Decide, per component, what a new attempt does.

    Args:
        state: the stored checkpoint (``None`` when there is none).
        config: the pipeline as it is now.
        on_config_change: ``restart``, ``partial`` or ``fail`` (see the module docstring).
        run_id: used in messages when ``state`` is ``None``.
        fresh_start: why the attempt starts from the beginning although ``state`` exists (see
            :func:`fresh_start_reason`): every completed component reruns, with this reason.
        max_tries: Airflow's ``max_tries`` of the new attempt: when a person resumed the task from the
            checkpoint view with the clear that set it, the plan says who (:func:`resume_request`).

    Raises:
        PipelineConfigChangedError: the pipeline changed and ``on_config_change`` is ``fail``.
    """
    mode = OnConfigChange(on_config_change)
    fingerprint = compute_pipeline_fingerprint(config)
    by_name = {c.name: c for c in config.components}
    order = [(name, by_name[name].enabled) for name in config.get_execution_order()]
    if state is None:
        fresh = [
            ComponentPlan(name, PlanAction.RUN if enabled else PlanAction.DISABLED, "no checkpoint yet")
            for name, enabled in order
        ]
        return ResumePlan(run_id or "?", config.name, fingerprint, fresh, mode=mode)

    changed_fp = state.pipeline_fingerprint != fingerprint and fresh_start is None
    changed: dict[str, str] = {}
    removed: list[str] = []
    notes: list[str] = []
    stale: dict[str, str] = {}
    if changed_fp:
        changed, removed = describe_changes(state, config)
        if state.pipeline_fingerprint.startswith("seed:"):
            notes.append("checkpoint written by pyspark-pipeline-framework: its fingerprint is not comparable")
        if mode is OnConfigChange.FAIL:
            raise PipelineConfigChangedError(state.run_id, config.name, list(changed), changed)
        current_fps = compute_component_fingerprints(config)
        for name in state.completed_components:
            record = state.components.get(name)
            if mode is OnConfigChange.RESTART:
                own = f" ({changed[name]})" if name in changed else ""
                stale[name] = f"pipeline changed{own}: starting from the beginning"
            elif record is None or record.fingerprint != current_fps.get(name):
                stale[name] = changed.get(name, "changed")
    if removed:
        notes.append(f"removed since the checkpoint: {', '.join(removed)}")
    entries = _entries(state, order, stale=stale, fresh=fresh_start)
    for i, entry in enumerate(entries):
        if entry.action is PlanAction.RUN and changed.get(entry.name) == "new component":
            entries[i] = ComponentPlan(entry.name, PlanAction.RUN, "new component")
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
        fresh_start=fresh_start,
        resumed_by=_resumed_by(state, max_tries) if fresh_start is None and max_tries is not None else None,
    )


def _resumed_by(state: CheckpointState, max_tries: int | None) -> str | None:
    request = resume_request(state, max_tries)
    return str(request.get("by") or "?") if request is not None else None


def plan_for_skip(
    state: CheckpointState | None,
    config: PipelineConfig,
    skip: Collection[str],
    reasons: Mapping[str, str] | None = None,
    *,
    run_id: str | None = None,
    on_config_change: OnConfigChange | str = OnConfigChange.RESTART,
) -> ResumePlan:
    """The plan of a run told which components to skip (``runner.run(completed_components=...)``).

    The given skips win; a component the checkpoint has as done but that is not among them reruns.
    """
    mode = OnConfigChange(on_config_change)
    base = plan_resume(
        state,
        config,
        on_config_change=OnConfigChange.RESTART if mode is OnConfigChange.FAIL else mode,
        run_id=run_id,
    )
    wanted, why = set(skip), dict(reasons or {})
    entries: list[ComponentPlan] = []
    for entry in base.entries:
        if entry.action is PlanAction.DISABLED:
            entries.append(entry)
        elif entry.name in wanted:
            reason = why.get(entry.name) or (entry.reason if entry.action is PlanAction.SKIP else "given as completed")
            entries.append(ComponentPlan(entry.name, PlanAction.SKIP, reason, entry.recorded_ms))
        elif entry.action is PlanAction.SKIP:
            entries.append(ComponentPlan(entry.name, PlanAction.RERUN, "not among the components to skip"))
        else:
            entries.append(entry)
    return dataclasses.replace(base, entries=entries)


# -- saved views -----------------------------------------------------------------------------------------

#: ``check(producer, view, reader, record) -> problem``: whether the saved view ``view`` of ``producer``
#: (its output ``record`` in the checkpoint, ``None`` when none is recorded), which ``reader`` is about to
#: read, can be restored; ``None`` when it can.
SavedViewCheck = Callable[[str, str, str, "dict[str, Any] | None"], "str | None"]


def saved_view_problem(
    state: CheckpointState, producer: str, view: str, reader: str, record: dict[str, Any] | None
) -> str | None:
    """What the checkpoint alone says is wrong with a saved view (``None``: as far as it knows, usable).

    Not saved (why, as recorded), no data location, or deleted when the pipeline completed after it was
    saved. Whether the files are really there and intact is for the saved views' own check.
    """
    if record is None or not record.get("path"):
        why = (record or {}).get("not_saved") or (None if state.data_location else "no data location")
        return f"its view '{view}' (read by {reader}) was not saved" + (f" ({why})" if why else "")
    deleted_in = _saved_views_deleted_after(state, producer)
    if deleted_in is not None:
        return (
            f"its saved view '{view}' (read by {reader}) was deleted when the pipeline completed in attempt "
            f"{deleted_in} (keep_saved_views=True keeps them)"
        )
    return None


def missing_on_this_worker(
    state: CheckpointState, producer: str, view: str, record: Mapping[str, Any], host: str | None
) -> str | None:
    """Why a saved view on a worker-local path is missing here, when another worker saved it; else ``None``.

    A ``file:`` or plain path is on the disk of the machine that wrote it: a retry that lands on another
    worker does not see it (unless the path is a shared mount). The attempts record their ``hostname``.
    """
    path = str(record.get("path") or "")
    saved = state.components.get(producer)
    if not path or saved is None or not host or not is_local_uri(path):
        return None
    there = next((a.meta.get("hostname") for a in state.attempts if a.attempt == saved.attempt), None)
    if not there or there == host:
        return None
    return (
        f"saved copy missing on this worker: attempt {saved.attempt} saved view '{view}' on worker '{there}' at "
        f"{path}, a path on that worker's own disk, which this worker ('{host}') does not see"
    )


def _saved_views_deleted_after(state: CheckpointState, producer: str) -> int | None:
    """The attempt that deleted the run's saved views on completion after ``producer`` saved its own, if any."""
    record = state.components.get(producer)
    if record is None:
        return None
    for attempt in state.attempts:
        if attempt.attempt >= record.attempt and any(e.get("event") == "deleted_saved_views" for e in attempt.events):
            return attempt.attempt
    return None


def recorded_io(state: CheckpointState, name: str) -> ViewIO:
    """The views ``name`` read and produced as the checkpoint recorded them (unknown where it did not)."""
    known = state.views.get(name) or {}
    inputs, outputs = known.get("inputs"), known.get("outputs")
    record = state.components.get(name)
    if outputs is None and record is not None:
        outputs = [o["view"] for o in record.outputs if o.get("view")]
    return ViewIO(
        None if inputs is None else tuple(inputs),
        None if outputs is None else tuple(outputs),
    )


def settle_saved_views(
    plan: ResumePlan,
    state: CheckpointState,
    graph: Mapping[str, Sequence[str]],
    io: dict[str, ViewIO],
    check: SavedViewCheck,
    *,
    io_when_run: Callable[[str], ViewIO] | None = None,
) -> tuple[ResumePlan, list[dict[str, Any]]]:
    """Turn skips into reruns where a saved view that a component about to run reads cannot be restored.

    Each needed saved view (found with :func:`~airflow_ppf.checkpoint.dataflow.views_to_restore`) is
    checked once with ``check``; an unusable one makes its producer rerun, which may need more views, and
    so on upstream. ``io_when_run(name)`` refreshes what a component that now reruns reads (a skipped
    component's inputs need not be known).

    Returns:
        The settled plan and the output records of the saved views to restore.
    """
    reruns, restorable = _settle(set(plan.skip), set(plan.to_run), state, graph, io, check, io_when_run)
    return plan.with_reruns(reruns), restorable


def _settle(
    skip: set[str],
    to_run: set[str],
    state: CheckpointState,
    graph: Mapping[str, Sequence[str]],
    io: dict[str, ViewIO],
    check: SavedViewCheck,
    io_when_run: Callable[[str], ViewIO] | None,
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The core of :func:`settle_saved_views`: ``({skipped component that must run: why}, records to restore)``.

    ``skip`` and ``to_run`` are updated in place.
    """
    reruns: dict[str, str] = {}
    checked: dict[tuple[str, str], str | None] = {}
    restorable: list[dict[str, Any]] = []
    while True:  # each round may turn skips into reruns, which may need more views
        needs = views_to_restore(graph, to_run, skip, io)
        restorable = []
        broken: dict[str, str] = {}
        for (producer, view), readers in needs.items():
            record = state.components.get(producer)
            output = next((o for o in (record.outputs if record else []) if o.get("view") == view), None)
            if (producer, view) not in checked:
                checked[producer, view] = check(producer, view, readers[0], output)
            problem = checked[producer, view]
            if problem is not None:
                broken.setdefault(producer, problem)
            elif output is not None and output.get("path"):
                restorable.append(output)
        if not broken:
            break
        for producer, problem in broken.items():
            skip.discard(producer)
            to_run.add(producer)
            reruns[producer] = problem
            if io_when_run is not None:
                io[producer] = io_when_run(producer)
    return reruns, restorable


@dataclass(frozen=True)
class RecoveryPlan:
    """What an attempt runs again, within itself, after a component failed reading a damaged saved view.

    ``reruns`` (``{name: why}``, in execution order) ends with the component that failed; ``restore`` are
    the output records of saved views that now have to be restored, as checked.
    """

    reruns: dict[str, str]
    restore: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        """The JSON record kept with the attempt's ``recovered`` event."""
        return {"reruns": dict(self.reruns), "restored_views": [r.get("view") for r in self.restore]}


def plan_recovery(
    state: CheckpointState,
    graph: Mapping[str, Sequence[str]],
    io: dict[str, ViewIO],
    *,
    producer: str,
    view: str,
    reader: str,
    problem: str,
    done: Collection[str],
    ran: Collection[str],
    check: SavedViewCheck,
    io_when_run: Callable[[str], ViewIO] | None = None,
) -> RecoveryPlan:
    """Decide what to run again after ``reader`` failed reading the damaged saved view ``view`` of ``producer``.

    Runs again, in execution order: the producer (its saved view is remade); every component that ran in
    this attempt and read the damaged view, directly or through views made from it that are not saved
    views themselves (their temp views still read the damaged files); and the reader. What a component
    that now runs again reads from components skipped in this attempt comes from their saved views, each
    checked with ``check``; an unusable one makes its producer run again too, and so on upstream (as
    :func:`settle_saved_views` decides for a resume).

    Args:
        state: the checkpoint as this attempt wrote it so far.
        graph: component → what it depends on.
        io: the views each component reads and writes (updated for the components that run again).
        producer, view: the damaged saved view.
        reader: the component that failed reading it.
        problem: what is wrong with it (``saved view 'totals' at … is damaged: checksum mismatch in …``).
        done: the components done in this attempt so far (skipped as done, or finished).
        ran: those of them that ran (finished) in this attempt.
        check: whether a saved view can be restored (see :data:`SavedViewCheck`).
        io_when_run: refreshes what a component that now runs again reads.
    """
    order = topological_order(graph)
    downstream = descendants(graph, [producer])
    reruns: dict[str, str] = {producer: f"{problem}: {reader} could not read it"}
    tainted = {view.lower()}  # views whose temp view may still read the damaged files
    for name in order:
        if name not in downstream or name not in ran or name == reader:
            continue
        known = recorded_io(state, name)
        inputs = known.inputs if known.inputs is not None else io[name].inputs if name in io else None
        if inputs is not None and not any(v.lower() in tainted for v in inputs):
            continue
        reruns[name] = f"it read the damaged saved view '{view}' of {producer}"
        record = state.components.get(name)
        saved = {str(o["view"]).lower() for o in (record.outputs if record else []) if o.get("path")}
        tainted.update(v.lower() for v in known.outputs or () if v.lower() not in saved)
    to_run = {*reruns, reader}
    skip = set(done) - set(ran) - to_run
    for name in to_run:
        if io_when_run is not None and name in io:
            io[name] = io_when_run(name)
    upstream, restore = _settle(skip, to_run, state, graph, io, check, io_when_run)
    reruns.update({n: why for n, why in upstream.items() if n not in reruns})
    reruns[reader] = f"it could not read the damaged saved view '{view}' of {producer}; {producer} is remade first"
    position = {name: i for i, name in enumerate(order)}
    ordered = dict(sorted(reruns.items(), key=lambda item: (item[0] == reader, position.get(item[0], 0))))
    return RecoveryPlan(ordered, restore)


def predict_next_attempt(
    state: CheckpointState,
    config: PipelineConfig | None = None,
    *,
    on_config_change: OnConfigChange | str = OnConfigChange.RESTART,
) -> ResumePlan:
    """The plan the next attempt will follow, from the checkpoint alone (and ``config`` when given).

    Assumes the pipeline is unchanged (when ``config`` is omitted) and the saved views are as recorded:
    an attempt that then finds a saved view damaged reruns its producer and records why. A pending
    "Resume" from the checkpoint view (:func:`resume_request`) is named in the plan.
    """
    if config is not None:
        plan = plan_resume(state, config, on_config_change=on_config_change)
        graph: Mapping[str, Sequence[str]] = config.dependency_graph()
    else:
        graph, _ = recorded_graph(state)
        try:
            names = topological_order(graph)
        except ValueError:  # a damaged graph must not break a viewer
            names = list(graph)
        order = [(name, not disabled_in(state.field_digests.get(name))) for name in names]
        plan = ResumePlan(
            run_id=state.run_id,
            pipeline_name=state.pipeline_name,
            pipeline_fingerprint=state.pipeline_fingerprint,
            entries=_entries(state, order, stale={}, fresh=None),
            previous_attempt=state.attempt,
            previous_status=state.status,
        )
    plan = dataclasses.replace(plan, resumed_by=_resumed_by(state, None))
    io = {name: recorded_io(state, name) for name in graph}
    settled, _ = settle_saved_views(
        plan, state, graph, io, lambda p, v, r, rec: saved_view_problem(state, p, v, r, rec)
    )
    return settled


# -- the seed's shortcut ---------------------------------------------------------------------------------


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
        what = plan.describe_changes(limit=len(plan.changed_components)) or "components removed"
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
