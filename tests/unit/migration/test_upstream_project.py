"""An upstream-style project runs through a failure and a resume with only its imports changed.

Everything here is written the way pyspark-pipeline-framework 1.0 documents it: components name
themselves with read-only properties and open / close a connection, the ``.conf`` uses ``resilience``
and ``connect_string``, the store saves ``asdict(state)``, the runner is built with upstream's keywords.
"""

from __future__ import annotations

import io
import json

from airflow_ppf.cli import main
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CompositeHooks,
    LoggingHooks,
    MetricsHooks,
    PipelineResultStatus,
    SimplePipelineRunner,
    compute_pipeline_fingerprint,
    load_checkpoint_for_resume,
)
from tests.unit.migration.conftest import CONF
from tests.unit.migration.upstream_project import DictCheckpointStore, SessionWrapper, Transform

RUN_ID = "run-001"


def _runner(config: PipelineConfig, store: DictCheckpointStore, wrapper: SessionWrapper) -> SimplePipelineRunner:
    fingerprint = compute_pipeline_fingerprint(config)
    checkpoint_hooks = CheckpointHooks(store, run_id=RUN_ID, pipeline_fingerprint=fingerprint)
    return SimplePipelineRunner(
        config,
        spark_wrapper=wrapper,
        hooks=CompositeHooks(LoggingHooks(), MetricsHooks(), checkpoint_hooks),
        fail_fast=True,
        clock=None,
        sleep_func=lambda _: None,
        validate_before_run=True,
    )


def test_the_conf_file_loads_with_upstream_fields(upstream_config: PipelineConfig) -> None:
    config = upstream_config

    assert config.spark.connect_string == config.spark.remote == "sc://spark-connect.internal:15002"
    assert config.environment.value == "prod"
    assert config.environment == "prod"
    transform = config.get_component("transform")
    assert transform is not None
    assert transform.depends_on == ["extract"]
    assert transform.retry is not None
    assert transform.retry.max_attempts == 2
    assert transform.retry.retry_on_exceptions == ["ConnectionError"]
    assert transform.circuit_breaker is not None
    assert transform.circuit_breaker.failure_threshold == 5


def test_a_failed_run_then_a_resume_with_the_seed_flow(upstream_config: PipelineConfig, events: list[str]) -> None:
    config = upstream_config
    store = DictCheckpointStore()
    wrapper = SessionWrapper()

    first = _runner(config, store, wrapper).run()

    assert first.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert first.completed_components == ["extract"]
    [(failed, error)] = first.failed_components
    assert (failed, type(error)) == ("transform", ConnectionError)
    transform_result = first.get("transform")
    assert transform_result is not None
    assert transform_result.retries == 1
    # Both attempts of transform ran with its connection open; every connection was closed, once.
    assert events == [
        "open:extract",
        "run:extract",
        "close:extract",
        "open:transform",
        "run:transform",
        "run:transform",
        "close:transform",
    ]
    saved = json.loads(store.documents[(config.name, RUN_ID)])
    assert (saved["completed_components"], saved["failed_component"], saved["status"]) == (
        ["extract"],
        "transform",
        "failed",
    )

    # The user fixes the bug; the next attempt resumes the way the seed documents it.
    Transform.broken = False
    events.clear()
    completed = load_checkpoint_for_resume(store, RUN_ID, config)
    assert completed == {"extract"}

    second = _runner(config, store, wrapper).run(completed_components=completed)

    assert second.status is PipelineResultStatus.SUCCESS
    assert second.skipped_components == ["extract"]
    assert second.completed_components == ["transform", "load"]
    assert events == ["open:transform", "run:transform", "close:transform", "open:load", "run:load", "close:load"]
    state = store.load(RUN_ID, config.name)
    assert state is not None
    # The resume kept the first attempt's progress and history (the seed's store would have lost it).
    assert (state.status, state.completed_components) == ("completed", ["extract", "transform", "load"])
    assert [a.status for a in state.attempts] == ["failed", "completed"]
    assert wrapper.reads == 0


def test_components_keep_their_own_read_only_names(upstream_config: PipelineConfig) -> None:
    runner = _runner(upstream_config, DictCheckpointStore(), SessionWrapper())

    built = runner.build_components(upstream_config.component_names)

    assert {name: component.name for name, component in built.items()} == {
        "extract": "extract-orders",
        "transform": "transform-orders",
        "load": "load-orders",
    }
    assert runner.dry_run() == [
        "'tests.unit.migration.upstream_project.Extract' does not implement from_config(); it is built with "
        "Extract(**config)",
        "'tests.unit.migration.upstream_project.Load' does not implement from_config(); it is built with "
        "Load(**config)",
    ]


def test_ppf_validate_accepts_the_project() -> None:
    out = io.StringIO()

    code = main(["validate", str(CONF)], out=out)

    assert code == 0, out.getvalue()
    assert "OK: pipeline 'orders-nightly', 3 components" in out.getvalue()
