"""Retries with exponential backoff and jitter, exception matching, and the circuit breaker."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from airflow_ppf.config import CircuitBreakerConfig, RetryConfig
from airflow_ppf.runner import (
    CircuitBreakerOpenError,
    CircuitState,
    ComponentStatus,
    PipelineResultStatus,
    SimplePipelineRunner,
)
from airflow_ppf.runner.resilience import CircuitBreaker, RetryingCall, backoff_delay, exception_matches
from tests.helpers.components import FLAKY_ONCE, FakeClock, PermanentError, TransientError
from tests.helpers.hooks import RecordingHooks
from tests.helpers.pipelines import component, no_wait_retry, pipeline


def failing(times: int, error: Callable[[int], Exception] = lambda n: RuntimeError(f"attempt {n}")) -> Any:
    """A callable that raises on its first ``times`` calls (``error(call_number)``), then returns "ok"."""
    count = 0

    def fn() -> str:
        nonlocal count
        count += 1
        if count <= times:
            raise error(count)
        return "ok"

    return fn


# --------------------------------------------------------------------------------------------------
# backoff
# --------------------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    retry = RetryConfig(initial_delay_seconds=1, backoff_multiplier=2, max_delay_seconds=10, jitter=0)

    assert [backoff_delay(retry, n) for n in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]


def test_backoff_with_multiplier_one_is_constant() -> None:
    retry = RetryConfig(initial_delay_seconds=0.5, backoff_multiplier=1, max_delay_seconds=10, jitter=0)

    assert {backoff_delay(retry, n) for n in range(1, 6)} == {0.5}


def test_jitter_stays_within_its_bounds_and_actually_varies() -> None:
    retry = RetryConfig(initial_delay_seconds=4, backoff_multiplier=1, max_delay_seconds=100, jitter=0.5)
    rng = random.Random(42)

    delays = [backoff_delay(retry, 1, rng) for _ in range(2_000)]

    assert all(2.0 <= d <= 6.0 for d in delays)
    assert min(delays) < 2.2
    assert max(delays) > 5.8


def test_jitter_never_pushes_a_delay_above_the_cap() -> None:
    retry = RetryConfig(initial_delay_seconds=10, backoff_multiplier=2, max_delay_seconds=10, jitter=0.5)
    rng = random.Random(1)

    delays = [backoff_delay(retry, n, rng) for n in range(1, 5) for _ in range(200)]

    assert max(delays) <= 10.0
    assert min(delays) >= 5.0
    # A capped delay still gets jitter (downwards), so retries of many components do not line up.
    capped = [backoff_delay(retry, 4, rng) for _ in range(200)]
    assert min(capped) < 6.0


def test_retrying_call_sleeps_the_backoff_delays() -> None:
    sleeps: list[float] = []
    retry = RetryConfig(max_attempts=6, initial_delay_seconds=1, backoff_multiplier=3, max_delay_seconds=20, jitter=0)
    call = RetryingCall(retry, sleep=sleeps.append)

    with pytest.raises(RuntimeError, match=r"^attempt 6$"):
        call(failing(10))

    assert sleeps == [1, 3, 9, 20, 20]
    assert call.attempts == 6


def test_retrying_call_sleeps_with_jitter_within_bounds() -> None:
    sleeps: list[float] = []
    retry = RetryConfig(max_attempts=4, initial_delay_seconds=1, backoff_multiplier=2, max_delay_seconds=60, jitter=0.1)

    RetryingCall(retry, sleep=sleeps.append)(failing(3))

    assert len(sleeps) == 3
    for delay, base in zip(sleeps, [1, 2, 4], strict=True):
        assert base * 0.9 <= delay <= base * 1.1


# --------------------------------------------------------------------------------------------------
# what is retried
# --------------------------------------------------------------------------------------------------


def test_success_after_failures_returns_the_value_and_counts_attempts() -> None:
    call = RetryingCall(RetryConfig(max_attempts=5, jitter=0), sleep=lambda _: None)

    assert call(failing(2)) == "ok"
    assert call.attempts == 3


def test_without_a_retry_policy_there_is_one_attempt() -> None:
    sleeps: list[float] = []
    call = RetryingCall(None, sleep=sleeps.append)

    with pytest.raises(RuntimeError, match="attempt 1"):
        call(failing(1))

    assert call.attempts == 1
    assert sleeps == []
    assert call.max_attempts == 1


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    errors: list[Exception] = []

    def error(n: int) -> Exception:
        errors.append(ValueError(f"attempt {n}"))
        return errors[-1]

    call = RetryingCall(RetryConfig(max_attempts=3, jitter=0), sleep=lambda _: None)

    with pytest.raises(ValueError, match="attempt 3") as info:
        call(failing(5, error))

    assert info.value is errors[-1]
    assert call.attempts == 3


def test_attempts_restart_on_every_call() -> None:
    call = RetryingCall(RetryConfig(max_attempts=3, jitter=0), sleep=lambda _: None)
    call(failing(2))

    call(failing(0))

    assert call.attempts == 1


@pytest.mark.parametrize(
    ("names", "error", "retried"),
    [
        (["Exception"], TransientError("x"), True),
        (["OSError"], TransientError("x"), True),  # subclass of a named class
        (["ConnectionError"], TransientError("x"), True),
        (["TransientError"], TransientError("x"), True),
        (["tests.helpers.components.TransientError"], TransientError("x"), True),  # dotted name
        (["builtins.ConnectionError"], TransientError("x"), True),  # dotted name of a base class
        (["IOError"], FileNotFoundError("x"), True),  # builtin alias of OSError
        (["ValueError", "TimeoutError"], TimeoutError("x"), True),
        (["ValueError"], TransientError("x"), False),
        (["tests.helpers.components.TransientError"], PermanentError("x"), False),
        (["other_package.TransientError"], TransientError("x"), False),
        (["ConnectionError"], OSError("x"), False),  # a base class does not match a subclass name
    ],
)
def test_retry_on_exceptions_matching(names: list[str], error: Exception, retried: bool) -> None:
    sleeps: list[float] = []
    call = RetryingCall(RetryConfig(max_attempts=2, jitter=0, retry_on_exceptions=tuple(names)), sleep=sleeps.append)

    with pytest.raises(type(error)):
        call(failing(2, lambda _: error))

    assert exception_matches(error, names) is retried
    assert call.attempts == (2 if retried else 1)
    assert len(sleeps) == (1 if retried else 0)


def test_dotted_names_match_a_class_re_exported_by_its_top_package() -> None:
    # pyspark.errors.AnalysisException is defined in pyspark.errors.exceptions.captured.
    analysis = type("AnalysisException", (Exception,), {"__module__": "fakespark.errors.exceptions.captured"})

    assert exception_matches(analysis(), ["fakespark.errors.AnalysisException"])
    assert exception_matches(analysis(), ["AnalysisException"])
    assert not exception_matches(analysis(), ["otherspark.errors.AnalysisException"])
    assert not exception_matches(analysis(), ["fakespark.errors.ParseException"])


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1)])
def test_interruptions_are_never_retried(error: BaseException) -> None:
    call = RetryingCall(
        RetryConfig(max_attempts=5, jitter=0, retry_on_exceptions=("BaseException",)), sleep=lambda _: None
    )

    with pytest.raises(type(error)):
        call(failing(1, lambda _: error))  # type: ignore[arg-type,return-value]

    assert call.attempts == 1


def test_on_retry_gets_attempt_max_delay_and_error() -> None:
    seen: list[tuple[int, int, float, str]] = []
    retry = RetryConfig(max_attempts=3, initial_delay_seconds=0.5, backoff_multiplier=2, jitter=0)
    call = RetryingCall(
        retry, on_retry=lambda n, most, delay, err: seen.append((n, most, delay, str(err))), sleep=lambda _: None
    )

    with pytest.raises(RuntimeError):
        call(failing(3))

    assert seen == [(1, 3, 0.5, "attempt 1"), (2, 3, 1.0, "attempt 2")]


def test_stop_requested_before_the_wait_gives_up_with_the_last_error() -> None:
    sleeps: list[float] = []
    call = RetryingCall(RetryConfig(max_attempts=5, jitter=0), sleep=sleeps.append, stop_requested=lambda: True)

    with pytest.raises(RuntimeError, match="attempt 1"):
        call(failing(5))

    assert call.attempts == 1
    assert sleeps == []


def test_stop_requested_during_the_wait_prevents_the_next_attempt() -> None:
    stop = False

    def sleep(_: float) -> None:
        nonlocal stop
        stop = True

    call = RetryingCall(RetryConfig(max_attempts=5, jitter=0), sleep=sleep, stop_requested=lambda: stop)

    with pytest.raises(RuntimeError, match="attempt 1"):
        call(failing(5))

    assert call.attempts == 1


# --------------------------------------------------------------------------------------------------
# retries through the runner
# --------------------------------------------------------------------------------------------------


def test_runner_reports_attempts_when_retries_run_out(calls: list[str], hooks: RecordingHooks) -> None:
    config = pipeline(
        component("flaky", fail_times=-1, error="TransientError", message="reset", retry=no_wait_retry(4))
    )

    result = SimplePipelineRunner(config, hooks=hooks, sleep=lambda _: None).run()

    (flaky,) = result.component_results
    assert flaky.status is ComponentStatus.FAILED
    assert flaky.attempts == 4
    assert flaky.retries == 3
    assert isinstance(flaky.error, TransientError)
    assert calls == ["run:flaky"] * 4
    assert [e[2:4] for e in hooks.events if e[0] == "on_retry_attempt"] == [(1, 4), (2, 4), (3, 4)]
    assert hooks.names("on_component_failure") == ["flaky"]


def test_runner_calls_on_retry_attempt_with_component_attempt_delay_and_error(hooks: RecordingHooks) -> None:
    sleeps: list[float] = []
    retry = {"max_attempts": 3, "initial_delay_seconds": 0.25, "backoff_multiplier": 4, "jitter": 0}
    config = pipeline(component("flaky", fail_times=2, error="ConnectionError", message="reset", retry=retry))

    result = SimplePipelineRunner(config, hooks=hooks, sleep=sleeps.append).run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert result.component_results[0].attempts == 3
    assert sleeps == [0.25, 1.0]
    retries = [e for e in hooks.events if e[0] == "on_retry_attempt"]
    assert [e[1:5] for e in retries] == [("flaky", 1, 3, 250), ("flaky", 2, 3, 1000)]
    assert all(isinstance(e[5], ConnectionError) and str(e[5]) == "reset" for e in retries)


def test_runner_does_not_retry_non_matching_errors(calls: list[str]) -> None:
    config = pipeline(
        component(
            "strict", fail_times=-1, error="PermanentError", retry=no_wait_retry(5, retry_on_exceptions=["OSError"])
        )
    )

    result = SimplePipelineRunner(config, sleep=lambda _: None).run()

    assert result.component_results[0].attempts == 1
    assert calls == ["run:strict"]


# --------------------------------------------------------------------------------------------------
# circuit breaker
# --------------------------------------------------------------------------------------------------


def make_breaker(clock: FakeClock, **config: Any) -> tuple[CircuitBreaker, list[tuple[CircuitState, CircuitState]]]:
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        CircuitBreakerConfig(**config),
        "load",
        on_state_change=lambda old, new: changes.append((old, new)),
        clock=clock,
    )
    return breaker, changes


def state(breaker: CircuitBreaker) -> CircuitState:
    """The breaker's state (a call, so that type checkers do not narrow it between clock moves)."""
    return breaker.state


