"""Checkpoint & resume: state, durable stores, fingerprints, the resume planner, saved views, the recorder,
edits from the checkpoint view, run ids, and the checkpointed run that puts them together.

This layer sits above the engine (:mod:`airflow_ppf.runner`), which knows nothing of checkpoints; the
Airflow-facing modules (operator, UI plugin, task-state store) and the CLI sit above it. The seed's names
are also importable from :mod:`airflow_ppf.runner` and :mod:`airflow_ppf.runner.checkpoint`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ppf.checkpoint.edits import NothingToRerunError, UnknownComponentError, rerun_from, reset_checkpoint
    from airflow_ppf.checkpoint.errors import (
        CheckpointBusyError,
        CheckpointChangedError,
        CheckpointCorruptError,
        CheckpointError,
        CheckpointFencedError,
        CheckpointLocationError,
        CheckpointLockLostError,
        CheckpointNotFoundError,
        CheckpointVersionError,
        PipelineConfigChangedError,
    )
    from airflow_ppf.checkpoint.fingerprint import (
        compute_component_fingerprints,
        compute_field_digests,
        compute_pipeline_fingerprint,
    )
    from airflow_ppf.checkpoint.naming import pipeline_run_id, safe_file_name
    from airflow_ppf.checkpoint.planner import (
        ComponentPlan,
        OnConfigChange,
        PlanAction,
        ResumePlan,
        ResumePolicy,
        describe_changes,
        fresh_start_reason,
        load_checkpoint_for_resume,
        plan_resume,
        predict_next_attempt,
    )
    from airflow_ppf.checkpoint.recorder import CheckpointHooks
    from airflow_ppf.checkpoint.run import CheckpointedRun, forget_checkpoint
    from airflow_ppf.checkpoint.saved_views import SavedViewDamagedError
    from airflow_ppf.checkpoint.state import (
        SCHEMA_VERSION,
        AttemptRecord,
        CheckpointState,
        CheckpointStatus,
        ComponentRecord,
    )
    from airflow_ppf.checkpoint.stores import (
        CheckpointInfo,
        CheckpointStore,
        InMemoryCheckpointStore,
        LocalCheckpointStore,
    )

#: Where each public name lives; imported on first use, so that importing one module of this package
#: (e.g. :mod:`airflow_ppf.checkpoint.naming` from a DAG file's operator) does not import them all.
_HOMES = {
    "AttemptRecord": "airflow_ppf.checkpoint.state",
    "CheckpointBusyError": "airflow_ppf.checkpoint.errors",
    "CheckpointChangedError": "airflow_ppf.checkpoint.errors",
    "CheckpointCorruptError": "airflow_ppf.checkpoint.errors",
    "CheckpointError": "airflow_ppf.checkpoint.errors",
    "CheckpointFencedError": "airflow_ppf.checkpoint.errors",
    "CheckpointHooks": "airflow_ppf.checkpoint.recorder",
    "CheckpointInfo": "airflow_ppf.checkpoint.stores",
    "CheckpointLocationError": "airflow_ppf.checkpoint.errors",
    "CheckpointLockLostError": "airflow_ppf.checkpoint.errors",
    "CheckpointNotFoundError": "airflow_ppf.checkpoint.errors",
    "CheckpointState": "airflow_ppf.checkpoint.state",
    "CheckpointStatus": "airflow_ppf.checkpoint.state",
    "CheckpointStore": "airflow_ppf.checkpoint.stores",
    "CheckpointVersionError": "airflow_ppf.checkpoint.errors",
    "CheckpointedRun": "airflow_ppf.checkpoint.run",
    "ComponentPlan": "airflow_ppf.checkpoint.planner",
    "ComponentRecord": "airflow_ppf.checkpoint.state",
    "InMemoryCheckpointStore": "airflow_ppf.checkpoint.stores",
    "LocalCheckpointStore": "airflow_ppf.checkpoint.stores",
    "NothingToRerunError": "airflow_ppf.checkpoint.edits",
    "OnConfigChange": "airflow_ppf.checkpoint.planner",
    "PipelineConfigChangedError": "airflow_ppf.checkpoint.errors",
    "PlanAction": "airflow_ppf.checkpoint.planner",
    "ResumePlan": "airflow_ppf.checkpoint.planner",
    "ResumePolicy": "airflow_ppf.checkpoint.planner",
    "SCHEMA_VERSION": "airflow_ppf.checkpoint.state",
    "SavedViewDamagedError": "airflow_ppf.checkpoint.saved_views",
    "UnknownComponentError": "airflow_ppf.checkpoint.edits",
    "compute_component_fingerprints": "airflow_ppf.checkpoint.fingerprint",
    "compute_field_digests": "airflow_ppf.checkpoint.fingerprint",
    "compute_pipeline_fingerprint": "airflow_ppf.checkpoint.fingerprint",
    "describe_changes": "airflow_ppf.checkpoint.planner",
    "forget_checkpoint": "airflow_ppf.checkpoint.run",
    "fresh_start_reason": "airflow_ppf.checkpoint.planner",
    "load_checkpoint_for_resume": "airflow_ppf.checkpoint.planner",
    "pipeline_run_id": "airflow_ppf.checkpoint.naming",
    "plan_resume": "airflow_ppf.checkpoint.planner",
    "predict_next_attempt": "airflow_ppf.checkpoint.planner",
    "rerun_from": "airflow_ppf.checkpoint.edits",
    "reset_checkpoint": "airflow_ppf.checkpoint.edits",
    "safe_file_name": "airflow_ppf.checkpoint.naming",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'airflow_ppf.checkpoint' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "SCHEMA_VERSION",
    "AttemptRecord",
    "CheckpointBusyError",
    "CheckpointChangedError",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointFencedError",
    "CheckpointHooks",
    "CheckpointInfo",
    "CheckpointLocationError",
    "CheckpointLockLostError",
    "CheckpointNotFoundError",
    "CheckpointState",
    "CheckpointStatus",
    "CheckpointStore",
    "CheckpointVersionError",
    "CheckpointedRun",
    "ComponentPlan",
    "ComponentRecord",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
    "NothingToRerunError",
    "OnConfigChange",
    "PipelineConfigChangedError",
    "PlanAction",
    "ResumePlan",
    "ResumePolicy",
    "SavedViewDamagedError",
    "UnknownComponentError",
    "compute_component_fingerprints",
    "compute_field_digests",
    "compute_pipeline_fingerprint",
    "describe_changes",
    "forget_checkpoint",
    "fresh_start_reason",
    "load_checkpoint_for_resume",
    "pipeline_run_id",
    "plan_resume",
    "predict_next_attempt",
    "rerun_from",
    "reset_checkpoint",
    "safe_file_name",
]
