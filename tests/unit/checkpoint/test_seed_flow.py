"""The seed's documented checkpoint & resume flow, verbatim, with ``airflow_ppf`` for ``pyspark_pipeline_framework``."""

from __future__ import annotations

from pathlib import Path

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CheckpointState,
    CheckpointStore,
    CompositeHooks,
    LocalCheckpointStore,
    LoggingHooks,
    PipelineConfigChangedError,
    PipelineResultStatus,
    SimplePipelineRunner,
    compute_pipeline_fingerprint,
    load_checkpoint_for_resume,
)
from airflow_ppf.runner import checkpoint as checkpoint_pkg
from tests.unit.checkpoint.components import read_log
from tests.unit.checkpoint.support import chain, pipeline_dict


def test_public_names_are_the_same_objects_in_both_packages() -> None:
    assert checkpoint_pkg.LocalCheckpointStore is LocalCheckpointStore
    assert checkpoint_pkg.compute_pipeline_fingerprint is compute_pipeline_fingerprint
    assert checkpoint_pkg.PipelineConfigChangedError is PipelineConfigChangedError
    assert isinstance(LocalCheckpointStore(Path("/nonexistent")), CheckpointStore)


def test_documented_flow_resumes_after_a_failure(tmp_path: Path, run_log: Path) -> None:
    marker = tmp_path / "transform.failed-once"
    config = PipelineConfig.from_dict(
        pipeline_dict(run_log, chain("extract", "transform", "load", transform={"fail_until": str(marker)}))
    )

    store = LocalCheckpointStore(Path(tmp_path / "checkpoints"))
    fingerprint = compute_pipeline_fingerprint(config)
    checkpoint_hooks = CheckpointHooks(store, run_id="run-001", pipeline_fingerprint=fingerprint)
    hooks = CompositeHooks(LoggingHooks(), checkpoint_hooks)
    runner = SimplePipelineRunner(config, hooks=hooks)
    result = runner.run()

    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert result.completed_components == ["extract"]
    assert [name for name, _ in result.failed_components] == ["transform"]

    completed = load_checkpoint_for_resume(store, "run-001", config)
    assert completed == {"extract"}

    result = runner.run(completed_components=completed)

    assert result.status is PipelineResultStatus.SUCCESS
    assert result.skipped_components == ["extract"]
    assert result.completed_components == ["transform", "load"]
    # extract ran once, in the first run only; transform failed once and then ran again.
    assert read_log(run_log) == ["extract", "transform", "transform", "load"]

    state = store.load(run_id="run-001")
    assert state is not None
    assert state.pipeline_name == "demo"
    assert state.status == "completed"
    assert state.completed_components == ["extract", "transform", "load"]
    assert [a.attempt for a in state.attempts] == [1, 2]

    store.save(state)
    again = store.load(run_id="run-001")
    assert again == state
    assert load_checkpoint_for_resume(store, "run-001", config) == {"extract", "transform", "load"}


def test_hand_built_state_saves_and_loads_by_run_id_alone(tmp_path: Path, run_log: Path) -> None:
    config = PipelineConfig.from_dict(pipeline_dict(run_log, chain("extract", "transform", "load")))
    store = LocalCheckpointStore(Path(tmp_path / "checkpoints"))
    state = CheckpointState(
        run_id="run-002",
        pipeline_name=config.name,
        pipeline_fingerprint=compute_pipeline_fingerprint(config),
        completed_components=["extract"],
    )

    store.save(state)
    loaded = store.load(run_id="run-002")

    assert loaded is not None
    assert loaded.completed_components == ["extract"]
    assert loaded.pipeline_fingerprint == state.pipeline_fingerprint
    assert load_checkpoint_for_resume(store, "run-002", config) == {"extract"}
    result = SimplePipelineRunner(config).run(completed_components=load_checkpoint_for_resume(store, "run-002", config))
    assert result.skipped_components == ["extract"]
    assert read_log(run_log) == ["transform", "load"]
