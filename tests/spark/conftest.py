"""Fixtures for the Spark tier: run a component on the test session, find leftovers of atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from airflow_ppf.components import DataFlow

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

F = TypeVar("F", bound=DataFlow)


@pytest.fixture
def run(spark: SparkSession) -> Callable[[F], F]:
    """Inject the test's session into a component, run it and hand it back."""

    def _run(component: F) -> F:
        component.set_spark_session(spark)
        component.run()
        return component

    return _run


def leftovers(path: Path) -> list[str]:
    """Names of the ``<path>.ppf-*`` siblings an atomic write may leave next to ``path``."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.ppf-"))


@pytest.fixture(name="leftovers")
def leftovers_fixture() -> Callable[[Path], list[str]]:
    """The :func:`leftovers` helper as a fixture."""
    return leftovers
