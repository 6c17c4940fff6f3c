"""CheckpointHooks: record a run's progress in a :class:`CheckpointStore`, one durable write per step.

Besides *which* components finished, a resume in a new process needs *what they produced*: the temp
views that components still to run read. With a data location, CheckpointHooks saves those views when
their producer completes (before the checkpoint claims it done), and restores them before a resumed run
starts; a view that is missing or damaged makes its producer run again instead of crashing the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_ppf.components.base import Component, DataFlow
from airflow_ppf.config.models import MaterializePolicy
from airflow_ppf.runner.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
)
from airflow_ppf.runner.checkpoint.resume import OnConfigChange, ResumePlan
from airflow_ppf.runner.checkpoint.saved_views import ViewMaterializer, ViewNotSavedError, damaged_saved_view
from airflow_ppf.runner.checkpoint.state import CheckpointState, CheckpointStatus, new_writer_id
from airflow_ppf.runner.checkpoint.stores import CheckpointStore
from airflow_ppf.runner.dataflow import ViewIO, needed_downstream, views_to_restore
from airflow_ppf.runner.hooks import NoOpHooks
from airflow_ppf.runner.results import PipelineResultStatus
from airflow_ppf.runner.simple_runner import ComponentRunListener

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.results import PipelineResult
    from airflow_ppf.runner.simple_runner import SimplePipelineRunner

__all__ = ["CheckpointHooks"]

log = logging.getLogger(__name__)


class _Default:
    """Marker type of :data:`DEFAULT`."""


#: "Use the store's default data location."
DEFAULT = _Default()

_FINAL_STATUS = {
    PipelineResultStatus.SUCCESS: CheckpointStatus.COMPLETED,
    PipelineResultStatus.INTERRUPTED: CheckpointStatus.INTERRUPTED,
    PipelineResultStatus.FAILURE: CheckpointStatus.FAILED,
    PipelineResultStatus.PARTIAL_SUCCESS: CheckpointStatus.FAILED,
}


class CheckpointHooks(NoOpHooks):
    """Persist which components finished, so that a later attempt can skip them.

    A *critical* hook: when a write fails, the run fails (it is never reported successful with its
    progress unrecorded). On a resumed run it merges into the stored checkpoint: earlier progress and the
    attempt history are kept, skipped components stay recorded, and a new attempt is appended.

    Args:
        store: where checkpoints live.
        run_id: identifies the run across attempts (Airflow: dag, run, task and map index).
        pipeline_fingerprint: from :func:`compute_pipeline_fingerprint`; computed from the config when
            omitted.
        attempt: this attempt's number (Airflow's try number); default: the stored attempt plus one.
        on_config_change: when the stored checkpoint is of a different pipeline fingerprint, ``restart``
            forgets all progress, ``partial`` forgets only components whose fingerprint changed.
        resume_plan: the plan this attempt follows; its summary is kept in the attempt history.
        data_location: where views are saved (any Spark-writable URI). Default: the store's own data
            folder (``<base_dir>/_data`` for :class:`LocalCheckpointStore`); ``None`` there disables saving.
        keep_saved_views: keep saved views after the pipeline completes (default: delete them). Saved
            views are read in place of the views they were saved from, so after the deletion the temp
            views a run leaves in its session cannot be read any more: keep them to use those views
            after the run (in a notebook, a test).
        attempt_meta: facts kept with this attempt in the history (e.g. Airflow's ``max_tries``).

    A component that runs again although it was recorded as done (a rerun) is marked not done *before*
    it starts, so a crash during the rerun can never leave it looking done.
    """

    critical = True

    def __init__(
        self,
        store: CheckpointStore,
        run_id: str,
        pipeline_fingerprint: str | None = None,
        *,
        attempt: int | None = None,
        on_config_change: OnConfigChange | str = OnConfigChange.RESTART,
        resume_plan: ResumePlan | None = None,
        data_location: str | _Default | None = DEFAULT,
        keep_saved_views: bool = False,
        attempt_meta: Mapping[str, Any] | None = None,
    ) -> None:
        if not run_id:
            raise ValueError("run_id must not be empty")
        self.store = store
        self.run_id = run_id
        self.pipeline_fingerprint = pipeline_fingerprint
        self.attempt = attempt
        self.on_config_change = OnConfigChange(on_config_change)
        self.resume_plan = resume_plan
        self.writer_id = new_writer_id()
        self.state: CheckpointState | None = None
        self._loaded: CheckpointState | None = None
        self._component_fps: dict[str, str] = {}
        self._outputs: dict[str, list[dict[str, Any]]] = {}
        if isinstance(data_location, _Default):
            default = getattr(store, "default_data_location", None)
            data_location = default() if callable(default) else None
        self.data_location: str | None = data_location if isinstance(data_location, str) else None
        self.keep_saved_views = keep_saved_views
        self.attempt_meta = dict(attempt_meta or {})
        self.materializer: ViewMaterializer | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._reruns: dict[str, str] = {}

    # -- preparing a run: restore saved views, decide reruns ------------------------------------------

    def prepare_run(
        self, runner: SimplePipelineRunner, components: Mapping[str, Component], skip: set[str]
    ) -> dict[str, str]:
        """Restore the views skipped components produced; return ``{name: why}`` for those that must rerun.

        Called by the runner before ``before_pipeline``. A recorded view that a component about to run
        reads is checked (its copy, commit marker, files, schema and row count) and re-registered;
        if it is unusable its producer reruns, and so on upstream for whatever that producer reads.
        Without a data location nothing was saved: a needed view must already be in the runner's session
        (a resume in the same process), else its producer reruns.
        """
        config = runner.config
        self._loaded = self.store.load(self.run_id, config.name)
        self.materializer = None
        self._reruns = {}
        state = self._loaded
        if self.data_location is not None:
            self.materializer = ViewMaterializer(self.data_location, config.name, self.run_id, runner.spark_manager.get)
            runner.listeners.append(_SaveViews(self, runner, components))
        if state is None or not skip:
            self._clean_up(state)
            return {}
        # What a skipped component reads matters only if it runs again: asking a SQL component means
        # parsing its SQL, which costs a second or so in a new JVM.
        io = {name: _recorded_io(c, state, name, with_inputs=name not in skip) for name, c in components.items()}
        if self.materializer is not None and views_to_restore(config, set(components) - skip, skip, io):
            # Checking and restoring saved copies needs Spark anyway; started now (a failure to start it
            # fails the run here instead of passing for damaged copies). Once it runs, SQL components
            # can tell which views they read, so only those views are checked and restored.
            runner.spark_manager.get()
            for name in set(components) - skip:
                io[name] = _recorded_io(components[name], state, name)
        started = time.monotonic()
        reruns: dict[str, str] = {}
        restorable: list[dict[str, Any]] = []
        broken: dict[str, str] = {"": ""}
        checked: dict[tuple[str, str], str | None] = {}
        while broken:  # each round may turn skips into reruns, which may need more views
            needs = views_to_restore(config, set(components) - skip, skip, io)
            restorable, broken = [], {}
            for (producer, view), readers in needs.items():
                record = next((o for o in state.components[producer].outputs if o.get("view") == view), None)
                if (producer, view) not in checked:
                    checked[producer, view] = self._check_saved(runner, config, producer, view, readers[0], record)
                problem = checked[producer, view]
                if problem is None and record is not None and record.get("path"):
                    restorable.append(record)
                elif problem is not None:
                    broken.setdefault(producer, problem)
            for producer, problem in broken.items():
                skip.discard(producer)
                reruns[producer] = problem
                io[producer] = _recorded_io(components[producer], state, producer)
        if self.materializer is not None:
            for record in restorable:
                self.materializer.restore(record)
        if restorable and self.materializer is not None:
            self._events.append(
                (
                    "restored_views",
                    {
                        "views": [r["view"] for r in restorable],
                        "bytes": self.materializer.restored_bytes,
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
            )
        if reruns:
            self._events.append(("reruns", {"components": dict(reruns)}))
            if self.resume_plan is not None:
                self.resume_plan.mark_reruns(reruns)
        self._reruns = dict(reruns)
        self._clean_up(state)
        return reruns

    def _clean_up(self, state: CheckpointState | None) -> None:
        """Delete saved copies the checkpoint does not reference (unfinished or superseded writes)."""
        if state is None or self.materializer is None or not state.data_location:
            return
        removed = self.materializer.remove_unreferenced(state.saved_view_paths())
        if removed:
            self._events.append(("cleaned_up", {"paths": removed, "why": "unfinished or superseded saved views"}))

    def _check_saved(
        self,
        runner: SimplePipelineRunner,
        config: PipelineConfig,
        producer: str,
        view: str,
        reader: str,
        record: dict[str, Any] | None,
    ) -> str | None:
        if self.materializer is None:
            session = runner.spark_manager.peek()
            if session is not None and _has_temp_view(session, view):
                return None  # a resume in the same session: the view is still there
            return f"its view '{view}' (read by {reader}) was not saved (no data location) and is not in this session"
        if record is None or not record.get("path"):
            why = (record or {}).get("not_saved")
            if why is None and _policy(config, producer) is MaterializePolicy.NEVER:
                why = "materialize = never"
            return f"its view '{view}' (read by {reader}) was not saved" + (f" ({why})" if why else "")
        problem = self.materializer.verify(record)
        deleted_in = _saved_views_deleted_after(self._loaded, producer) if problem is not None else None
        if deleted_in is not None:
            return (
                f"its saved view '{view}' (read by {reader}) was deleted when the pipeline completed in attempt "
                f"{deleted_in} (keep_saved_views=True keeps them)"
            )
        return problem

    def _save_views(
        self,
        runner: SimplePipelineRunner,
        config: ComponentConfig,
        component: Component,
        io: dict[str, ViewIO],
        new: list[str],
    ) -> None:
        """Save the views ``config`` produced that are still needed; keep the records for its completion."""
        assert self.materializer is not None
        outputs = list(io[config.name].outputs or new)
        policy = _policy(runner.config, config.name)
        if policy is MaterializePolicy.NEVER:
            to_save: list[str] = []
            why = "materialize = never"
        elif policy is MaterializePolicy.ALWAYS:
            to_save = outputs
            why = ""
        else:
            pending = {n for n in io if n not in runner.done and n != config.name}
            to_save = needed_downstream(runner.config, config.name, outputs, io, pending)
            why = "no component still to run reads it (materialize = auto)"
        cheap: set[str] = set()
        if policy is MaterializePolicy.AUTO and getattr(component, "recomputable", False):
            cheap = {v for v in to_save if self.materializer.cheap_to_recompute(v)}
        attempt = self.state.attempt if self.state else 0
        records: list[dict[str, Any]] = []
        for view in outputs:
            if view in cheap:
                records.append({"view": view, "not_saved": "cheap to recompute from saved data (materialize = auto)"})
                continue
            if view not in to_save:
                records.append({"view": view, "not_saved": why})
                continue
            try:
                records.append(self.materializer.save(config.name, view, attempt))
            except ViewNotSavedError as exc:
                log.warning(
                    "View %r of %s is not saved (a resume will run %s again): %s", view, config.name, config.name, exc
                )
                records.append({"view": view, "not_saved": str(exc)})
        self.record_outputs(config.name, records)

    def _save(self) -> None:
        assert self.state is not None
        self.store.save(self.state)

    def before_pipeline(self, config: PipelineConfig) -> None:
        fingerprint = self.pipeline_fingerprint or compute_pipeline_fingerprint(config)
        self._component_fps = compute_component_fingerprints(config)
        state = self._loaded if self._loaded is not None else self.store.load(self.run_id, config.name)
        self._loaded = None
        if state is None:
            state = CheckpointState(run_id=self.run_id, pipeline_name=config.name, pipeline_fingerprint=fingerprint)
        changed = state.pipeline_fingerprint != fingerprint
        attempt = self.attempt if self.attempt is not None else state.attempt + 1
        state.begin_attempt(
            attempt,
            self.writer_id,
            pipeline_fingerprint=fingerprint,
            component_fingerprints=self._component_fps,
            field_digests={c.name: compute_field_digests(c) for c in config.components},
            resume=self.resume_plan.summary() if self.resume_plan else None,
            data_location=self.data_location,
            meta=self.attempt_meta,
            graph={c.name: list(c.depends_on) for c in config.components},
        )
        for event, details in self._events:
            state.record_event(event, **details)
        self._events.clear()
        if changed and state.completed_components:
            if self.on_config_change is OnConfigChange.PARTIAL:
                stale = [
                    n
                    for n in state.completed_components
                    if n not in self._component_fps
                    or state.components.get(n) is None
                    or state.components[n].fingerprint != self._component_fps[n]
                ]
                state.invalidate(stale, "fingerprint changed")
            else:
                state.invalidate(list(state.completed_components), "pipeline changed: starting from the beginning")
        self.state = state
        self._save()
        log.info(
            "Checkpoint of run %r: attempt %d, %d components recorded done, fingerprint %s",
            self.run_id,
            attempt,
            len(state.completed_components),
            fingerprint[:12],
        )

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        if self.state is not None and config.name in self.state.completed_components:
            why = self._reruns.get(config.name)
            self.state.invalidate([config.name], f"running again: {why}" if why else "running again")
            self._save()

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        if self.state is not None and config.name in self.state.completed_components:
            self.state.record_skipped(config.name)  # saved with the next change

    def record_outputs(self, name: str, outputs: list[dict[str, Any]]) -> None:
        """Attach descriptions of saved outputs to ``name``'s completion record (written with it)."""
        self._outputs[name] = outputs

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        if self.state is None:
            return
        self.state.record_completed(
            config.name,
            duration_ms,
            fingerprint=self._component_fps.get(config.name),
            outputs=self._outputs.pop(config.name, None),
        )
        self._save()

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        if self.state is None:
            return
        self.state.record_failed(config.name, error)
        damaged = damaged_saved_view(self.state, error)
        if damaged is not None:
            # Checks before a resume read footers, not every data page: a copy damaged inside its data is
            # found only when a component reads it. Its producer then runs again on the next attempt.
            producer, view = damaged
            self.state.invalidate([producer], f"its saved view '{view}' is damaged: {config.name} could not read it")
            log.warning(
                "%s failed reading the saved view %r of %s: %s will run again on the next attempt",
                config.name,
                view,
                producer,
                producer,
            )
        self._save()

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        if self.state is None:
            return
        status = _FINAL_STATUS.get(result.status, CheckpointStatus.FAILED)
        self.state.finish_attempt(status)
        self._save()
        # Saved views exist only to resume; a completed run needs none of them.
        done = status == CheckpointStatus.COMPLETED and not self.keep_saved_views
        if done and self.materializer is not None and self.materializer.delete_all():
            self.state.record_event("deleted_saved_views", why="pipeline completed")
            self._save()


def _saved_views_deleted_after(state: CheckpointState | None, producer: str) -> int | None:
    """The attempt that deleted the run's saved views on completion after ``producer`` saved its own, if any."""
    record = state.components.get(producer) if state is not None else None
    if state is None or record is None:
        return None
    for attempt in state.attempts:
        if attempt.attempt >= record.attempt and any(e.get("event") == "deleted_saved_views" for e in attempt.events):
            return attempt.attempt
    return None


def _policy(config: PipelineConfig, name: str) -> MaterializePolicy:
    comp = config.get_component(name)
    return (comp.materialize if comp is not None and comp.materialize else None) or config.materialize


def _recorded_io(component: Component, state: CheckpointState, name: str, *, with_inputs: bool = True) -> ViewIO:
    """Declared views of a component, completed with the outputs its checkpoint record lists.

    Without ``with_inputs`` its inputs are not asked for (and left unknown).
    """
    io = ViewIO.of(component) if with_inputs else ViewIO(None, ViewIO.outputs_of(component))
    record = state.components.get(name)
    if io.outputs is None and record is not None and name in state.completed_components:
        return ViewIO(io.inputs, tuple(o["view"] for o in record.outputs if o.get("view")))
    return io


def _has_temp_view(spark: SparkSession, view: str) -> bool:
    try:
        return bool(spark.catalog.tableExists(view))
    except Exception:
        return False


def _temp_views(spark: SparkSession) -> dict[str, Any]:
    """``{view: identity}`` of the session's temp views; the identity (the JVM plan object the view is
    registered with) changes when a view is replaced, and is ``None`` without a JVM (Spark Connect)."""
    catalog: Any = None
    try:
        catalog = spark._jsparkSession.sessionState().catalog()
    except Exception:
        catalog = None
    views: dict[str, Any] = {}
    for table in spark.catalog.listTables():
        if not table.isTemporary:
            continue
        plan = None
        if catalog is not None:
            try:
                found = catalog.getTempView(table.name)
                plan = found.get() if found.isDefined() else None
            except Exception:
                plan = None
        views[table.name] = plan
    return views


def _changed_views(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Views created, or replaced (registered again), between two :func:`_temp_views` snapshots."""
    changed = []
    for name, plan in after.items():
        if name not in before:
            changed.append(name)
        elif plan is not None and before[name] is not None:
            try:
                same = bool(plan.equals(before[name]))
            except Exception:
                same = True
            if not same:
                changed.append(name)
    return sorted(changed)


class _SaveViews(ComponentRunListener):
    """Runner listener: after a component finishes, save the views it produced that are still needed.

    Components that do not declare their views (custom :class:`DataFlow` classes) are watched: the temp
    views they create or replace are taken as theirs.
    """

    def __init__(self, hooks: CheckpointHooks, runner: SimplePipelineRunner, components: Mapping[str, Component]):
        self.hooks = hooks
        self.runner = runner
        self.components = components
        self.io = {name: ViewIO.of(c) for name, c in components.items()}
        self._before: dict[str, Any] = {}

    def _temp_views(self) -> dict[str, Any]:
        spark = self.runner.spark_manager.peek()
        return {} if spark is None else _temp_views(spark)

    def _refresh_unknown_inputs(self) -> None:
        """Ask again the components still to run whose inputs were unknown: before Spark started (a new
        process), SQL components cannot tell which views they read; now they can."""
        for name, io in self.io.items():
            if io.inputs is None and name not in self.runner.done:
                inputs = ViewIO.of(self.components[name]).inputs
                if inputs is not None:
                    self.io[name] = ViewIO(inputs, io.outputs)

    def before_run(self, config: ComponentConfig, component: Component) -> None:
        if isinstance(component, DataFlow) and self.io[config.name].outputs is None:
            self._before = self._temp_views()

    def after_success(self, config: ComponentConfig, component: Component) -> None:
        io = self.io[config.name]
        if not io.outputs and io.outputs is not None:
            return
        new = _changed_views(self._before, self._temp_views()) if io.outputs is None else []
        if io.outputs is None:
            self.io[config.name] = ViewIO(io.inputs, tuple(new))
        self._refresh_unknown_inputs()
        self.hooks._save_views(self.runner, config, component, self.io, new)
