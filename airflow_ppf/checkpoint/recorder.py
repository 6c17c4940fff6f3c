"""CheckpointHooks, the recorder: write a run's progress to a :class:`CheckpointStore`, one durable write per step.

Besides *which* components finished, a resume in a new process needs *what they produced*: the temp
views that components still to run read. With a data location, CheckpointHooks saves those views when
their producer completes (before the checkpoint claims it done), and before a resumed run starts it asks
the planner (:func:`~airflow_ppf.checkpoint.planner.settle_saved_views`) which saved views can be restored,
restores them, and records the plan the run follows; a view that is missing or damaged makes its producer
run again instead of crashing the run.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ppf.checkpoint.dataflow import ViewIO, needed_downstream, pending_readers, views_to_restore
from airflow_ppf.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
)
from airflow_ppf.checkpoint.naming import check_run_id
from airflow_ppf.checkpoint.planner import (
    OnConfigChange,
    PlanAction,
    ResumePlan,
    SavedViewCheck,
    missing_on_this_worker,
    plan_for_skip,
    plan_recovery,
    saved_view_problem,
    settle_saved_views,
)
from airflow_ppf.checkpoint.saved_views import (
    SavedViewDamagedError,
    SavedViews,
    ViewNotSavedError,
    changed_views,
    damaged_saved_view,
    describe_damage,
    has_temp_view,
    is_missing_problem,
    temp_views,
)
from airflow_ppf.checkpoint.state import CheckpointState, CheckpointStatus, new_writer_id
from airflow_ppf.checkpoint.stores import CheckpointStore
from airflow_ppf.components.base import Component, DataFlow
from airflow_ppf.config.models import MaterializePolicy
from airflow_ppf.runner.hooks import ComponentRunListener, FailureRecovery, NoOpHooks, RunPreparation
from airflow_ppf.runner.results import PipelineResultStatus

if TYPE_CHECKING:
    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.results import PipelineResult
    from airflow_ppf.runner.simple_runner import SimplePipelineRunner

__all__ = ["CHECKPOINT_EVENTS", "DEFAULT", "CheckpointHooks", "CheckpointObserver", "is_checkpoint_observer"]

log = logging.getLogger(__name__)


class _Default:
    """Marker type of :data:`DEFAULT`."""


#: "Use the store's default data location."
DEFAULT = _Default()


class _NotLoaded:
    """Marker: the checkpoint is loaded by the hooks themselves."""


_NOT_LOADED = _NotLoaded()

_FINAL_STATUS = {
    PipelineResultStatus.SUCCESS: CheckpointStatus.COMPLETED,
    PipelineResultStatus.INTERRUPTED: CheckpointStatus.INTERRUPTED,
    PipelineResultStatus.FAILURE: CheckpointStatus.FAILED,
    PipelineResultStatus.PARTIAL_SUCCESS: CheckpointStatus.FAILED,
}


class CheckpointObserver(Protocol):
    """What the recorder tells observers (metrics, traces) about checkpoint work; implement any subset.

    Called right after the work, with how long it took. An observer that raises is logged and ignored.
    """

    def on_checkpoint_written(self, seconds: float) -> None:
        """The checkpoint was written (durably) to the store."""

    def on_view_saved(self, component: str, record: Mapping[str, Any], seconds: float) -> None:
        """A view ``component`` produced was saved (``record``: ``view``, ``path``, ``rows``, ``bytes``)."""

    def on_views_restored(self, views: list[str], restored_bytes: int, seconds: float) -> None:
        """Saved views were checked and restored before the run (``seconds`` covers both)."""


#: The methods of :class:`CheckpointObserver`.
CHECKPOINT_EVENTS = ("on_checkpoint_written", "on_view_saved", "on_views_restored")


def is_checkpoint_observer(hook: object) -> bool:
    """Whether ``hook`` implements any :class:`CheckpointObserver` method."""
    return any(callable(getattr(hook, method, None)) for method in CHECKPOINT_EVENTS)


class CheckpointHooks(NoOpHooks):
    """Persist which components finished, so that a later attempt can skip them.

    A *critical* hook: when a write fails, the run fails (it is never reported successful with its
    progress unrecorded). On a resumed run it merges into the stored checkpoint: earlier progress and the
    attempt history are kept, skipped components stay recorded, and a new attempt is appended, with the
    plan it follows.

    Args:
        store: where checkpoints live.
        run_id: identifies the run across attempts (Airflow: dag, run, task and map index).
        pipeline_fingerprint: from :func:`compute_pipeline_fingerprint`; computed from the config when
            omitted.
        attempt: this attempt's number (Airflow's try number); default: the stored attempt plus one.
        on_config_change: when the stored checkpoint is of a different pipeline fingerprint and no plan is
            given, ``restart`` forgets all progress, ``partial`` forgets only components whose fingerprint
            changed.
        resume_plan: the plan this attempt follows (from :func:`~airflow_ppf.checkpoint.plan_resume`);
            settled against the saved views and kept in the attempt history.
        data_location: where views are saved (any Spark-writable URI). Default: the store's own data
            folder (``<base_dir>/_data`` for :class:`LocalCheckpointStore`); ``None`` there disables saving.
        keep_saved_views: keep saved views after the pipeline completes (default: delete them). Saved
            views are read in place of the views they were saved from, so after the deletion the temp
            views a run leaves in its session cannot be read any more: keep them to use those views
            after the run (in a notebook, a test).
        attempt_meta: facts kept with this attempt in the history (e.g. Airflow's ``max_tries``).
        loaded_state: the stored checkpoint when the caller has loaded it already (it is then not loaded
            again); ``None`` means there is none.
        observers: told about checkpoint writes, saved and restored views (:class:`CheckpointObserver`).
        now_func: the clock of the checkpoint's time stamps (a timezone-aware ``datetime``); default: now, UTC.

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
        loaded_state: CheckpointState | _NotLoaded | None = _NOT_LOADED,
        observers: Sequence[object] = (),
        now_func: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        if pipeline_fingerprint is not None and not pipeline_fingerprint:
            raise ValueError("pipeline_fingerprint must not be empty (omit it to compute it from the config)")
        self.now_func = now_func
        self.store = store
        self.run_id = check_run_id(run_id)
        self.pipeline_fingerprint = pipeline_fingerprint
        self.attempt = attempt
        self.on_config_change = OnConfigChange(on_config_change)
        self.resume_plan = resume_plan
        self.writer_id = new_writer_id()
        #: The checkpoint as this attempt writes it (from ``before_pipeline`` on).
        self.state: CheckpointState | None = None
        #: The plan this attempt follows, once the run is prepared.
        self.plan: ResumePlan | None = None
        self._loaded = loaded_state
        self._component_fps: dict[str, str] = {}
        self._outputs: dict[str, list[dict[str, Any]]] = {}
        self._io: dict[str, ViewIO] = {}
        self._components: Mapping[str, Component] = {}
        if isinstance(data_location, _Default):
            default = getattr(store, "default_data_location", None)
            data_location = default() if callable(default) else None
        self.data_location: str | None = data_location if isinstance(data_location, str) else None
        self.keep_saved_views = keep_saved_views
        self.attempt_meta = dict(attempt_meta or {})
        self.saved_views: SavedViews | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._view_reruns: dict[str, str] = {}
        #: Saved views restored in this attempt (their paths), and those remade after being found damaged.
        self._restored: set[str] = set()
        self._remade: set[tuple[str, str]] = set()
        self.observers = [o for o in observers if is_checkpoint_observer(o)]

    def _notify(self, method: str, *args: Any) -> None:
        """Tell the observers; their errors are logged and ignored (observing never fails a run)."""
        for observer in self.observers:
            fn = getattr(observer, method, None)
            if not callable(fn):
                continue
            try:
                fn(*args)
            except Exception as exc:
                log.warning(
                    "Observer %s.%s raised %s: %s (ignored)", type(observer).__name__, method, type(exc).__name__, exc
                )

    def _stored(self, pipeline_name: str) -> CheckpointState | None:
        """The stored checkpoint, loaded once per attempt."""
        if isinstance(self._loaded, _NotLoaded):
            self._loaded = self.store.load(self.run_id, pipeline_name)
        return self._loaded

    # -- preparing a run: settle the plan, restore saved views ------------------------------------------

    def prepare_run(self, run: RunPreparation) -> None:
        """Settle the plan against the saved views, restore those the run needs, and watch what it produces.

        Called by the runner before ``before_pipeline``. A recorded view that a component about to run
        reads is checked (its files, commit marker, schema and row count) and re-registered; if it is
        unusable its producer reruns, and so on upstream for whatever that producer reads (the planner
        decides; the reasons go into the plan). Without a data location nothing was saved: a needed view
        must already be in the runner's session (a resume in the same process), else its producer reruns.
        """
        runner = run.runner
        config = runner.config
        state = self._stored(config.name)
        self.saved_views = None
        self._view_reruns = {}
        self._restored, self._remade = set(), set()
        components = self._components = run.components
        if self.data_location is not None:
            self.saved_views = SavedViews(self.data_location, config.name, self.run_id, runner.spark_manager.get)
            run.listeners.append(_SaveViews(self, runner, components))
        given = self.resume_plan if self.resume_plan is not None else run.plan
        if isinstance(given, ResumePlan) and given.skip == run.skip:
            plan = given
        else:
            plan = plan_for_skip(
                state, config, run.skip, run.skip_reasons, run_id=self.run_id, on_config_change=self.on_config_change
            )
        if state is not None and run.skip:
            plan = self._settle(runner, state, plan, components)
        for name, why in plan.reruns.items():
            run.rerun(name, why)
        self.plan = plan
        if run.plan is not None or state is not None:
            run.plan = plan

    def _settle(
        self,
        runner: SimplePipelineRunner,
        state: CheckpointState,
        plan: ResumePlan,
        components: Mapping[str, Component],
    ) -> ResumePlan:
        config = runner.config
        graph = config.dependency_graph()
        skip = plan.skip
        # What a skipped component reads matters only if it runs again: asking a SQL component means
        # parsing its SQL, which costs a second or so in a new JVM.
        io = {name: _recorded_io(c, state, name, with_inputs=name not in skip) for name, c in components.items()}
        to_run = set(components) - skip
        started = time.monotonic()
        if self.saved_views is not None and views_to_restore(graph, to_run, skip, io):
            # Checking and restoring saved views needs Spark anyway; started now (a failure to start it
            # fails the run here instead of passing for damaged saved views). Once it runs, SQL components
            # can tell which views they read, so only those views are checked and restored.
            runner.spark_manager.get()
            # Starting Spark is not a cost of resuming (a fresh run starts it too); what follows is.
            started = time.monotonic()
            for name in to_run:
                io[name] = _recorded_io(components[name], state, name)
        settled, restorable = settle_saved_views(
            plan,
            state,
            graph,
            io,
            self._saved_view_check(runner, state),
            io_when_run=lambda name: _recorded_io(components[name], state, name),
        )
        self._view_reruns = {n: why for n, why in settled.reruns.items() if n not in plan.reruns}
        if self._view_reruns:
            self._events.append(("reruns", {"components": dict(self._view_reruns)}))
        if self.saved_views is not None and restorable:
            self._restore(restorable)
            seconds = time.monotonic() - started
            views = [r["view"] for r in restorable]
            settled = settled.with_restore(seconds, views)
            self._notify("on_views_restored", views, self.saved_views.restored_bytes, seconds)
            self._events.append(
                (
                    "restored_views",
                    {"views": views, "bytes": self.saved_views.restored_bytes, "seconds": round(seconds, 3)},
                )
            )
            log.info(
                "Restored %d saved view%s (%.1f MB) in %.1f s: %s",
                len(views),
                "" if len(views) == 1 else "s",
                self.saved_views.restored_bytes / 1e6,
                seconds,
                ", ".join(views),
            )
        return settled

    def _saved_view_check(self, runner: SimplePipelineRunner, state: CheckpointState) -> SavedViewCheck:
        """How this attempt checks that a saved view can be restored (for the planner)."""

        def check(producer: str, view: str, reader: str, record: dict[str, Any] | None) -> str | None:
            if self.saved_views is None:
                session = runner.spark_manager.peek()
                if session is not None and has_temp_view(session, view):
                    return None  # a resume in the same session: the view is still there
                return (
                    f"its view '{view}' (read by {reader}) was not saved (no data location) and is not in this session"
                )
            if record is not None and record.get("path") in self._restored:
                return None  # checked and restored earlier in this attempt
            problem = saved_view_problem(state, producer, view, reader, record)
            if problem is not None or record is None:
                return problem
            problem = self.saved_views.verify(record)
            if problem is not None and is_missing_problem(problem, view):
                host = self.attempt_meta.get("hostname")
                return missing_on_this_worker(state, producer, view, record, str(host) if host else None) or problem
            return problem

        return check

    def _restore(self, records: Sequence[dict[str, Any]]) -> None:
        assert self.saved_views is not None
        for record in records:
            if record["path"] not in self._restored:
                self.saved_views.restore(record)
                self._restored.add(record["path"])

    # -- a saved view found damaged while it is read: remade within the attempt --------------------------

    def recover_failure(self, recovery: FailureRecovery) -> None:
        """Remake a saved view found damaged when a component read it, within this attempt.

        Only a read that fails inside a saved view's files counts (bit rot that kept sizes and footers
        intact passes the checks before a resume). The error is replaced by one that names the saved view,
        its folder, the file and the damage. The planner (:func:`~airflow_ppf.checkpoint.planner.plan_recovery`)
        says what runs again: the producer, what read the damaged copy, then the reader; the components
        that rerun are marked not done and the decision recorded (a ``recovered`` event) before anything
        runs, and the saved views they need are checked and restored. Each saved view is remade once per
        attempt: found damaged again, the failure stands (the next attempt reruns its producer).
        """
        if self.state is None or self.saved_views is None:
            return
        damaged = damaged_saved_view(self.state, recovery.error)
        if damaged is None:
            return
        producer, view = damaged
        reader = recovery.config.name
        record = self.state.components[producer]
        path = next(str(o["path"]) for o in record.outputs if o.get("view") == view and o.get("path"))
        problem = f"saved view '{view}' at {path} is damaged: {describe_damage(recovery.error, path)}"
        original = recovery.error
        if (producer, view) in self._remade:
            recovery.error = SavedViewDamagedError(f"{problem} (damaged again after {producer} remade it: not retried)")
            recovery.error.__cause__ = original
            return
        recovery.error = SavedViewDamagedError(f"{problem} ({reader} could not read it)")
        recovery.error.__cause__ = original
        self._remade.add((producer, view))
        runner = recovery.runner
        components = self._components
        graph = runner.config.dependency_graph()
        state = self.state
        io = {name: _recorded_io(c, state, name) for name, c in components.items()}
        decided = plan_recovery(
            state,
            graph,
            io,
            producer=producer,
            view=view,
            reader=reader,
            problem=problem,
            done=recovery.done,
            ran=recovery.ran,
            check=self._saved_view_check(runner, state),
            io_when_run=lambda name: _recorded_io(components[name], state, name),
        )
        _mark_not_done(state, decided.reruns)
        state.record_event("recovered", failed=reader, error=problem, **decided.summary())
        self._save()  # durable before anything runs again (the runner logs what runs again, and why)
        self._restore(decided.restore)
        if self.plan is not None:
            self.plan = self.plan.with_reruns(decided.reruns)
        for name, why in decided.reruns.items():
            recovery.rerun(name, why)

    def _clean_up(self, state: CheckpointState, keep: list[str]) -> None:
        """Delete saved views the checkpoint does not reference (unfinished or superseded writes).

        Called once this attempt's first write fenced the older attempts off: before it, one of them may
        still be saving a view it is about to record.
        """
        if self.saved_views is None or not state.data_location:
            return
        removed = self.saved_views.remove_unreferenced(keep)
        if removed:
            state.record_event("cleaned_up", paths=removed, why="unfinished or superseded saved views")
            self._save()

    def _save_views(
        self,
        runner: SimplePipelineRunner,
        config: ComponentConfig,
        component: Component,
        io: dict[str, ViewIO],
        new: list[str],
    ) -> None:
        """Save the views ``config`` produced that are still needed; keep the records for its completion."""
        assert self.saved_views is not None
        outputs = list(io[config.name].outputs or new)
        policy = _policy(runner.config, config.name)
        readers: dict[str, list[str]] | None = None
        if policy is MaterializePolicy.NEVER:
            to_save: list[str] = []
            why = "materialize = never"
        elif policy is MaterializePolicy.ALWAYS:
            to_save = outputs
            why = ""
        else:
            pending = {n for n in io if n not in runner.done and n != config.name}
            readers = pending_readers(runner.config.dependency_graph(), config.name, outputs, io, pending)
            to_save = needed_downstream(outputs, readers)
            why = "no component still to run reads it (materialize = auto)"
        not_saved: dict[str, str] = {}
        if policy is MaterializePolicy.AUTO and getattr(component, "recomputable", False):
            for view in to_save:
                # The chain rule first: it needs no Spark (asking Spark whether a view is cheap plans it).
                if readers is not None and self._computed_within_reader(runner, readers[view]):
                    not_saved[view] = (
                        f"read only by {readers[view][0]}, which computes it within its own view (materialize = auto)"
                    )
                elif self.saved_views.cheap_to_recompute(view):
                    not_saved[view] = "cheap to recompute from saved data (materialize = auto)"
        attempt = self.state.attempt if self.state else 0
        records: list[dict[str, Any]] = []
        for view in outputs:
            if view in not_saved:
                records.append({"view": view, "not_saved": not_saved[view]})
                continue
            if view not in to_save:
                records.append({"view": view, "not_saved": why})
                continue
            try:
                started = time.monotonic()
                records.append(self.saved_views.save(config.name, view, attempt))
                self._notify("on_view_saved", config.name, records[-1], time.monotonic() - started)
            except ViewNotSavedError as exc:
                log.warning(
                    "View %r of %s is not saved (a resume will run %s again): %s", view, config.name, config.name, exc
                )
                records.append({"view": view, "not_saved": str(exc)})
        self._outputs[config.name] = records
        self._io[config.name] = io[config.name]

    def _computed_within_reader(self, runner: SimplePipelineRunner, readers: Sequence[str]) -> bool:
        """Whether a lazy view read by ``readers`` is computed anyway within what its one reader saves.

        A component that only registers a view (``recomputable``) did no work when it completed: its view
        is a query, computed by whatever reads it. When its only reader still to run is such a component
        too, and may save its own view, that save computes this view as part of one Spark job (fused, its
        columns pruned to what the reader needs). Saving this view as well would compute it in full in a
        job of its own, write it and read it back: on every successful run, for the sole benefit of a
        retry after a failure inside the reader's job (which then computes it again). A chain of such
        views is saved where it ends: at a view read by a component that does work of its own, or by
        several components (each would compute it again). ``materialize = always`` on a component saves
        its views regardless.
        """
        if len(readers) != 1:
            return False
        reader = readers[0]
        component = self._components.get(reader)
        return (
            component is not None
            and bool(getattr(component, "recomputable", False))
            and _policy(runner.config, reader) is not MaterializePolicy.NEVER
        )

    def _save(self) -> None:
        assert self.state is not None
        started = time.monotonic()
        self.store.save(self.state)
        if self.observers:
            self._notify("on_checkpoint_written", time.monotonic() - started)

    # -- recording -------------------------------------------------------------------------------------

    def before_pipeline(self, config: PipelineConfig) -> None:
        fingerprint = self.pipeline_fingerprint or compute_pipeline_fingerprint(config)
        self._component_fps = compute_component_fingerprints(config)
        state = self._stored(config.name)
        self._loaded = _NOT_LOADED
        referenced = None if state is None else state.saved_view_paths()  # before reruns drop theirs
        stamp = self.now_func
        if state is None:
            state = CheckpointState(
                run_id=self.run_id,
                pipeline_name=config.name,
                pipeline_fingerprint=fingerprint,
                created_at=stamp().isoformat() if stamp is not None else "",
            )
        if stamp is not None:
            state.use_clock(lambda: stamp().isoformat())
        attempt = self.attempt if self.attempt is not None else state.attempt + 1
        plan = self.plan or self.resume_plan
        state.begin_attempt(
            attempt,
            self.writer_id,
            pipeline_fingerprint=fingerprint,
            component_fingerprints=self._component_fps,
            field_digests={c.name: compute_field_digests(c) for c in config.components},
            resume=plan.summary() if plan else None,
            data_location=self.data_location,
            meta=self.attempt_meta,
            graph={c.name: list(c.depends_on) for c in config.components},
        )
        for event, details in self._events:
            state.record_event(event, **details)
        self._events.clear()
        if plan is not None:
            self._invalidate_reruns(state, plan)
        self.state = state
        self._save()
        log.info(
            "Checkpoint of run %r: attempt %d, %d components recorded done, fingerprint %s",
            self.run_id,
            attempt,
            len(state.completed_components),
            fingerprint[:12],
        )
        if referenced is not None:
            self._clean_up(state, referenced)

    def _invalidate_reruns(self, state: CheckpointState, plan: ResumePlan) -> None:
        """Mark the plan's reruns not done before anything runs (a crash then never leaves one looking done)."""
        done = state.completed_set()
        reruns = {e.name: e.reason for e in plan.entries if e.action is PlanAction.RERUN and e.name in done}
        if plan.config_changed:
            stale = [n for n in reruns if n not in self._view_reruns]
            reason = (
                "fingerprint changed"
                if plan.mode is OnConfigChange.PARTIAL
                else "pipeline changed: starting from the beginning"
            )
            state.invalidate(stale, reason)
            reruns = {n: why for n, why in reruns.items() if n not in stale}
        _mark_not_done(state, reruns)

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        if self.state is not None and self.state.has_completed(config.name):
            self.state.invalidate([config.name], "running again")
            self._save()

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        if self.state is not None and self.state.has_completed(config.name):
            self.state.record_skipped(config.name)  # saved with the next change

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        if self.state is None:
            return
        io = self._io.pop(config.name, None)
        if io is None and config.name in self._components:
            io = ViewIO.of(self._components[config.name])
        self.state.record_completed(
            config.name,
            duration_ms,
            fingerprint=self._component_fps.get(config.name),
            outputs=self._outputs.pop(config.name, None),
            reads=io.inputs if io is not None else None,
            writes=io.outputs if io is not None else None,
        )
        self._save()

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        if self.state is None:
            return
        self.state.record_failed(config.name, error)
        damaged = damaged_saved_view(self.state, error)
        if damaged is not None:
            # Not remade within this attempt (found damaged again after it was): the next attempt reruns
            # its producer.
            producer, view = damaged
            why = str(error) if isinstance(error, SavedViewDamagedError) else f"its saved view '{view}' is damaged"
            self.state.invalidate([producer], f"{why}: {config.name} could not read it")
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
        self.state.finish_attempt(status, views=self._unfinished_io() if status != CheckpointStatus.COMPLETED else None)
        self._save()
        # Saved views exist only to resume; a completed run needs none of them.
        done = status == CheckpointStatus.COMPLETED and not self.keep_saved_views
        if done and self.saved_views is not None and self.saved_views.delete_all():
            self.state.record_event("deleted_saved_views", why="pipeline completed")
            self._save()

    def _unfinished_io(self) -> dict[str, tuple[Sequence[str] | None, Sequence[str] | None]]:
        """What the components that did not complete read and produce, as far as they can tell now (with
        Spark up, SQL components can say what they read): the checkpoint view's prediction of the next
        attempt needs it."""
        assert self.state is not None
        done = self.state.completed_set()
        known: dict[str, tuple[Sequence[str] | None, Sequence[str] | None]] = {}
        for name, component in self._components.items():
            if name in done:
                continue
            try:
                io = ViewIO.of(component)
            except Exception:  # advisory only: a component that cannot tell stays "unknown"
                log.debug("Views of %s unknown", name, exc_info=True)
                continue
            if io.inputs is not None or io.outputs is not None:
                known[name] = (io.inputs, io.outputs)
        return known


def _mark_not_done(state: CheckpointState, reruns: Mapping[str, str]) -> None:
    """Mark the components of ``reruns`` (``{name: why}``) recorded done not done, one change per reason."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for name, why in reruns.items():
        if state.has_completed(name):
            by_reason[f"running again: {why}"].append(name)
    for reason, names in by_reason.items():
        state.invalidate(names, reason)


def _policy(config: PipelineConfig, name: str) -> MaterializePolicy:
    comp = config.get_component(name)
    return (comp.materialize if comp is not None and comp.materialize else None) or config.materialize


def _recorded_io(component: Component, state: CheckpointState, name: str, *, with_inputs: bool = True) -> ViewIO:
    """Declared views of a component, completed with the outputs its checkpoint record lists.

    Without ``with_inputs`` its inputs are not asked for (and left unknown).
    """
    io = ViewIO.of(component) if with_inputs else ViewIO(None, ViewIO.outputs_of(component))
    record = state.components.get(name)
    if io.outputs is None and record is not None and state.has_completed(name):
        return ViewIO(io.inputs, tuple(o["view"] for o in record.outputs if o.get("view")))
    return io


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
        return {} if spark is None else temp_views(spark)

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
            self.hooks._io[config.name] = io
            return
        new = changed_views(self._before, self._temp_views()) if io.outputs is None else []
        if io.outputs is None:
            self.io[config.name] = ViewIO(io.inputs, tuple(new))
        self._refresh_unknown_inputs()
        self.hooks._save_views(self.runner, config, component, self.io, new)
