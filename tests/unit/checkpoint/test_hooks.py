"""CheckpointHooks in a run: progress kept across failures, loud failures of the store, interruptions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ppf.config import ComponentConfig, PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CheckpointState,
    CheckpointStore,
    CompositeHooks,
    CriticalHookError,
    InMemoryCheckpointStore,
    LocalCheckpointStore,
    LoggingHooks,
    MetricsHooks,
    NoOpHooks,
    PipelineResult,
    PipelineResultStatus,
    SimplePipelineRunner,
    load_checkpoint_for_resume,
)
from airflow_ppf.runner.checkpoint import CheckpointStatus
from tests.unit.checkpoint.components import read_log
from tests.unit.checkpoint.conftest import MakeConfig
from tests.unit.checkpoint.support import chain

RUN_ID = "run-001"


def attempt_run(
    store: CheckpointStore, config: PipelineConfig, run_id: str = RUN_ID, **hook_args: object
) -> PipelineResult:
    """One Airflow try: a fresh runner and hooks that resume from whatever the store holds."""
    completed = load_checkpoint_for_resume(store, run_id, config)
    hooks = CompositeHooks(LoggingHooks(), CheckpointHooks(store, run_id=run_id, **hook_args))  # type: ignore[arg-type]
    return SimplePipelineRunner(config, hooks=hooks).run(completed_components=completed)


def test_progress_survives_a_second_failure(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, run_log: Path
) -> None:
    config = make_config(
        chain(
            "a",
            "b",
            "c",
            "d",
            c={"fail_until": str(tmp_path / "c.once"), "fail_message": "c broke"},
            d={"fail_until": str(tmp_path / "d.once"), "fail_message": "d broke\nsecond line"},
        )
    )

    first = attempt_run(store, config)
    assert first.completed_components == ["a", "b"]
    assert [n for n, _ in first.failed_components] == ["c"]

    second = attempt_run(store, config)
    assert second.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert second.skipped_components == ["a", "b"]
    assert second.completed_components == ["c"]
    assert [n for n, _ in second.failed_components] == ["d"]

    state = store.load(RUN_ID)
    assert state is not None
    assert state.completed_components == ["a", "b", "c"]
    assert state.failed_component == "d"
    assert state.status == CheckpointStatus.FAILED
    one, two = state.attempts
    assert (one.attempt, one.ran, one.skipped, one.failed) == (1, ["a", "b"], [], "c")
    assert (one.error_type, one.error_message, one.status) == ("RuntimeError", "c broke", "failed")
    assert (two.attempt, two.ran, two.skipped, two.failed) == (2, ["c"], ["a", "b"], "d")
    assert (two.error_type, two.error_message, two.status) == ("RuntimeError", "d broke", "failed")
    # The completion records keep the attempt that did the work.
    assert {n: r.attempt for n, r in state.components.items()} == {"a": 1, "b": 1, "c": 2}

    third = attempt_run(store, config)
    assert third.status is PipelineResultStatus.SUCCESS
    assert third.skipped_components == ["a", "b", "c"]
    assert Counter(read_log(run_log)) == {"a": 1, "b": 1, "c": 2, "d": 2}
    final = store.load(RUN_ID)
    assert final is not None
    assert final.status == CheckpointStatus.COMPLETED
    assert final.completed_components == ["a", "b", "c", "d"]
    assert [a.attempt for a in final.attempts] == [1, 2, 3]


def test_skipped_components_stay_recorded_when_nothing_else_changes(
    store: CheckpointStore, make_config: MakeConfig
) -> None:
    config = make_config(chain("a", "b"))
    attempt_run(store, config)

    again = attempt_run(store, config)

    assert again.status is PipelineResultStatus.SUCCESS
    assert again.skipped_components == ["a", "b"]
    assert again.completed_components == []
    state = store.load(RUN_ID)
    assert state is not None
    assert state.completed_components == ["a", "b"]
    assert state.attempts[-1].skipped == ["a", "b"]
    assert state.attempts[-1].status == CheckpointStatus.COMPLETED


def test_keyboard_interrupt_leaves_an_interrupted_checkpoint_that_resumes(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, run_log: Path
) -> None:
    config = make_config(chain("a", "b", "c", b={"interrupt_until": str(tmp_path / "b.once")}))

    with pytest.raises(KeyboardInterrupt):
        attempt_run(store, config)

    state = store.load(RUN_ID)
    assert state is not None
    assert state.status == CheckpointStatus.INTERRUPTED
    assert state.completed_components == ["a"]
    assert state.attempts[-1].status == CheckpointStatus.INTERRUPTED
    assert state.attempts[-1].ended_at
    assert load_checkpoint_for_resume(store, RUN_ID, config) == {"a"}

    result = attempt_run(store, config)

    assert result.status is PipelineResultStatus.SUCCESS
    assert result.skipped_components == ["a"]
    assert read_log(run_log) == ["a", "b", "b", "c"]
    final = store.load(RUN_ID)
    assert final is not None
    assert final.status == CheckpointStatus.COMPLETED
    assert [a.status for a in final.attempts] == ["interrupted", "completed"]


# -- a checkpoint that cannot be written fails the run -----------------------------------------------------


class FailingStore(InMemoryCheckpointStore):
    """An in-memory store whose ``save`` raises ``OSError`` when ``fails(state)`` is true."""

    def __init__(self, fails: Callable[[CheckpointState], bool]) -> None:
        super().__init__()
        self.fails = fails

    def save(self, state: CheckpointState) -> None:
        if self.fails(state):
            raise OSError(28, "No space left on device")
        super().save(state)


def _first_save(state: CheckpointState) -> bool:
    return True


def _after_b(state: CheckpointState) -> bool:
    return "b" in state.completed_components


def _final(state: CheckpointState) -> bool:
    return state.status != CheckpointStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("fails", "method", "ran"),
    [
        pytest.param(_first_save, "before_pipeline", [], id="before-pipeline"),
        pytest.param(_after_b, "after_component", ["a", "b"], id="after-component"),
        pytest.param(_final, "after_pipeline", ["a", "b", "c"], id="after-pipeline"),
    ],
)
def test_failing_save_fails_the_run(
    fails: Callable[[CheckpointState], bool], method: str, ran: list[str], make_config: MakeConfig, run_log: Path
) -> None:
    config = make_config(chain("a", "b", "c"))
    store = FailingStore(fails)
    metrics = MetricsHooks()
    runner = SimplePipelineRunner(config, hooks=CompositeHooks(LoggingHooks(), CheckpointHooks(store, RUN_ID), metrics))

    with pytest.raises(CriticalHookError, match=rf"CheckpointHooks\.{method} failed: OSError: .*No space left") as info:
        runner.run()

    assert info.value.result is not None
    assert info.value.result.status is not PipelineResultStatus.SUCCESS
    assert isinstance(info.value.error, OSError)
    assert read_log(run_log) == ran
    # Observer hooks still heard that the run ended.
    assert metrics.pipeline_duration_ms is not None


def test_component_whose_checkpoint_was_not_saved_is_reported_failed(make_config: MakeConfig) -> None:
    config = make_config(chain("a", "b", "c"))
    store = FailingStore(_after_b)

    with pytest.raises(CriticalHookError) as info:
        SimplePipelineRunner(config, hooks=CheckpointHooks(store, RUN_ID)).run()

    result = info.value.result
    assert result is not None
    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    b = result.get("b")
    assert b is not None
    assert b.status == "failed"
    assert b.reason == "its checkpoint was not saved"
    state = store.load(RUN_ID)
    assert state is not None
    assert state.completed_components == ["a"]


def test_unwritable_store_directory_fails_the_run(tmp_path: Path, make_config: MakeConfig, run_log: Path) -> None:
    # A regular file where the store's folder should be: every write fails, also as root.
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    store = LocalCheckpointStore(blocked)
    runner = SimplePipelineRunner(make_config(chain("a", "b")), hooks=CheckpointHooks(store, RUN_ID))

    with pytest.raises(CriticalHookError, match=r"CheckpointHooks\.before_pipeline failed") as info:
        runner.run()

    assert info.value.result is not None
    assert info.value.result.status is PipelineResultStatus.FAILURE
    assert read_log(run_log) == []


def test_local_store_failing_mid_run_fails_the_run(tmp_path: Path, make_config: MakeConfig, run_log: Path) -> None:
    """A real I/O error after some progress: the journal cannot be opened any more."""
    store = LocalCheckpointStore(tmp_path / "checkpoints")

    class Saboteur(NoOpHooks):
        def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
            journal = store.paths(RUN_ID, "demo")[1]
            journal.unlink(missing_ok=True)
            journal.mkdir()

    hooks = CompositeHooks(Saboteur(), CheckpointHooks(store, RUN_ID))
    runner = SimplePipelineRunner(make_config(chain("a", "b")), hooks=hooks)

    with pytest.raises(CriticalHookError, match=r"after_component failed: IsADirectoryError") as info:
        runner.run()

    assert info.value.result is not None
    assert info.value.result.status is PipelineResultStatus.FAILURE
    assert read_log(run_log) == ["a"]


@pytest.mark.parametrize(
    ("run_id", "error", "match"),
    [
        pytest.param(20261127, TypeError, r"run_id must be a string, got int \(20261127\)", id="int"),
        pytest.param(b"run-1", TypeError, r"run_id must be a string, got bytes \(b'run-1'\)", id="bytes"),
        pytest.param(None, TypeError, r"run_id must be a string, got NoneType \(None\)", id="none"),
        pytest.param("", ValueError, r"run_id must not be empty", id="empty"),
        pytest.param("  ", ValueError, r"run_id must not be empty", id="blank"),
    ],
)
def test_a_run_id_that_is_not_a_string_is_refused_at_construction(
    local_store: LocalCheckpointStore, make_config: MakeConfig, run_id: object, error: type[Exception], match: str
) -> None:
    from airflow_ppf.checkpoint import CheckpointedRun

    with pytest.raises(error, match=match):
        CheckpointHooks(local_store, run_id=run_id)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        CheckpointedRun(make_config(chain("a")), local_store, run_id)  # type: ignore[arg-type]
    assert not local_store.base_dir.exists()
