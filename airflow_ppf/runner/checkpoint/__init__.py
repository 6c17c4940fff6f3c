"""Checkpoint & resume: state, durable stores, fingerprints, resume planning and the recording hook."""

from __future__ import annotations

from airflow_ppf.runner.checkpoint.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointFencedError,
    CheckpointNotFoundError,
    CheckpointVersionError,
    PipelineConfigChangedError,
)
from airflow_ppf.runner.checkpoint.fingerprint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
)
from airflow_ppf.runner.checkpoint.hooks import CheckpointHooks
from airflow_ppf.runner.checkpoint.resume import (
    ComponentPlan,
    OnConfigChange,
    PlanAction,
    ResumePlan,
    describe_changes,
    load_checkpoint_for_resume,
    plan_resume,
)
from airflow_ppf.runner.checkpoint.state import (
    SCHEMA_VERSION,
    AttemptRecord,
    CheckpointState,
    CheckpointStatus,
    ComponentRecord,
)
from airflow_ppf.runner.checkpoint.stores import (
    CheckpointInfo,
    CheckpointStore,
    InMemoryCheckpointStore,
    LocalCheckpointStore,
    safe_file_name,
)

__all__ = [
    "SCHEMA_VERSION",
    "AttemptRecord",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointFencedError",
    "CheckpointHooks",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointState",
    "CheckpointStatus",
    "CheckpointStore",
    "CheckpointVersionError",
    "ComponentPlan",
    "ComponentRecord",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
    "OnConfigChange",
    "PipelineConfigChangedError",
    "PlanAction",
    "ResumePlan",
    "compute_component_fingerprints",
    "compute_field_digests",
    "compute_pipeline_fingerprint",
    "describe_changes",
    "load_checkpoint_for_resume",
    "plan_resume",
    "safe_file_name",
]
