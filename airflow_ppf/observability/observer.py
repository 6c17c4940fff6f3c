"""What the Airflow channels read after a run: the components built, the plan followed, the result.

:class:`TaskObservability` is what :class:`~airflow_ppf.operators.PipelineOperator` adds to each
checkpointed run: a :class:`RunObserver` (read by the OpenLineage facets and the asset events), Airflow
``Stats`` metrics and OpenTelemetry spans. All of them are observer hooks: whatever they raise is logged
and ignored, observing never fails a run.

This module imports no Airflow, OpenLineage or OpenTelemetry module at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_ppf.components.base import Component
from airflow_ppf.components.datasets import CatalogInfo, DatasetRef, resolve_dataset
from airflow_ppf.components.loading import create_component
from airflow_ppf.runner.hooks import NoOpHooks, RunPlan, RunPreparation
from airflow_ppf.runner.results import ComponentStatus, PipelineResultStatus

if TYPE_CHECKING:
    from airflow_ppf.checkpoint.run import CheckpointedRun
    from airflow_ppf.config.models import PipelineConfig
    from airflow_ppf.runner.results import PipelineResult
    from airflow_ppf.spark.session import SparkSessionManager

__all__ = ["RunObserver", "TaskObservability", "declared_datasets"]

log = logging.getLogger(__name__)

#: Statuses of components whose work is done in this task instance (now, or in an earlier try).
DONE = (ComponentStatus.SUCCESS, ComponentStatus.SKIPPED)


class RunObserver(NoOpHooks):
    """Keep what a run did: its components, the plan it followed (the recorded one), its result."""

    def __init__(self) -> None:
        self.config: PipelineConfig | None = None
        self.components: dict[str, Component] = {}
        self.plan: RunPlan | None = None
        self.result: PipelineResult | None = None
        self.catalog = CatalogInfo()
        self._spark: SparkSessionManager | None = None

    def prepare_run(self, run: RunPreparation) -> None:
        self.config = run.runner.config
        self.components = {n: c for n, c in run.components.items() if isinstance(c, Component)}
        self._spark = run.runner.spark_manager
        self.catalog = CatalogInfo.from_spark_conf(self._spark.catalog_conf())

    def on_resume_plan(self, plan: RunPlan) -> None:
        self.plan = plan

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        self.result = result
        if self._spark is not None:  # the session, if one started, says where its tables are
            self.catalog = CatalogInfo.from_spark_conf(self._spark.catalog_conf())

    @property
    def succeeded(self) -> bool:
        return self.result is not None and self.result.status is PipelineResultStatus.SUCCESS

    def statuses(self) -> dict[str, ComponentStatus]:
        """Each component's status in this attempt (empty before the run ended)."""
        if self.result is None:
            return {}
        return {r.component_name: r.status for r in self.result.component_results}

    def done(self) -> list[str]:
        """Components whose work is done: run now, or skipped because an earlier try finished them."""
        return [name for name, status in self.statuses().items() if status in DONE]

    def datasets(self, names: Sequence[str], which: str) -> list[DatasetRef]:
        """The ``input_datasets`` or ``output_datasets`` (``which``) of the named components, named."""
        return declared_datasets([self.components[n] for n in names if n in self.components], which, self.catalog)


def declared_datasets(components: Sequence[Component], which: str, catalog: CatalogInfo) -> list[DatasetRef]:
    """Named datasets the components declare (``which``: ``input_datasets`` or ``output_datasets``), each
    once, in order. A component whose declaration raises is left out (with a warning)."""
    seen: dict[tuple[str, str], DatasetRef] = {}
    for component in components:
        try:
            declared = getattr(component, which)
            refs = [resolve_dataset(d, catalog) for d in declared]
        except Exception as exc:
            log.warning("Datasets of %s are left out of the lineage: %s: %s", component, type(exc).__name__, exc)
            continue
        for ref in refs:
            seen.setdefault((ref.namespace, ref.name), ref)
    return list(seen.values())


def build_components(config: PipelineConfig) -> dict[str, Component]:
    """Build the enabled components of ``config`` without running anything (no Spark); those that cannot
    be built are left out."""
    built: dict[str, Component] = {}
    for comp in config.components:
        if not comp.enabled:
            continue
        try:
            component = create_component(comp)
        except Exception as exc:
            log.warning("Component %s is left out of the lineage: %s", comp.name, exc)
            continue
        if isinstance(component, Component):
            built[comp.name] = component
    return built


class TaskObservability:
    """The observer hooks of one try of a PipelineOperator task, and what they saw.

    Args:
        context: the task's Airflow context.
        pipeline: the pipeline's name (a tag of every metric and span).
        asset_alias: the name of the task's asset alias: on success, every output dataset of the pipeline
            is added to it as an asset event (:mod:`airflow_ppf.observability.assets`).
    """

    def __init__(self, context: Mapping[str, Any], pipeline: str, *, asset_alias: str | None = None) -> None:
        ti = context["ti"]
        tags = getattr(ti, "stats_tags", None)
        self.tags: dict[str, str] = dict(tags) if isinstance(tags, Mapping) else {}
        self.tags.setdefault("dag_id", str(ti.dag_id))
        self.tags.setdefault("task_id", str(ti.task_id))
        self.tags["pipeline"] = pipeline
        self.observer = RunObserver()
        #: The checkpointed run observed (set by the operator once it is built).
        self.run: CheckpointedRun | None = None
        self.hooks: list[object] = [self.observer]
        outlet_events = context.get("outlet_events")
        if asset_alias and outlet_events is None:
            log.warning("No outlet_events in the task's context: no asset events for alias %r", asset_alias)
        elif asset_alias:
            from airflow_ppf.observability.assets import AssetEvents

            self.hooks.append(AssetEvents(outlet_events, asset_alias, self.observer))
        self.hooks.extend(_optional_hooks(self.tags))

    def lineage(self, event: str) -> Any:
        """The task's OpenLineage metadata for ``event`` (``complete`` or ``failure``)."""
        from airflow_ppf.observability.lineage import lineage_of_run

        return lineage_of_run(self, event)


def _optional_hooks(tags: Mapping[str, str]) -> list[object]:
    """Metrics and tracing hooks; one that cannot be made is left out (observing never fails a run)."""
    hooks: list[object] = []
    try:
        from airflow_ppf.observability.metrics import StatsHooks

        hooks.append(StatsHooks(tags))
    except Exception as exc:
        log.warning("Pipeline metrics are off: %s: %s", type(exc).__name__, exc)
    try:
        from airflow_ppf.observability.tracing import TracingHooks

        hooks.append(TracingHooks(tags))
    except Exception as exc:
        log.warning("Pipeline traces are off: %s: %s", type(exc).__name__, exc)
    return hooks