def fail_calls(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        breaker.before_call()
        breaker.record_failure()


def test_breaker_opens_after_consecutive_failures(clock: FakeClock) -> None:
    breaker, changes = make_breaker(clock, failure_threshold=3, timeout_seconds=30)

    fail_calls(breaker, 2)
    assert state(breaker) is CircuitState.CLOSED
    fail_calls(breaker, 1)

    assert state(breaker) is CircuitState.OPEN
    assert changes == [(CircuitState.CLOSED, CircuitState.OPEN)]


def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=3)

    fail_calls(breaker, 2)
    breaker.before_call()
    breaker.record_success()
    fail_calls(breaker, 2)

    assert state(breaker) is CircuitState.CLOSED


def test_an_open_breaker_refuses_calls_and_says_when_it_retries(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=1, timeout_seconds=30)
    fail_calls(breaker, 1)
    clock.advance(10)

    with pytest.raises(
        CircuitBreakerOpenError,
        match=r"circuit breaker of 'load' is open after repeated failures; it lets a trial call through in 20\.0 s",
    ) as info:
        breaker.before_call()

    assert info.value.component_name == "load"
    assert info.value.retry_in_seconds == pytest.approx(20.0)


def test_half_open_after_the_timeout_lets_trial_calls_through(clock: FakeClock) -> None:
    breaker, changes = make_breaker(clock, failure_threshold=1, timeout_seconds=30, half_open_max_calls=2)
    fail_calls(breaker, 1)

    clock.advance(29.9)
    assert state(breaker) is CircuitState.OPEN
    clock.advance(0.1)
    assert state(breaker) is CircuitState.HALF_OPEN

    breaker.before_call()
    breaker.before_call()
    with pytest.raises(CircuitBreakerOpenError, match=r"in 0\.0 s"):
        breaker.before_call()
    assert changes == [(CircuitState.CLOSED, CircuitState.OPEN), (CircuitState.OPEN, CircuitState.HALF_OPEN)]


