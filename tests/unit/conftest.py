"""Small named fixtures for the unit tier: pipelines made of the test components in ``tests.helpers``.

Nothing here starts a JVM or imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_ppf.config import PipelineConfig
from tests.helpers import components
from tests.helpers.components import CLOCK, FakeClock
from tests.helpers.hooks import RecordingHooks
from tests.helpers.pipelines import component, pipeline


@pytest.fixture(autouse=True)
def _reset_test_components() -> Iterator[None]:
    """Give every test empty call records, an untouched clock and fresh blocking events."""
    components.CALLS.clear()
    components.SparkStep.sessions.clear()
    components.Blocking.started.clear()
    components.Blocking.released.clear()
    CLOCK.now = 1000.0
    yield
    # Never leave a Blocking component waiting in a background thread.
    components.Blocking.released.set()


@pytest.fixture
def calls() -> list[str]:
    """What the test components did in this test, in order (``run:<name>``...)."""
    return components.CALLS


@pytest.fixture
def clock() -> FakeClock:
    """The fake monotonic clock the test components advance; hand it to runners as ``clock=``."""
    return CLOCK


@pytest.fixture
def hooks() -> RecordingHooks:
    """Hooks that record every event."""
    return RecordingHooks()


@pytest.fixture
def two_step_pipeline() -> PipelineConfig:
    """``read -> write``."""
    return pipeline(component("read"), component("write", depends_on=["read"]), name="two-step")


@pytest.fixture
def diamond_pipeline() -> PipelineConfig:
    """``a -> (b, c) -> d``."""
    return pipeline(
        component("a"),
        component("b", depends_on=["a"]),
        component("c", depends_on=["a"]),
        component("d", depends_on=["b", "c"]),
        name="diamond",
    )
