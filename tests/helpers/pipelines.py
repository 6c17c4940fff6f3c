"""Builders for small pipeline configs in tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_ppf.config import PipelineConfig
from tests.helpers.components import STEP


def component(
    name: str,
    *,
    depends_on: Iterable[str] = (),
    class_path: str = STEP,
    enabled: bool = True,
    retry: dict[str, Any] | None = None,
    circuit_breaker: dict[str, Any] | None = None,
    **config: Any,
) -> dict[str, Any]:
    """Return one component entry; extra keyword arguments become its ``config`` block."""
    entry: dict[str, Any] = {
        "name": name,
        "class_path": class_path,
        "depends_on": list(depends_on),
        "enabled": enabled,
        "config": config,
    }
    if retry is not None:
        entry["retry"] = retry
    if circuit_breaker is not None:
        entry["circuit_breaker"] = circuit_breaker
    return entry


def pipeline(*components: dict[str, Any], name: str = "test-pipeline", **extra: Any) -> PipelineConfig:
    """Build a validated :class:`PipelineConfig` from component entries."""
    return PipelineConfig.from_dict({"name": name, "components": list(components), **extra})


def no_wait_retry(max_attempts: int = 3, **overrides: Any) -> dict[str, Any]:
    """A retry block with zero delays, so retries cost no time."""
    return {"max_attempts": max_attempts, "initial_delay_seconds": 0, "max_delay_seconds": 0, "jitter": 0, **overrides}