def test_half_open_closes_after_success_threshold(clock: FakeClock) -> None:
    breaker, changes = make_breaker(clock, failure_threshold=1, success_threshold=2, timeout_seconds=5)
    fail_calls(breaker, 1)
    clock.advance(5)

    breaker.before_call()
    breaker.record_success()
    assert state(breaker) is CircuitState.HALF_OPEN
    breaker.before_call()  # the first success freed its trial slot
    breaker.record_success()

    assert state(breaker) is CircuitState.CLOSED
    assert changes == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_a_failure_while_half_open_reopens_and_restarts_the_timeout(clock: FakeClock) -> None:
    breaker, changes = make_breaker(clock, failure_threshold=2, timeout_seconds=10)
    fail_calls(breaker, 2)
    clock.advance(10)

    fail_calls(breaker, 1)

    assert state(breaker) is CircuitState.OPEN
    clock.advance(9)
    assert state(breaker) is CircuitState.OPEN
    clock.advance(1)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert changes[-3:] == [
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
    ]


def test_an_open_breaker_stops_retries(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=2, timeout_seconds=60)
    call = RetryingCall(RetryConfig(max_attempts=5, jitter=0), breaker=breaker, sleep=lambda _: None)
    ran: list[int] = []

    def fn() -> None:
        ran.append(1)
        raise RuntimeError("down")

    with pytest.raises(CircuitBreakerOpenError):
        call(fn)

    assert state(breaker) is CircuitState.OPEN
    assert len(ran) == 2  # the third attempt was refused, and a refusal is not retried


