"""The task's OpenLineage metadata: the pipeline's datasets and facets of our own.

Called by the OpenLineage provider through ``PipelineOperator.get_openlineage_facets_on_start /
_on_complete / _on_failure`` (only then is this module, and OpenLineage, imported). The datasets are
what the components declare (:mod:`airflow_ppf.components.datasets`); on a resumed try the components
skipped because an earlier try finished them count too, since their inputs and outputs are this task's
(the views they produced were restored from saved copies).

Run facets (documented in docs/airflow.md, Observability):

* ``ppf_pipeline``: pipeline, checkpoint run id, fingerprint, try, status, duration;
* ``ppf_components``: per component: status, duration, the try it completed in, why it did not run,
  its datasets;
* ``ppf_resume``: the plan this try followed as recorded in the checkpoint: what was skipped and why,
  reruns, time saved (net of the restore), saved views restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define, field
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import RunFacet, symlinks_dataset

from airflow_ppf.components.datasets import CatalogInfo, DatasetRef
from airflow_ppf.observability.observer import build_components, declared_datasets
from airflow_ppf.runner.results import ComponentStatus

if TYPE_CHECKING:
    from airflow_ppf.observability.observer import TaskObservability

__all__ = [
    "PpfComponentsRunFacet",
    "PpfPipelineRunFacet",
    "PpfResumeRunFacet",
    "lineage_at_start",
    "lineage_of_run",
    "to_openlineage",
]

_SCHEMA = "urn:airflow-ppf:openlineage:facets:1-0-0#/$defs/"


@define
class PpfPipelineRunFacet(RunFacet):
    """``ppf_pipeline``: the pipeline this task runs and its checkpoint."""

    pipeline: str
    fingerprint: str
    checkpointRunId: str | None = None
    attempt: int | None = None
    status: str | None = None
    durationSeconds: float | None = None

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "PpfPipelineRunFacet"


@define
class PpfComponentsRunFacet(RunFacet):
    """``ppf_components``: what each component did in this try."""

    components: list[dict[str, Any]] = field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "PpfComponentsRunFacet"


@define
class PpfResumeRunFacet(RunFacet):
    """``ppf_resume``: the recorded plan of this try (skips and reruns with reasons, time saved)."""

    headline: str
    resumed: bool
    previousAttempt: int
    timeSavedSeconds: float
    timeSavedGrossSeconds: float
    restoreSeconds: float | None = None
    restoredViews: list[str] = field(factory=list)
    freshStart: str | None = None
    configChanged: bool = False
    entries: list[dict[str, Any]] = field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "PpfResumeRunFacet"


def to_openlineage(refs: Sequence[DatasetRef], cls: type[InputDataset] | type[OutputDataset]) -> list[Any]:
    """OpenLineage datasets of plain descriptions; a table's name becomes a ``symlinks`` facet."""
    out = []
    for ref in refs:
        facets: dict[str, Any] = {}
        if ref.table:
            facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(namespace=ref.table_namespace or "", name=ref.table, type="TABLE")
                ]
            )
        out.append(cls(namespace=ref.namespace, name=ref.name, facets=facets))
    return out


def lineage_at_start(operator: Any) -> OperatorLineage[Any, Any]:
    """What the task will read and write, from its config alone (nothing has run yet)."""
    from airflow_ppf.checkpoint.fingerprint import compute_pipeline_fingerprint

    config = operator.load_pipeline()
    components = list(build_components(config).values())
    catalog = CatalogInfo.from_spark_conf({**config.spark.to_spark_conf(), **dict(operator.spark_conf or {})})
    return OperatorLineage(
        inputs=to_openlineage(declared_datasets(components, "input_datasets", catalog), InputDataset),
        outputs=to_openlineage(declared_datasets(components, "output_datasets", catalog), OutputDataset),
        run_facets={
            "ppf_pipeline": PpfPipelineRunFacet(pipeline=config.name, fingerprint=compute_pipeline_fingerprint(config))
        },
    )


