"""The checkpointed run: one attempt of a pipeline that records its progress and resumes from it.

``PipelineOperator`` and ``ppf run`` both run pipelines through :class:`CheckpointedRun`, in the same
steps: load the checkpoint once → plan (:mod:`airflow_ppf.checkpoint.planner`) → forget the checkpoint
when the attempt starts over → restore the saved views skipped components produced → run → record. What
differs between them (how a retry is told from a fresh start, where logs go, how errors are shown) is
passed in; nothing of the decision is made twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow_ppf.checkpoint.errors import (
    CheckpointChangedError,
    CheckpointCorruptError,
    CheckpointFencedError,
    CheckpointVersionError,
)
from airflow_ppf.checkpoint.fingerprint import compute_pipeline_fingerprint
from airflow_ppf.checkpoint.naming import check_run_id
from airflow_ppf.checkpoint.planner import ResumePlan, ResumePolicy, fresh_start_reason, plan_resume
from airflow_ppf.checkpoint.recorder import DEFAULT, CheckpointHooks, _Default
from airflow_ppf.checkpoint.saved_views import SavedViews
from airflow_ppf.checkpoint.state import CheckpointState
from airflow_ppf.checkpoint.stores import CheckpointStore
from airflow_ppf.runner.hooks import CompositeHooks, CriticalHookError
from airflow_ppf.runner.report import describe_error
from airflow_ppf.runner.simple_runner import SimplePipelineRunner
from airflow_ppf.spark.fs import is_local_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from airflow_ppf.config.models import PipelineConfig
    from airflow_ppf.runner.results import PipelineResult
    from airflow_ppf.spark.session import SparkSessionManager

__all__ = ["CheckpointedRun", "forget_checkpoint"]

log = logging.getLogger(__name__)

#: How often an attempt plans again when another attempt records progress between its read of the
#: checkpoint and its first write (each time, it reads the new record and plans from it).
_MAX_REPLANS = 3


def _no_spark() -> SparkSession:
    raise RuntimeError("local saved views are deleted without Spark")


def forget_checkpoint(store: CheckpointStore, state: CheckpointState, data_location: str | None = None) -> list[str]:
    """Delete a checkpoint and its saved views; return what was done, for people.

    Saved views on a local path are deleted here; on a remote file system (``hdfs://``, ``s3a://``) they
    are left for the run's next save to clean up, and the message says where they are.
    """
    done: list[str] = []
    location = state.data_location or data_location
    if location:
        views = SavedViews(location, state.pipeline_name, state.run_id, _no_spark)
        if not is_local_uri(location):
            done.append(f"saved views under {views.run_root} are on a remote file system: delete them there")
        elif views.delete_all():
            done.append(f"deleted saved views under {views.run_root}")
    if store.delete(state.run_id, state.pipeline_name):
        done.append(f"deleted the checkpoint of run {state.run_id!r}")
    return done


class CheckpointedRun:
    """One attempt of a pipeline, checkpointed: load once → plan → forget → restore → run → record.

    Args:
        config: the pipeline.
        store: where its checkpoint lives.
        run_id: the checkpoint's run id (the same for every attempt of one run).
        policy: how this attempt treats the checkpoint it finds (resume, config changes, clears).
        attempt: this attempt's number (Airflow's try number); default: the stored attempt plus one.
        max_tries: Airflow's ``max_tries``: a change since the last attempt means the task was cleared.
        attempt_meta: facts kept with the attempt in the checkpoint's history.
        data_location: where views are saved for a later attempt (default: the store's data folder).
        keep_saved_views: keep saved views after the pipeline completes.
        on_corrupt_checkpoint: ``fail`` (raise :class:`CheckpointCorruptError`) or ``restart`` (move the
            damaged checkpoint aside, when the store can, and start from the beginning).
        progress: the hook that reports progress to people (the task log, the console); it hears every
            event before the checkpoint is written.
        hooks: further lifecycle hooks, after the checkpoint; those that implement
            :class:`~airflow_ppf.checkpoint.recorder.CheckpointObserver` methods also hear about checkpoint
            writes and saved and restored views.
        fail_fast, spark_manager, context: passed to :class:`SimplePipelineRunner`.
    """

    def __init__(
        self,
        config: PipelineConfig,
        store: CheckpointStore,
        run_id: str,
        *,
        policy: ResumePolicy | None = None,
        attempt: int | None = None,
        max_tries: int | None = None,
        attempt_meta: Mapping[str, Any] | None = None,
        data_location: str | _Default | None = DEFAULT,
        keep_saved_views: bool = False,
        on_corrupt_checkpoint: Literal["fail", "restart"] = "fail",
        progress: object | None = None,
        hooks: Sequence[object] = (),
        fail_fast: bool = True,
        spark_manager: SparkSessionManager | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.run_id = check_run_id(run_id)
        self.policy = policy or ResumePolicy()
        self.attempt = attempt
        self.max_tries = max_tries
        self.attempt_meta = dict(attempt_meta or {})
        self.data_location = data_location
        self.keep_saved_views = keep_saved_views
        self.on_corrupt_checkpoint = on_corrupt_checkpoint
        self.progress = progress
        self.hooks = list(hooks)
        self.fail_fast = fail_fast
        self.spark_manager = spark_manager
        self.context = dict(context or {})
        self.fingerprint = compute_pipeline_fingerprint(config)
        #: The checkpoint this attempt resumes from (``None``: none, or forgotten), once prepared.
        self.state: CheckpointState | None = None
        #: What was done to start over (checkpoint deleted, damaged checkpoint moved aside...).
        self.forgotten: list[str] = []
        self._plan: ResumePlan | None = None
        self._replanned: list[str] = []
        self._held: contextlib.ExitStack | None = None
        self.recorder: CheckpointHooks | None = None
        self.runner: SimplePipelineRunner | None = None

    # -- before anything runs --------------------------------------------------------------------------

    def prepare(self) -> ResumePlan:
        """Load the checkpoint (once), decide what to skip, and forget it if this attempt starts over.

        Before reading, a store that can (:class:`~airflow_ppf.checkpoint.stores.LocalCheckpointStore`)
        checks that the checkpoint can be written at all, and marks the run as running until :meth:`close`.

        Raises:
            CheckpointLocationError: the store's folder cannot be used (nothing ran, nothing was written).
            CheckpointCorruptError: the checkpoint is damaged and ``on_corrupt_checkpoint`` is ``fail``.
            CheckpointVersionError: written by a newer airflow-ppf and ``on_corrupt_checkpoint`` is ``fail``.
            CheckpointFencedError: ``attempt`` is not newer than the attempt the checkpoint records.
            CheckpointError: the checkpoint cannot be read (an unreachable store).
            PipelineConfigChangedError: the pipeline changed and the policy says ``fail``.
        """
        if self._plan is not None:
            return self._plan
        self._hold_store()
        state = self._load()
        reason = fresh_start_reason(state, self.policy, attempt=self.attempt, max_tries=self.max_tries)
        plan = plan_resume(
            state,
            self.config,
            on_config_change=self.policy.on_config_change,
            run_id=self.run_id,
            fresh_start=reason,
            max_tries=self.max_tries,
        )
        if self.forgotten:
            plan.notes.extend(self.forgotten)
        plan.notes.extend(self._replanned)
        if state is not None and reason is not None and self.policy.forget_on_fresh_start:
            location = self.data_location if isinstance(self.data_location, str) else None
            self.forgotten.extend(forget_checkpoint(self.store, state, location))
            log.info("Starting from the beginning: %s (%s)", reason, "; ".join(self.forgotten))
            state = None
        if state is not None and self.attempt is not None and state.attempts and self.attempt <= state.attempt:
            # Refused now, before anything runs, rather than by the store at the first write.
            raise CheckpointFencedError(self.run_id, state.attempt, state.writer, self.attempt, "this process")
        self.state = state
        self._plan = plan
        return plan

    def _hold_store(self) -> None:
        """Check the store can be written and mark the run as running, where the store can (once)."""
        if self._held is not None:
            return
        ensure_writable = getattr(self.store, "ensure_writable", None)
        if callable(ensure_writable):
            ensure_writable(self.run_id, self.config.name)
        held = contextlib.ExitStack()
        running = getattr(self.store, "running", None)
        if callable(running):
            held.enter_context(running(self.run_id, self.config.name))
        self._held = held

    def _load(self) -> CheckpointState | None:
        try:
            return self.store.load(self.run_id, self.config.name)
        except (CheckpointCorruptError, CheckpointVersionError) as exc:
            quarantine = getattr(self.store, "quarantine", None)
            if self.on_corrupt_checkpoint != "restart" or quarantine is None:
                raise
            moved = quarantine(self.run_id, self.config.name)
            log.warning("Damaged checkpoint moved aside (%s); starting over: %s", moved, exc)
            self.forgotten.append(f"damaged checkpoint moved aside to {', '.join(map(str, moved))}")
            return None

    @property
    def attempt_number(self) -> int:
        """The number this attempt is recorded with."""
        if self.attempt is not None:
            return self.attempt
        return (self.state.attempt if self.state is not None else 0) + 1

    @property
    def plan(self) -> ResumePlan:
        """The plan this attempt follows: the recorded one once the run is prepared, else the first decision."""
        if self.recorder is not None and self.recorder.plan is not None:
            return self.recorder.plan
        return self.prepare()

    # -- running ---------------------------------------------------------------------------------------

    def run(self) -> PipelineResult:
        """Run the attempt (preparing it first if needed) and return its result.

        The plan and the state this attempt writes come from one read of the checkpoint: when another
        attempt of the run records progress after that read, the first write refuses
        (:class:`CheckpointChangedError`, before any component ran) and the attempt reads and plans again.

        Raises:
            ConfigError: a component cannot be imported or built (nothing was recorded).
            CriticalHookError: the checkpoint could not be written (its ``result`` holds the run so far).
            BaseException: an interruption, after the checkpoint was marked interrupted.
        """
        for replans in range(_MAX_REPLANS + 1):
            try:
                return self._run_once(self.prepare())
            except CriticalHookError as exc:
                if not isinstance(exc.error, CheckpointChangedError) or replans == _MAX_REPLANS:
                    raise
                self._plan_again(exc.error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _plan_again(self, changed: CheckpointChangedError) -> None:
        """Forget the plan made from a checkpoint that changed before this attempt's first write."""
        note = f"planned again: {changed}"
        log.warning("Nothing ran yet; %s", note)
        self._replanned.append(note)
        self._plan = None
        self.state = None
        if self.runner is not None and self.spark_manager is None:
            self.spark_manager = self.runner.spark_manager  # keep the session (and its restored views)

    def _run_once(self, plan: ResumePlan) -> PipelineResult:
        self.recorder = CheckpointHooks(
            self.store,
            run_id=self.run_id,
            pipeline_fingerprint=self.fingerprint,
            attempt=self.attempt_number,
            on_config_change=self.policy.on_config_change,
            resume_plan=plan,
            data_location=self.data_location,
            keep_saved_views=self.keep_saved_views,
            attempt_meta=self.attempt_meta,
            loaded_state=self.state,
            observers=[self.progress, *self.hooks],
        )
        hooks = CompositeHooks(self.progress, self.recorder, *self.hooks)
        self.runner = SimplePipelineRunner(
            self.config,
            hooks=hooks,
            fail_fast=self.fail_fast,
            spark_manager=self.spark_manager,
            context={"run_id": self.run_id, "attempt": self.attempt_number, **self.context},
        )
        return self.runner.run(plan=plan)

    def cancel(self) -> None:
        """Stop a run in progress from another thread (its Spark jobs are cancelled)."""
        if self.runner is not None:
            self.runner.cancel()

    def close(self) -> None:
        """Stop the SparkSession the run created; the run no longer counts as running."""
        try:
            if self.runner is not None:
                self.runner.close()
        finally:
            if self._held is not None:
                self._held.close()
                self._held = None

    # -- what people see -------------------------------------------------------------------------------

    def summary(self, result: PipelineResult | None) -> dict[str, Any]:
        """A compact JSON-friendly summary of the attempt: its recorded plan and what happened."""
        plan = self.plan
        out: dict[str, Any] = {
            "pipeline": self.config.name,
            "run_id": self.run_id,
            "fingerprint": self.fingerprint,
            "attempt": self.attempt_number,
            "resumed": plan.is_resume,
            "time_saved_s": round(plan.time_saved_ms / 1000, 3),
            "time_saved_gross_s": round(plan.time_saved_gross_ms / 1000, 3),
            "restore_s": round((plan.restore_ms or 0) / 1000, 3),
            "plan": plan.headline(),
        }
        if plan.reruns:
            out["reruns"] = plan.reruns
        if result is not None:
            out.update(
                status=result.status.value,
                duration_s=round(result.total_duration_seconds, 3),
                ran=[
                    {"name": r.component_name, "duration_s": round(r.duration_seconds, 3)}
                    for r in result.component_results
                    if r.success
                ],
                skipped=result.skipped_components,
                failed=[{"name": name, "error": describe_error(err)} for name, err in result.failed_components],
            )
        return out
