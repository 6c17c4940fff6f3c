"""Running pipelines: the runner, its results, lifecycle hooks and resilience.

The seed's checkpoint names (``CheckpointHooks``, ``LocalCheckpointStore``, ``CheckpointState``,
``compute_pipeline_fingerprint``, ``load_checkpoint_for_resume``...) are importable from here too, as
pyspark-pipeline-framework documents them. They live in :mod:`airflow_ppf.checkpoint`, the layer above
this one, and are imported from there on first use (the engine itself never imports checkpoint code).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_ppf.runner.hooks import (
    CompositeHooks,
    CriticalHookError,
    LoggingHooks,
    MeterRegistry,
    MetricsHooks,
    NoOpHooks,
    PipelineHooks,
)
from airflow_ppf.runner.resilience import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    RetryExecutor,
    with_retry,
)
from airflow_ppf.runner.results import ComponentResult, ComponentStatus, PipelineResult, PipelineResultStatus
from airflow_ppf.runner.simple_runner import SimplePipelineRunner
from airflow_ppf.runner.validation import (
    DryRunResult,
    ValidationError,
    ValidationPhase,
    ValidationResult,
    dry_run,
    list_available_components,
    validate_component_class,
    validate_pipeline,
)

if TYPE_CHECKING:
    from airflow_ppf.checkpoint import (
        CheckpointCorruptError,
        CheckpointFencedError,
        CheckpointHooks,
        CheckpointState,
        CheckpointStore,
        InMemoryCheckpointStore,
        LocalCheckpointStore,
        PipelineConfigChangedError,
        ResumePlan,
        compute_pipeline_fingerprint,
        load_checkpoint_for_resume,
        plan_resume,
    )

#: Names served from :mod:`airflow_ppf.checkpoint` (the seed's API).
CHECKPOINT_NAMES = (
    "CheckpointCorruptError",
    "CheckpointFencedError",
    "CheckpointHooks",
    "CheckpointState",
    "CheckpointStore",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
    "PipelineConfigChangedError",
    "ResumePlan",
    "compute_pipeline_fingerprint",
    "load_checkpoint_for_resume",
    "plan_resume",
)


def __getattr__(name: str) -> Any:
    if name in CHECKPOINT_NAMES:
        return getattr(importlib.import_module("airflow_ppf.checkpoint"), name)
    raise AttributeError(f"module 'airflow_ppf.runner' has no attribute {name!r}")


__all__ = [
    "CheckpointCorruptError",
    "CheckpointFencedError",
    "CheckpointHooks",
    "CheckpointState",
    "CheckpointStore",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "ComponentResult",
    "ComponentStatus",
    "CompositeHooks",
    "CriticalHookError",
    "DryRunResult",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
    "LoggingHooks",
    "MeterRegistry",
    "MetricsHooks",
    "NoOpHooks",
    "PipelineConfigChangedError",
    "PipelineHooks",
    "PipelineResult",
    "PipelineResultStatus",
    "ResumePlan",
    "RetryExecutor",
    "SimplePipelineRunner",
    "ValidationError",
    "ValidationPhase",
    "ValidationResult",
    "compute_pipeline_fingerprint",
    "dry_run",
    "list_available_components",
    "load_checkpoint_for_resume",
    "plan_resume",
    "validate_component_class",
    "validate_pipeline",
    "with_retry",
]
