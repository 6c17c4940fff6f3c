"""CheckpointHooks: record a run's progress in a :class:`CheckpointStore`, one durable write per step.

Besides *which* components finished, a resume in a new process needs *what they produced*: the temp
views that components still to run read. With a data location, CheckpointHooks saves those views when
their producer completes (before the checkpoint claims it done), and restores them before a resumed run
starts; a view that is missing or damaged makes its producer run again instead of crashing the run.
"""

from __future__ import annotations

import logging
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
from airflow_ppf.runner.checkpoint.saved_views import ViewMaterializer
from airflow_ppf.runner.checkpoint.state import CheckpointState, CheckpointStatus, new_writer_id
from airflow_ppf.runner.checkpoint.stores import CheckpointStore
from airflow_ppf.runner.dataflow import ViewIO, needed_downstream, views_to_restore
from airflow_ppf.runner.hooks import NoOpHooks
from airflow_ppf.runner.results import PipelineResultStatus
from airflow_ppf.runner.simple_runner import ComponentRunListener

if TYPE_CHECKING:
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
        keep_saved_views: keep saved views after the pipeline completes (default: delete them).
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

    # -- preparing a run: restore saved views, decide reruns ------------------------------------------

    def prepare_run(
        self, runner: SimplePipelineRunner, components: Mapping[str, Component], skip: set[str]
    ) -> dict[str, str]:
        """Restore the views skipped components produced; return ``{name: why}`` for those that must rerun.

        Called by the runner before ``before_pipeline``. A recorded view that a component about to run
        reads is checked (it exists, its commit marker is there, its schema matches) and re-registered;
        if it is unusable its producer reruns, and so on upstream for whatever that producer reads.
        """
        config = runner.config
        self._loaded = self.store.load(self.run_id, config.name)
        self.materializer = None
        if self.data_location is None:
            return {}
        self.materializer = ViewMaterializer(self.data_location, config.name, self.run_id, runner.spark_manager.get)
        runner.listeners.append(_SaveViews(self, runner, components))
        state = self._loaded
        if state is None:
            return {}
        io = {name: _recorded_io(component, state, name) for name, component in components.items()}
        reruns: dict[str, str] = {}
        restorable: list[dict[str, Any]] = []
        broken: dict[str, str] = {"": ""}
        while broken:  # each round may turn skips into reruns, which may need more views
            needs = views_to_restore(config, set(components) - skip, skip, io)
            restorable, broken = [], {}
            for (producer, view), readers in needs.items():
                record = next((o for o in state.components[producer].outputs if o.get("view") == view), None)
                problem = self._check_saved(config, producer, view, readers[0], record)
                if problem is None and record is not None:
                    restorable.append(record)
                elif problem is not None:
                    broken.setdefault(producer, problem)
            for producer, problem in broken.items():
                skip.discard(producer)
                reruns[producer] = problem
        for record in restorable:
            self.materializer.restore(record)
        if restorable:
            self._events.append(
                (
                    "restored_views",
                    {"views": [r["view"] for r in restorable], "bytes": self.materializer.restored_bytes},
                )
            )
        if state.data_location:
            removed = self.materializer.remove_unreferenced(state.saved_view_paths())
            if removed:
                self._events.append(("cleaned_up", {"paths": removed, "why": "unfinished or superseded saved views"}))
        return reruns

    def _check_saved(
        self, config: PipelineConfig, producer: str, view: str, reader: str, record: dict[str, Any] | None
    ) -> str | None:
        assert self.materializer is not None
        if record is None or not record.get("path"):
            problem = f"its view '{view}' (read by {reader}) was not saved"
            if _policy(config, producer) is MaterializePolicy.NEVER:
                problem += " (materialize = never)"
            return problem
        return self.materializer.verify(record)

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
        elif policy is MaterializePolicy.ALWAYS:
            to_save = outputs
        else:
            pending = {n for n in io if n not in runner.done and n != config.name}
            to_save = needed_downstream(runner.config, config.name, outputs, io, pending)
        attempt = self.state.attempt if self.state else 0
        records = [self.materializer.save(config.name, view, attempt) for view in to_save]
        records += [{"view": v} for v in outputs if v not in to_save]
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
            self.state.invalidate([config.name], "running again")
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


def _policy(config: PipelineConfig, name: str) -> MaterializePolicy:
    comp = config.get_component(name)
    return (comp.materialize if comp is not None and comp.materialize else None) or config.materialize


def _recorded_io(component: Component, state: CheckpointState, name: str) -> ViewIO:
    """Declared views of a component, completed with the outputs its checkpoint record lists."""
    io = ViewIO.of(component)
    record = state.components.get(name)
    if io.outputs is None and record is not None and name in state.completed_components:
        return ViewIO(io.inputs, tuple(o["view"] for o in record.outputs if o.get("view")))
    return io


class _SaveViews(ComponentRunListener):
    """Runner listener: after a component finishes, save the views it produced that are still needed."""

    def __init__(self, hooks: CheckpointHooks, runner: SimplePipelineRunner, components: Mapping[str, Component]):
        self.hooks = hooks
        self.runner = runner
        self.io = {name: ViewIO.of(c) for name, c in components.items()}
        self._before: set[str] = set()

    def _temp_views(self) -> set[str]:
        spark = self.runner.spark_manager.peek()
        if spark is None:
            return set()
        return {t.name for t in spark.catalog.listTables() if t.isTemporary}

    def before_run(self, config: ComponentConfig, component: Component) -> None:
        if isinstance(component, DataFlow) and self.io[config.name].outputs is None:
            self._before = self._temp_views()

    def after_success(self, config: ComponentConfig, component: Component) -> None:
        io = self.io[config.name]
        if not io.outputs and io.outputs is not None:
            return
        new = sorted(self._temp_views() - self._before) if io.outputs is None else []
        if io.outputs is None:
            self.io[config.name] = ViewIO(io.inputs, tuple(new))
        self.hooks._save_views(self.runner, config, component, self.io, new)