def lineage_of_run(observed: TaskObservability, event: str) -> OperatorLineage[Any, Any]:
    """What this try read and wrote, and how it went (``event``: ``complete`` or ``failure``).

    Inputs: of the components done (run now, or done by an earlier try) and, on a failure, of the one
    that failed. Outputs: of the components done.
    """
    observer, run = observed.observer, observed.run
    statuses = observer.statuses()
    done = observer.done()
    failed = [n for n, s in statuses.items() if s is ComponentStatus.FAILED]
    reading = done + failed if event == "failure" else done
    facets: dict[str, Any] = {}
    if run is not None:
        result = observer.result
        facets["ppf_pipeline"] = PpfPipelineRunFacet(
            pipeline=run.config.name,
            fingerprint=run.fingerprint,
            checkpointRunId=run.run_id,
            attempt=run.attempt_number,
            status=result.status.value if result is not None else "not started",
            durationSeconds=round(result.total_duration_seconds, 3) if result is not None else None,
        )
        facets["ppf_components"] = PpfComponentsRunFacet(components=_components(observed))
        resume = _resume_facet(observed)
        if resume is not None:
            facets["ppf_resume"] = resume
    return OperatorLineage(
        inputs=to_openlineage(observer.datasets(reading, "input_datasets"), InputDataset),
        outputs=to_openlineage(observer.datasets(done, "output_datasets"), OutputDataset),
        run_facets=facets,
    )


def _recorded_resume(observed: TaskObservability) -> dict[str, Any]:
    """The plan of this try as the checkpoint recorded it (``attempts[-1].resume``)."""
    run = observed.run
    state = run.recorder.state if run is not None and run.recorder is not None else None
    attempt = state.current_attempt if state is not None else None
    if attempt is not None and attempt.resume:
        return dict(attempt.resume)
    return run.plan.summary() if run is not None else {}


def _resume_facet(observed: TaskObservability) -> PpfResumeRunFacet | None:
    recorded = _recorded_resume(observed)
    if not recorded:
        return None
    return PpfResumeRunFacet(
        headline=str(recorded.get("headline", "")),
        resumed=bool(recorded.get("skipped")),
        previousAttempt=int(recorded.get("previous_attempt") or 0),
        timeSavedSeconds=round(int(recorded.get("time_saved_ms") or 0) / 1000, 3),
        timeSavedGrossSeconds=round(int(recorded.get("time_saved_gross_ms") or 0) / 1000, 3),
        restoreSeconds=round(recorded["restore_ms"] / 1000, 3) if recorded.get("restore_ms") is not None else None,
        restoredViews=list(recorded.get("restored_views") or []),
        freshStart=recorded.get("fresh_start"),
        configChanged=bool(recorded.get("config_changed")),
        entries=[
            {
                "name": e.get("name"),
                "action": e.get("action"),
                "reason": e.get("reason"),
                **({"recordedSeconds": round(e["recorded_ms"] / 1000, 3)} if "recorded_ms" in e else {}),
            }
            for e in recorded.get("entries") or []
        ],
    )


def _components(observed: TaskObservability) -> list[dict[str, Any]]:
    observer, run = observed.observer, observed.run
    assert run is not None
    state = run.recorder.state if run.recorder is not None else None
    results = {r.component_name: r for r in observer.result.component_results} if observer.result else {}
    plan = {e["name"]: e for e in _recorded_resume(observed).get("entries") or []}
    out = []
    for comp in run.config.components:
        result = results.get(comp.name)
        record = state.components.get(comp.name) if state is not None else None
        entry: dict[str, Any] = {
            "name": comp.name,
            "classPath": comp.class_path,
            "status": result.status.value if result is not None else ("disabled" if not comp.enabled else "not_run"),
        }
        if result is not None and result.status in (ComponentStatus.SUCCESS, ComponentStatus.FAILED):
            entry["durationSeconds"] = round(result.duration_seconds, 3)
        elif record is not None and result is not None and result.status is ComponentStatus.SKIPPED:
            entry["durationSeconds"] = round(record.duration_ms / 1000, 3)  # recorded when it ran
        if record is not None and state is not None and comp.name in state.completed_components:
            entry["completedInAttempt"] = record.attempt
        reason = (
            plan.get(comp.name, {}).get("reason")
            if result is not None and result.status is ComponentStatus.SKIPPED
            else None
        )
        reason = reason or (result.reason if result is not None else None)
        if result is not None and result.error is not None:
            reason = f"{result.error_type}: {result.error_message}"
        if reason:
            entry["reason"] = reason
        entry["inputs"] = [r.uri for r in observer.datasets([comp.name], "input_datasets")]
        entry["outputs"] = [r.uri for r in observer.datasets([comp.name], "output_datasets")]
        out.append(entry)
    return out
