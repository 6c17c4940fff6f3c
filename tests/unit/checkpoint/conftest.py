"""Fixtures of the checkpoint tests: run logs, pipeline builders and stores (local files and in-memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner.checkpoint import CheckpointStore, InMemoryCheckpointStore, LocalCheckpointStore
from tests.unit.checkpoint.support import Spec, pipeline_dict

MakeConfig = Callable[..., PipelineConfig]


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    """The file every test component appends its name to."""
    return tmp_path / "ran.log"


@pytest.fixture
def make_config(run_log: Path) -> MakeConfig:
    """Build a :class:`PipelineConfig` of test components: ``make_config(chain("a", "b"), name=...)``."""

    def build(specs: Sequence[Spec], name: str = "demo") -> PipelineConfig:
        return PipelineConfig.from_dict(pipeline_dict(run_log, specs, name))

    return build


@pytest.fixture
def local_store(tmp_path: Path) -> LocalCheckpointStore:
    return LocalCheckpointStore(tmp_path / "checkpoints")


@pytest.fixture
def memory_store() -> InMemoryCheckpointStore:
    return InMemoryCheckpointStore()


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    """Each store implementation in turn."""
    if request.param == "local":
        yield LocalCheckpointStore(tmp_path / "checkpoints")
    else:
        yield InMemoryCheckpointStore()