def test_runner_breaker_lives_across_runs_and_notifies_hooks(
    clock: FakeClock, calls: list[str], hooks: RecordingHooks
) -> None:
    breaker = {"failure_threshold": 2, "success_threshold": 1, "timeout_seconds": 60}
    config = pipeline(component("load", class_path=FLAKY_ONCE, times=2, circuit_breaker=breaker))
    runner = SimplePipelineRunner(config, hooks=hooks, clock=clock)

    first, second = runner.run(), runner.run()
    refused = runner.run()
    clock.advance(60)
    recovered = runner.run()

    assert [r.status for r in (first, second, refused, recovered)] == [
        PipelineResultStatus.FAILURE,
        PipelineResultStatus.FAILURE,
        PipelineResultStatus.FAILURE,
        PipelineResultStatus.SUCCESS,
    ]
    assert calls == ["run:load"] * 3  # the refused run never called the component
    refused_error = refused.component_results[0].error
    assert isinstance(refused_error, CircuitBreakerOpenError)
    assert "circuit breaker of 'load' is open" in str(refused_error)
    assert [e[1:] for e in hooks.events if e[0] == "on_circuit_breaker_state_change"] == [
        ("load", CircuitState.CLOSED, CircuitState.OPEN),
        ("load", CircuitState.OPEN, CircuitState.HALF_OPEN),
        ("load", CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
