"""Lifecycle hooks: forwarding, observer vs critical failures, log lines and metrics."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CircuitState,
    ComponentResult,
    ComponentStatus,
    CompositeHooks,
    CriticalHookError,
    LoggingHooks,
    MetricsHooks,
    NoOpHooks,
    PipelineResult,
    PipelineResultStatus,
    SimplePipelineRunner,
)
from airflow_ppf.runner.hooks import HOOK_METHODS, FailureRecovery, is_critical
from airflow_ppf.runner.report import format_seconds, format_table
from tests.helpers.components import FLAKY_ONCE, FakeClock
from tests.helpers.hooks import RecordingHooks
from tests.helpers.pipelines import component, no_wait_retry, pipeline

PIPELINE_LOGGER = "ppf.pipeline"
HOOKS_LOGGER = "airflow_ppf.runner.hooks"


def statuses(result: PipelineResult) -> dict[str, ComponentStatus]:
    return {r.component_name: r.status for r in result.component_results}


class Boom(NoOpHooks):
    """An observer hook that raises from one method."""

    def __init__(self, method: str) -> None:
        self.method = method

    def __getattribute__(self, name: str) -> Any:
        if name in HOOK_METHODS and name == object.__getattribute__(self, "method"):

            def fail(*args: Any) -> None:
                raise ValueError(f"{name} exploded")

            return fail
        return object.__getattribute__(self, name)


# --------------------------------------------------------------------------------------------------
# CompositeHooks
# --------------------------------------------------------------------------------------------------


def test_composite_forwards_every_event_to_every_hook_in_order(two_step_pipeline: PipelineConfig) -> None:
    order: list[str] = []

    class Tagged(RecordingHooks):
        def __init__(self, tag: str) -> None:
            super().__init__()
            self.tag = tag

        def _record(self, method: str, subject: str, *details: Any) -> None:
            order.append(f"{self.tag}.{method}")
            super()._record(method, subject, *details)

    first, second = Tagged("1"), Tagged("2")

    SimplePipelineRunner(two_step_pipeline, hooks=CompositeHooks(first, second)).run()

    assert first.events == second.events
    assert len(first.events) == 6
    assert order[:4] == ["1.before_pipeline", "2.before_pipeline", "1.before_component", "2.before_component"]


def test_composite_calls_each_method_with_the_same_arguments() -> None:
    first, second = RecordingHooks(), RecordingHooks()
    composite = CompositeHooks(first, second)
    config = pipeline(component("a"))
    comp = config.components[0]
    error = RuntimeError("x")
    result = PipelineResult(PipelineResultStatus.SUCCESS, "test-pipeline")

    composite.before_pipeline(config)
    composite.before_component(comp, 0, 1)
    composite.on_retry_attempt(comp, 1, 3, 500, error)
    composite.on_component_failure(comp, 0, error)
    composite.on_component_skipped(comp, 0, 1, "why")
    composite.after_component(comp, 0, 1, 42)
    composite.on_circuit_breaker_state_change("a", CircuitState.CLOSED, CircuitState.OPEN)
    composite.after_pipeline(config, result)

    expected = [
        ("before_pipeline", "test-pipeline"),
        ("before_component", "a", 0, 1),
        ("on_retry_attempt", "a", 1, 3, 500, error),
        ("on_component_failure", "a", 0, error),
        ("on_component_skipped", "a", 0, 1, "why"),
        ("after_component", "a", 0, 1, 42),
        ("on_circuit_breaker_state_change", "a", CircuitState.CLOSED, CircuitState.OPEN),
        ("after_pipeline", "test-pipeline", PipelineResultStatus.SUCCESS),
    ]
    assert first.events == expected
    assert second.events == expected


def test_nested_composites_are_flattened_and_none_is_dropped() -> None:
    a, b, c = RecordingHooks(), RecordingHooks(), RecordingHooks()

    composite = CompositeHooks(a, None, CompositeHooks(b, c))

    assert composite.hooks == (a, b, c)


def test_composite_is_critical_when_any_hook_is() -> None:
    assert not CompositeHooks(RecordingHooks(), LoggingHooks()).critical
    assert CompositeHooks(RecordingHooks(), RecordingHooks(critical=True)).critical
    assert is_critical(RecordingHooks(critical=True))
    assert not is_critical(object())


def test_partial_hook_objects_only_get_the_events_they_define(
    two_step_pipeline: PipelineConfig, calls: list[str]
) -> None:
    class OnlyAfterComponent:
        def __init__(self) -> None:
            self.seen: list[tuple[str, int, int]] = []

        def after_component(self, config: Any, index: int, total: int, duration_ms: int) -> None:
            self.seen.append((config.name, index, total))

    partial = OnlyAfterComponent()

    result = SimplePipelineRunner(two_step_pipeline, hooks=partial).run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert partial.seen == [("read", 0, 2), ("write", 1, 2)]
    assert calls == ["run:read", "run:write"]


def test_a_hook_with_no_methods_at_all_is_harmless(two_step_pipeline: PipelineConfig) -> None:
    result = SimplePipelineRunner(two_step_pipeline, hooks=object()).run()

    assert result.status is PipelineResultStatus.SUCCESS


def test_noop_hooks_accept_every_event() -> None:
    hooks = NoOpHooks()
    for method in HOOK_METHODS:
        assert callable(getattr(hooks, method))
    assert hooks.critical is False


# --------------------------------------------------------------------------------------------------
# observer failures are ignored, critical failures fail the run
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["before_pipeline", "before_component", "after_component", "after_pipeline"])
def test_observer_hook_errors_are_logged_and_ignored(
    method: str, two_step_pipeline: PipelineConfig, calls: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    witness = RecordingHooks()

    with caplog.at_level(logging.WARNING, logger=HOOKS_LOGGER):
        result = SimplePipelineRunner(two_step_pipeline, hooks=CompositeHooks(Boom(method), witness)).run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert calls == ["run:read", "run:write"]
    assert len(witness.events) == 6  # the hook after the failing one still heard everything
    messages = [r.getMessage() for r in caplog.records if r.name == HOOKS_LOGGER]
    assert f"Hook Boom.{method} raised ValueError: {method} exploded (ignored: it is an observer hook)" in messages


def test_critical_hook_failure_after_a_component_fails_the_run(calls: list[str]) -> None:
    config = pipeline(component("a"), component("b", depends_on=["a"]), component("c", depends_on=["b"]))
    checkpoint = RecordingHooks(critical=True, fail_on="after_component", fail_for="b")
    observer = RecordingHooks()

    with pytest.raises(
        CriticalHookError,
        match=r"critical hook RecordingHooks\.after_component failed: OSError: after_component failed for b",
    ) as info:
        SimplePipelineRunner(config, hooks=CompositeHooks(checkpoint, observer)).run()

    error = info.value
    assert error.method == "after_component"
    assert error.hook_name == "RecordingHooks"
    assert isinstance(error.error, OSError)
    assert error.__cause__ is error.error
    result = error.result
    assert result is not None
    assert result.status is not PipelineResultStatus.SUCCESS
    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert statuses(result) == {
        "a": ComponentStatus.SUCCESS,
        "b": ComponentStatus.FAILED,
        "c": ComponentStatus.NOT_RUN,
    }
    assert result.get("b").reason == "its checkpoint was not saved"  # type: ignore[union-attr]
    assert calls == ["run:a", "run:b"]
    # after_pipeline still reached every hook, the failing one included
    assert observer.events[-1][0] == "after_pipeline"
    assert checkpoint.events[-1][0] == "after_pipeline"
    assert observer.results == [result]


def test_critical_hook_failure_in_after_pipeline_never_reports_success(
    two_step_pipeline: PipelineConfig, calls: list[str]
) -> None:
    checkpoint = RecordingHooks(critical=True, fail_on="after_pipeline")
    observer = RecordingHooks()

    with pytest.raises(CriticalHookError, match=r"after_pipeline failed") as info:
        SimplePipelineRunner(two_step_pipeline, hooks=CompositeHooks(checkpoint, observer)).run()

    assert calls == ["run:read", "run:write"]
    assert info.value.result is not None
    assert info.value.result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert observer.names("after_pipeline") == ["two-step"]


def test_critical_hook_failure_before_the_pipeline_runs_nothing(
    two_step_pipeline: PipelineConfig, calls: list[str]
) -> None:
    checkpoint = RecordingHooks(critical=True, fail_on="before_pipeline")
    observer = RecordingHooks()

    with pytest.raises(CriticalHookError, match=r"before_pipeline failed") as info:
        SimplePipelineRunner(two_step_pipeline, hooks=CompositeHooks(checkpoint, observer)).run()

    assert calls == []
    assert info.value.result is not None
    assert info.value.result.status is PipelineResultStatus.FAILURE
    assert set(statuses(info.value.result).values()) == {ComponentStatus.NOT_RUN}
    assert observer.names("after_pipeline") == ["two-step"]


def test_composite_raises_the_first_critical_error_after_calling_every_hook() -> None:
    first = RecordingHooks(critical=True, fail_on="before_pipeline")
    second = RecordingHooks(critical=True, fail_on="before_pipeline")
    third = RecordingHooks()
    config = pipeline(component("a"))

    with pytest.raises(CriticalHookError) as info:
        CompositeHooks(first, second, third).before_pipeline(config)

    assert info.value.error is not None
    assert third.names("before_pipeline") == ["test-pipeline"]
    assert second.names("before_pipeline") == ["test-pipeline"]
    assert info.value.result is None


def test_critical_hook_error_message() -> None:
    error = CriticalHookError(RecordingHooks(), "after_component", OSError("disk full"))

    assert str(error) == "critical hook RecordingHooks.after_component failed: OSError: disk full"


# --------------------------------------------------------------------------------------------------
# LoggingHooks
# --------------------------------------------------------------------------------------------------


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PIPELINE_LOGGER]


def test_logging_hooks_line_formats(caplog: pytest.LogCaptureFixture) -> None:
    hooks = LoggingHooks()
    config = pipeline(component("read"), component("clean_customers"))
    read, clean = config.components

    with caplog.at_level(logging.INFO, logger=PIPELINE_LOGGER):
        hooks.before_pipeline(config)
        hooks.on_component_skipped(read, 0, 7, "done in try 1")
        hooks.before_component(clean, 2, 7)
        hooks.on_retry_attempt(clean, 1, 3, 500, ConnectionError("reset"))
        hooks.after_component(clean, 2, 7, 2100)
        hooks.on_component_failure(clean, 2, ValueError("bad rows"))
        hooks.on_circuit_breaker_state_change("clean_customers", CircuitState.CLOSED, CircuitState.OPEN)
        result = PipelineResult(
            PipelineResultStatus.PARTIAL_SUCCESS,
            "test-pipeline",
            [ComponentResult("read", ComponentStatus.SKIPPED), ComponentResult("x", ComponentStatus.SUCCESS)],
            total_duration_ms=185_000,
        )
        hooks.after_pipeline(config, result)

    assert log_lines(caplog) == [
        "Pipeline 'test-pipeline': 2 components",
        "[1/7] read skipped (done in try 1)",
        "[3/7] clean_customers running…",
        "clean_customers attempt 1/3 failed (ConnectionError: reset); retrying in 0.50 s",
        "[3/7] clean_customers ✓ 2.1 s",
        "[3/7] clean_customers ✗ ValueError: bad rows",
        "clean_customers circuit breaker: closed -> open",
        "Pipeline 'test-pipeline' PARTIAL_SUCCESS in 3 min 05 s: 1 ran, 1 skipped, 0 failed",
    ]
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["[3/7] clean_customers ✗ ValueError: bad rows"] == logging.ERROR


def test_logging_hooks_during_a_real_run(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    config = pipeline(component("read", advance=2.1), component("write", depends_on=["read"], advance=0.42))

    with caplog.at_level(logging.INFO, logger=PIPELINE_LOGGER):
        SimplePipelineRunner(config, hooks=LoggingHooks(), clock=clock).run(completed_components=[])

    lines = log_lines(caplog)
    assert "[1/2] read ✓ 2.1 s" in lines
    assert "[2/2] write ✓ 0.42 s" in lines
    assert lines[-1] == "Pipeline 'test-pipeline' SUCCESS in 2.5 s: 2 ran, 0 skipped, 0 failed"


def test_logging_hooks_accept_a_custom_logger() -> None:
    lines: list[str] = []

    class ListLogger:
        def info(self, msg: str, *args: Any) -> None:
            lines.append(msg % args)

    hooks = LoggingHooks(logger=ListLogger())
    config = pipeline(component("a"))
    hooks.on_component_skipped(config.components[0], 0, 1, "done in an earlier attempt")

    assert lines == ["[1/1] a skipped (done in an earlier attempt)"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0.00 s"), (0.42, "0.42 s"), (2.1, "2.1 s"), (59.94, "59.9 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_format_table_aligns_columns() -> None:
    table = format_table(["name", "status"], [["read", "done"], ["clean_customers", None]])

    assert table.splitlines() == [
        "  name             status",
        "  ---------------  ------",
        "  read             done",
        "  clean_customers",
    ]


# --------------------------------------------------------------------------------------------------
# MetricsHooks
# --------------------------------------------------------------------------------------------------


def test_metrics_hooks_count_a_run(clock: FakeClock) -> None:
    emitted: list[tuple[str, float, dict[str, str]]] = []
    metrics = MetricsHooks(sink=lambda name, value, tags: emitted.append((name, value, tags)))
    config = pipeline(
        component("done_before"),
        component("flaky", fail_times=2, advance=1.0, retry=no_wait_retry(3)),
        component("broken", depends_on=["flaky"], fail_times=-1, error="ValueError"),
        name="metrics",
    )

    SimplePipelineRunner(config, hooks=metrics, clock=clock, sleep=lambda _: None).run(
        completed_components=["done_before"]
    )

    assert metrics.counters == {
        "components.skipped": 1,
        "retries": 2,
        "components.succeeded": 1,
        "components.failed": 1,
    }
    assert metrics.component_attempts == {"flaky": 3, "broken": 1}
    assert metrics.component_duration_ms == {"flaky": 3000}
    assert metrics.pipeline_duration_ms == 3000
    assert metrics.summary() == {
        "pipeline_duration_ms": 3000,
        "component_duration_ms": {"flaky": 3000},
        "component_attempts": {"flaky": 3, "broken": 1},
        "counters": {"components.skipped": 1, "retries": 2, "components.succeeded": 1, "components.failed": 1},
    }
    assert emitted == [
        ("ppf.component.skipped", 1, {"pipeline": "metrics", "component": "done_before"}),
        ("ppf.component.retry", 1, {"pipeline": "metrics", "component": "flaky"}),
        ("ppf.component.retry", 1, {"pipeline": "metrics", "component": "flaky"}),
        ("ppf.component.duration_ms", 3000, {"pipeline": "metrics", "component": "flaky"}),
        ("ppf.component.failed", 1, {"pipeline": "metrics", "component": "broken", "error": "ValueError"}),
        ("ppf.pipeline.duration_ms", 3000, {"pipeline": "metrics", "status": "partial_success"}),
    ]


def test_metrics_hooks_count_circuit_breaker_changes() -> None:
    metrics = MetricsHooks()

    metrics.on_circuit_breaker_state_change("a", CircuitState.CLOSED, CircuitState.OPEN)
    metrics.on_circuit_breaker_state_change("a", CircuitState.OPEN, CircuitState.HALF_OPEN)
    metrics.on_circuit_breaker_state_change("a", CircuitState.HALF_OPEN, CircuitState.OPEN)

    assert metrics.counters == {"circuit_breaker.open": 2, "circuit_breaker.half_open": 1}


def test_metrics_without_a_sink_only_collect() -> None:
    metrics = MetricsHooks()
    config = pipeline(component("a"))

    SimplePipelineRunner(config, hooks=metrics).run()

    assert metrics.counters == {"components.succeeded": 1}
    assert metrics.component_attempts == {"a": 1}


# --------------------------------------------------------------------------------------------------
# recover_failure: a hook asks the runner to run components again within the run
# --------------------------------------------------------------------------------------------------


class Recovering(NoOpHooks):
    """On a failure of ``failed``, ask to run ``again`` again (at most ``times`` times); or just explain it."""

    def __init__(self, failed: str, again: list[str], times: int = 1, explain: str | None = None) -> None:
        self.failed, self.again, self.times, self.explain = failed, again, times, explain
        self.seen: list[tuple[str, frozenset[str], frozenset[str]]] = []

    def recover_failure(self, recovery: FailureRecovery) -> None:
        self.seen.append((recovery.config.name, recovery.done, recovery.ran))
        if self.explain is not None:
            cause = recovery.error
            recovery.error = RuntimeError(self.explain)
            recovery.error.__cause__ = cause
        if recovery.config.name == self.failed and len(self.seen) <= self.times:
            for name in self.again:
                recovery.rerun(name, f"{name} is remade")


def _four_steps(c: dict[str, Any]) -> PipelineConfig:
    return pipeline(component("a"), component("b", depends_on=["a"]), c, component("d", depends_on=["c"]))


def test_a_recovering_hook_reruns_what_it_names_then_the_failed_component_and_the_run_goes_on(
    calls: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    config = _four_steps(component("c", depends_on=["b"], class_path=FLAKY_ONCE))
    hook, witness = Recovering("c", ["b", "a"]), RecordingHooks()

    with caplog.at_level(logging.WARNING):
        result = SimplePipelineRunner(config, hooks=CompositeHooks(hook, witness)).run(completed_components=["a"])

    assert result.status is PipelineResultStatus.SUCCESS
    assert calls == ["run:b", "run:c", "run:a", "run:b", "run:c", "run:d"]  # in execution order, c last
    assert statuses(result) == dict.fromkeys("abcd", ComponentStatus.SUCCESS)
    assert hook.seen == [("c", frozenset("ab"), frozenset("b"))]
    assert witness.names("on_component_failure") == []  # recovered: not a failure
    assert witness.names("before_component") == ["b", "c", "a", "b", "c", "d"]
    messages = [r.getMessage() for r in caplog.records]
    assert "c failed (RuntimeError: c fails on its first 1 run(s)); running again within this run: a, b, c" in messages
    assert "a runs again: a is remade" in messages


def test_the_runner_bounds_recoveries_even_when_a_hook_always_asks(calls: list[str]) -> None:
    config = _four_steps(component("c", depends_on=["b"], fail_times=-1, message="still broken"))
    witness = RecordingHooks()

    result = SimplePipelineRunner(config, hooks=CompositeHooks(Recovering("c", ["b"], times=100), witness)).run()

    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert calls.count("run:c") == 1 + 4  # at most one recovery per component of the pipeline
    assert statuses(result)["c"] is ComponentStatus.FAILED
    assert statuses(result)["d"] is ComponentStatus.NOT_RUN
    assert witness.names("on_component_failure") == ["c"]


def test_a_hook_may_explain_a_failure_it_does_not_recover(calls: list[str], caplog: pytest.LogCaptureFixture) -> None:
    config = _four_steps(component("c", depends_on=["b"], fail_times=-1, message="raw error"))
    witness = RecordingHooks()
    hook = Recovering("other", [], explain="the saved copy of 'b' is damaged: checksum mismatch in part-0")

    with caplog.at_level(logging.ERROR, logger="airflow_ppf.runner.simple_runner"):
        result = SimplePipelineRunner(config, hooks=CompositeHooks(hook, witness)).run()

    ((name, error),) = result.failed_components
    assert (name, str(error), str(error.__cause__)) == ("c", hook.explain, "raw error")
    assert witness.events[-2][:2] == ("on_component_failure", "c")
    assert witness.events[-2][3] is error
    (record,) = [r for r in caplog.records if r.name == "airflow_ppf.runner.simple_runner"]
    assert record.getMessage() == f"Component 'c' failed: RuntimeError: {hook.explain}"
    assert record.exc_info is None  # one clear line, no traceback


def test_a_rerun_that_fails_leaves_the_failed_component_blocked(calls: list[str]) -> None:
    config = pipeline(
        component("a", fail_times=-1, message="a cannot run now"),
        component("b", depends_on=["a"]),
        component("c", depends_on=["b"], class_path=FLAKY_ONCE),
        component("d", depends_on=["c"]),
    )
    witness = RecordingHooks()

    result = SimplePipelineRunner(config, hooks=CompositeHooks(Recovering("c", ["a"]), witness)).run(
        completed_components=["a", "b"]
    )

    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS  # b stays done
    assert calls == ["run:c", "run:a"]
    assert statuses(result) == {
        "a": ComponentStatus.FAILED,
        "b": ComponentStatus.SKIPPED,
        "c": ComponentStatus.BLOCKED,
        "d": ComponentStatus.NOT_RUN,
    }
    reasons = {r.component_name: r.reason for r in result.component_results}
    assert reasons["c"] == "blocked: 'a', run again to recover from its failure, did not finish"
    assert witness.names("on_component_failure") == ["a"]
