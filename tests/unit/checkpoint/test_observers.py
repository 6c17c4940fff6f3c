"""The recorder tells observer hooks about checkpoint writes; an observer that raises never fails the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ppf.checkpoint import CheckpointedRun, InMemoryCheckpointStore
from airflow_ppf.runner import PipelineResultStatus
from tests.unit.checkpoint.conftest import MakeConfig
from tests.unit.checkpoint.support import chain


class Watcher:
    """Records what it hears; with ``fail=True`` every call raises after recording."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.writes: list[float] = []
        self.completed: list[str] = []

    def on_checkpoint_written(self, seconds: float) -> None:
        self.writes.append(seconds)
        if self.fail:
            raise RuntimeError("observer broke")

    def after_component(self, config: Any, index: int, total: int, duration_ms: int) -> None:
        self.completed.append(config.name)
        if self.fail:
            raise RuntimeError("observer broke")


def test_observers_hear_every_checkpoint_write(make_config: MakeConfig) -> None:
    store = InMemoryCheckpointStore()
    watcher = Watcher()
    run = CheckpointedRun(make_config(chain("a", "b")), store, "r1", hooks=[watcher])
    assert run.run().status is PipelineResultStatus.SUCCESS
    # begin, one per component, end of the attempt.
    assert len(watcher.writes) == 4
    assert all(s >= 0 for s in watcher.writes)
    assert watcher.completed == ["a", "b"]


def test_an_observer_that_raises_is_logged_and_ignored(
    make_config: MakeConfig, caplog: pytest.LogCaptureFixture, run_log: Path
) -> None:
    store = InMemoryCheckpointStore()
    watcher = Watcher(fail=True)
    run = CheckpointedRun(make_config(chain("a", "b")), store, "r1", hooks=[watcher])
    assert run.run().status is PipelineResultStatus.SUCCESS
    assert run_log.read_text().split() == ["a", "b"]
    assert len(watcher.writes) == 4
    assert "Watcher.on_checkpoint_written raised RuntimeError: observer broke (ignored)" in caplog.text
    state = store.load("r1", "demo")
    assert state is not None
    assert state.completed_set() == {"a", "b"}
