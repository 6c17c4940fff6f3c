"""CheckpointHooks: record a run's progress in a :class:`CheckpointStore`, one durable write per step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_ppf.runner.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
)
from airflow_ppf.runner.checkpoint.resume import OnConfigChange, ResumePlan
from airflow_ppf.runner.checkpoint.state import CheckpointState, CheckpointStatus, new_writer_id
from airflow_ppf.runner.checkpoint.stores import CheckpointStore
from airflow_ppf.runner.hooks import NoOpHooks
from airflow_ppf.runner.results import PipelineResultStatus

if TYPE_CHECKING:
    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.results import PipelineResult

__all__ = ["CheckpointHooks"]

log = logging.getLogger(__name__)

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
        self._component_fps: dict[str, str] = {}
        self._outputs: dict[str, list[dict[str, Any]]] = {}

    def _save(self) -> None:
        assert self.state is not None
        self.store.save(self.state)

    def before_pipeline(self, config: PipelineConfig) -> None:
        fingerprint = self.pipeline_fingerprint or compute_pipeline_fingerprint(config)
        self._component_fps = compute_component_fingerprints(config)
        state = self.store.load(self.run_id, config.name)
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
        )
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
        self.state.finish_attempt(_FINAL_STATUS.get(result.status, CheckpointStatus.FAILED))
        self._save()
