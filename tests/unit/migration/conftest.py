"""Fixtures of the migration suite: the upstream-style project of ``upstream_project``, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_ppf.config import PipelineConfig
from tests.unit.migration import upstream_project

CONF = Path(__file__).with_name("upstream_pipeline.conf")


@pytest.fixture(autouse=True)
def _reset_project() -> Iterator[None]:
    upstream_project.EVENTS.clear()
    upstream_project.OPEN.clear()
    upstream_project.Transform.broken = True
    yield
    upstream_project.Transform.broken = True


@pytest.fixture
def events() -> list[str]:
    """What the project's components did in this test, in order."""
    return upstream_project.EVENTS


@pytest.fixture
def upstream_config() -> PipelineConfig:
    """The project's pipeline, loaded from its unchanged ``.conf`` file."""
    return PipelineConfig.from_file(CONF)
