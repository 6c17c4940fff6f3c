"""Running pipelines: the runner, its results, lifecycle hooks, resilience, and checkpoint & resume."""

from __future__ import annotations

from airflow_ppf.runner.checkpoint import (
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
from airflow_ppf.runner.hooks import (
    CompositeHooks,
    CriticalHookError,
    LoggingHooks,
    MetricsHooks,
    NoOpHooks,
    PipelineHooks,
)
from airflow_ppf.runner.resilience import CircuitBreakerOpenError, CircuitState
from airflow_ppf.runner.results import ComponentResult, ComponentStatus, PipelineResult, PipelineResultStatus
from airflow_ppf.runner.simple_runner import SimplePipelineRunner

__all__ = [
    "CheckpointCorruptError",
    "CheckpointFencedError",
    "CheckpointHooks",
    "CheckpointState",
    "CheckpointStore",
    "CircuitBreakerOpenError",
    "CircuitState",
    "ComponentResult",
    "ComponentStatus",
    "CompositeHooks",
    "CriticalHookError",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
    "LoggingHooks",
    "MetricsHooks",
    "NoOpHooks",
    "PipelineConfigChangedError",
    "PipelineHooks",
    "PipelineResult",
    "PipelineResultStatus",
    "ResumePlan",
    "SimplePipelineRunner",
    "compute_pipeline_fingerprint",
    "load_checkpoint_for_resume",
    "plan_resume",
]
