"""pyspark-pipeline-framework's runner, component, result, validation, resilience and hooks API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from airflow_ppf.components import (
    ComponentError,
    ComponentInstantiationError,
    ComponentLoadError,
    ConfigurableInstance,
    PipelineComponent,
    Resource,
    create_component,
)
from airflow_ppf.config import CircuitBreakerConfig, ComponentConfig, ConfigError, PipelineConfig, RetryConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CheckpointState,
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    ComponentResult,
    CompositeHooks,
    InMemoryCheckpointStore,
    LoggingHooks,
    MetricsHooks,
    PipelineResultStatus,
    RetryExecutor,
    SimplePipelineRunner,
    ValidationPhase,
    dry_run,
    validate_pipeline,
    with_retry,
)

HERE = __name__


class Named(PipelineComponent):
    @property
    def name(self) -> str:
        return "named"

    def run(self) -> None:
        LOG.append("run:named")


class Pool(PipelineComponent):
    """A Resource that fails ``failures`` times (class-wide), counting what happened."""

    failures: ClassVar[int] = 0

    @property
    def name(self) -> str:
        return "pool"

    def open(self) -> None:
        LOG.append("open")

    def close(self) -> None:
        LOG.append("close")

    def run(self) -> None:
        LOG.append("run")
        if Pool.failures > 0:
            Pool.failures -= 1
            raise OSError("pool exhausted")


class BadClose(Pool):
    def close(self) -> None:
        LOG.append("close")
        raise RuntimeError("close failed")


class Where(PipelineComponent):
    """Records where it runs, from its context."""

    def run(self) -> None:
        LOG.append(f"{self.context['environment']}:{dict(self.context.get('tags', {}))}")


LOG: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOG.clear()
    Pool.failures = 0


def pipeline(*components: ComponentConfig) -> PipelineConfig:
    return PipelineConfig("p", list(components))


def upstream_runner(config: PipelineConfig, **kwargs: Any) -> SimplePipelineRunner:
    return SimplePipelineRunner(config, spark_wrapper=object(), clock=None, sleep_func=lambda _: None, **kwargs)


# -- components -------------------------------------------------------------------------------------


def test_a_read_only_name_property_does_not_break_building() -> None:
    component = create_component(ComponentConfig("configured", f"{HERE}.Named"))

    assert component.name == "named"
    assert isinstance(component, PipelineComponent)
    result = upstream_runner(pipeline(ComponentConfig("configured", f"{HERE}.Named"))).run()
    assert result.completed_components == ["configured"]
    assert LOG == ["run:named"]


def test_component_errors_have_upstream_names() -> None:
    with pytest.raises(ComponentInstantiationError) as info:
        create_component(ComponentConfig("x", f"{HERE}.Missing"))

    assert isinstance(info.value, ComponentLoadError)
    assert isinstance(info.value, ComponentError)
    assert info.value.class_path == f"{HERE}.Missing"
    assert isinstance(Pool(), Resource)
    assert not isinstance(Named(), Resource)
    assert not isinstance(Named(), ConfigurableInstance)


def test_components_read_the_environment_and_tags() -> None:
    config = PipelineConfig("p", [ComponentConfig("a", f"{HERE}.Where")], environment="staging", tags={"team": "x"})

    upstream_runner(config).run()

    assert LOG == ["staging:{'team': 'x'}"]


# -- the Resource lifecycle -------------------------------------------------------------------------


def test_a_resource_is_opened_before_and_closed_after_its_run() -> None:
    result = upstream_runner(pipeline(ComponentConfig("pool", f"{HERE}.Pool"))).run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert LOG == ["open", "run", "close"]


def test_a_resource_is_closed_once_after_its_retries_are_used_up() -> None:
    Pool.failures = 5
    retry = RetryConfig(max_attempts=3, initial_delay_seconds=0)

    result = upstream_runner(pipeline(ComponentConfig("pool", f"{HERE}.Pool", retry=retry)), fail_fast=False).run()

    assert result.status is PipelineResultStatus.FAILURE
    assert LOG == ["open", "run", "run", "run", "close"]
    pool = result.get("pool")
    assert pool is not None
    assert (pool.retries, type(pool.error)) == (2, OSError)


def test_a_failing_close_fails_a_successful_component_but_never_hides_a_run_error() -> None:
    ok = upstream_runner(pipeline(ComponentConfig("pool", f"{HERE}.BadClose"))).run()
    failed_close = ok.get("pool")
    assert failed_close is not None
    assert str(failed_close.error) == "close failed"

    Pool.failures = 1
    both = upstream_runner(pipeline(ComponentConfig("pool", f"{HERE}.BadClose"))).run()
    failed_run = both.get("pool")
    assert failed_run is not None
    assert str(failed_run.error) == "pool exhausted"


# -- runner keywords, validation, dry runs ----------------------------------------------------------


def test_upstream_runner_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([0.0, 0.0, 0.1, 0.5])
    runner = SimplePipelineRunner(
        pipeline(ComponentConfig("a", f"{HERE}.Named")),
        spark_wrapper=object(),
        hooks=None,
        fail_fast=True,
        clock=lambda: next(ticks),
        sleep_func=lambda _: None,
        validate_before_run=False,
    )

    result = runner.run()

    assert (result.get("a").duration_ms, result.total_duration_ms) == (100, 500)  # type: ignore[union-attr]


def test_bad_class_paths_fail_up_front_whatever_validate_before_run_says() -> None:
    config = pipeline(ComponentConfig("a", f"{HERE}.Named"), ComponentConfig("bad", "no.such.Module"))
    for validate in (True, False):
        with pytest.raises(ConfigError, match=r"components\[1\]: 'bad': cannot import module 'no.such'"):
            upstream_runner(config, validate_before_run=validate).run()
    assert LOG == []


def test_validation_api() -> None:
    config = pipeline(
        ComponentConfig("named", f"{HERE}.Named"),
        ComponentConfig("bad", "no.such.Module"),
        ComponentConfig("off", "no.such.Other", enabled=False),
    )

    checked = validate_pipeline(config)
    built = dry_run(config)

    assert not checked.is_valid
    assert [(e.phase, e.component_name) for e in checked.errors] == [(ValidationPhase.TYPE_RESOLUTION, "bad")]
    assert checked.warnings == [
        f"[named] '{HERE}.Named' does not implement from_config(); it is built with Named(**config)"
    ]
    assert (built.instantiated, [e.component_name for e in built.errors]) == (["named"], ["bad"])
    assert upstream_runner(config).dry_run()[1].startswith("Cannot load 'no.such.Module': cannot import module")


# -- results ----------------------------------------------------------------------------------------


def test_component_results_built_the_upstream_way() -> None:
    error = RuntimeError("x")

    ok = ComponentResult(component_name="a", success=True, duration_ms=10)
    failed = ComponentResult("b", False, 5, error, 2)

    assert (ok.success, ok.retries, ok.error) == (True, 0, None)
    assert (failed.success, failed.retries, failed.error, failed.duration_ms) == (False, 2, error, 5)
    assert ComponentResult("c", success=False, error=error, retries=1).attempts == 2


# -- resilience -------------------------------------------------------------------------------------


def test_retry_executor_and_decorator() -> None:
    slept: list[float] = []
    calls: list[int] = []
    retried: list[tuple[int, str, float]] = []
    executor = RetryExecutor(
        RetryConfig(max_attempts=3, initial_delay_seconds=1.0), jitter_factor=0.0, sleep_func=slept.append
    )

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"try {len(calls)}")
        return "ok"

    assert executor.execute(flaky, on_retry=lambda n, e, d: retried.append((n, str(e), d))) == "ok"
    assert (slept, retried) == ([1.0, 2.0], [(1, "try 1", 1.0), (2, "try 2", 2.0)])
    assert executor.is_retryable(ValueError())
    assert RetryExecutor(RetryConfig(retry_on_exceptions=["KeyError"])).is_retryable(ValueError()) is False

    @with_retry(RetryConfig(max_attempts=2, initial_delay_seconds=0), sleep_func=lambda _: None)
    def always_fails() -> None:
        calls.append(1)
        raise ValueError("always")

    calls.clear()
    with pytest.raises(ValueError, match="always"):
        always_fails()
    assert len(calls) == 2
    assert always_fails.__name__ == "always_fails"


def test_circuit_breaker_call_reset_and_counts() -> None:
    now = [0.0]
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        CircuitBreakerConfig(failure_threshold=2, timeout_seconds=30),
        name="svc",
        on_state_change=lambda old, new: changes.append((old, new)),
        clock=lambda: now[0],
    )

    def boom() -> None:
        raise OSError("down")

    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            breaker.call(boom)
    now[0] = 10.0
    with pytest.raises(CircuitBreakerOpenError, match="svc") as info:
        breaker.call(lambda: 1)

    assert breaker.failure_count == 2
    assert breaker.time_until_reset == pytest.approx(20.0)
    assert info.value.time_until_reset == pytest.approx(20.0)
    breaker.reset()
    assert (breaker.state, breaker.failure_count, breaker.success_count, breaker.time_until_reset) == (
        CircuitState.CLOSED,
        0,
        0,
        0.0,
    )
    assert changes == [(CircuitState.CLOSED, CircuitState.OPEN), (CircuitState.OPEN, CircuitState.CLOSED)]
    assert breaker.call(lambda: 42) == 42


def test_a_failing_state_listener_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    def listener(old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("listener broke")

    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1), on_state_change=listener)
    with pytest.raises(OSError, match="down"):
        breaker.call(lambda: (_ for _ in ()).throw(OSError("down")))

    assert breaker.state is CircuitState.OPEN
    assert "listener broke" in caplog.text


# -- hooks ------------------------------------------------------------------------------------------


def test_logging_hooks_log_to_ppf_pipeline(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ppf.pipeline"):
        upstream_runner(pipeline(ComponentConfig("a", f"{HERE}.Named")), hooks=LoggingHooks()).run()

    assert LoggingHooks().logger.name == "ppf.pipeline"
    assert {r.name for r in caplog.records if "[1/1] a" in r.getMessage()} == {"ppf.pipeline"}


def test_metrics_hooks_upstream_attributes() -> None:
    ticks = iter([0.0, 1.5])
    Pool.failures = 1
    metrics = MetricsHooks(clock=lambda: next(ticks))
    config = pipeline(
        ComponentConfig("pool", f"{HERE}.Pool", retry=RetryConfig(max_attempts=2, initial_delay_seconds=0))
    )

    upstream_runner(config, hooks=metrics).run()

    assert list(metrics.component_durations) == ["pool"]
    assert (metrics.component_retries, metrics.total_duration_ms) == ({"pool": 1}, 1500)


def test_checkpoint_hooks_take_a_now_func_and_refuse_an_empty_fingerprint() -> None:
    store = InMemoryCheckpointStore()
    at = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    config = pipeline(ComponentConfig("a", f"{HERE}.Named"))

    upstream_runner(config, hooks=CompositeHooks(CheckpointHooks(store, "r1", now_func=lambda: at))).run()

    state = store.load("r1", "p")
    assert state is not None
    assert (state.created_at, state.updated_at) == (at.isoformat(), at.isoformat())
    assert state.components["a"].completed_at == at.isoformat()
    with pytest.raises(ValueError, match="pipeline_fingerprint must not be empty"):
        CheckpointHooks(store, "r1", pipeline_fingerprint="")
    with pytest.raises(ValueError, match="pipeline_fingerprint must not be empty"):
        CheckpointState(run_id="r", pipeline_name="p", pipeline_fingerprint="")
