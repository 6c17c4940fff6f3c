"""In-process resilience of one component: retries with exponential backoff (tenacity) and a circuit breaker."""

from __future__ import annotations

import builtins
import random
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import tenacity

from airflow_ppf.config.models import CircuitBreakerConfig, RetryConfig

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "RetryingCall",
    "backoff_delay",
    "exception_matches",
]


class CircuitState(StrEnum):
    """State of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreakerOpenError(RuntimeError):
    """A call was refused because the component's circuit breaker is open."""

    def __init__(self, name: str, retry_in_seconds: float) -> None:
        self.component_name = name
        self.retry_in_seconds = retry_in_seconds
        super().__init__(
            f"circuit breaker of '{name}' is open after repeated failures; "
            f"it lets a trial call through in {retry_in_seconds:.1f} s"
        )


StateListener = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    """Classic three-state circuit breaker (closed → open → half-open → closed).

    ``failure_threshold`` consecutive failures open the circuit; after ``timeout_seconds`` it turns
    half-open and lets ``half_open_max_calls`` trial calls through; ``success_threshold`` successes in a
    row close it, one failure opens it again.
    """

    def __init__(
        self,
        config: CircuitBreakerConfig,
        name: str,
        *,
        on_state_change: StateListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = name
        self._on_state_change = on_state_change
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._half_open_calls = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit turns half-open once its timeout has passed)."""
        with self._lock:
            self._refresh()
            return self._state

    def _set(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if new is not CircuitState.CLOSED:
            self._successes = 0
        self._half_open_calls = 0
        if old is not new and self._on_state_change is not None:
            self._on_state_change(old, new)

    def _refresh(self) -> None:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.config.timeout_seconds:
            self._set(CircuitState.HALF_OPEN)

    def before_call(self) -> None:
        """Let a call through or refuse it.

        Raises:
            CircuitBreakerOpenError: the circuit is open (or half-open with its trial calls used up).
        """
        with self._lock:
            self._refresh()
            if self._state is CircuitState.OPEN:
                wait = self.config.timeout_seconds - (self._clock() - self._opened_at)
                raise CircuitBreakerOpenError(self.name, max(0.0, wait))
            if self._state is CircuitState.HALF_OPEN:
                if self._half_open_calls >= self.config.half_open_max_calls:
                    raise CircuitBreakerOpenError(self.name, 0.0)
                self._half_open_calls += 1

    def record_success(self) -> None:
        """Count a successful call."""
        with self._lock:
            self._failures = 0
            if self._state is CircuitState.HALF_OPEN:
                self._successes += 1
                if self._successes >= self.config.success_threshold:
                    self._set(CircuitState.CLOSED)
                else:
                    self._half_open_calls = max(0, self._half_open_calls - 1)

    def record_failure(self) -> None:
        """Count a failed call."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._set(CircuitState.OPEN)
                return
            self._failures += 1
            if self._state is CircuitState.CLOSED and self._failures >= self.config.failure_threshold:
                self._set(CircuitState.OPEN)


def exception_matches(error: BaseException, names: Sequence[str]) -> bool:
    """Whether ``error`` is an instance of a class named in ``names`` (subclasses match).

    A name is a bare class name (``ValueError``, ``AnalysisException``) or a dotted path
    (``pyspark.errors.AnalysisException``). Matching walks the error's class hierarchy by name, so the
    named classes never need to be imported.
    """
    wanted = {n.strip() for n in names}
    # Builtin aliases match the class they stand for, as in an except clause: IOError is OSError.
    wanted |= {
        alias.__name__
        for n in wanted
        if isinstance(alias := getattr(builtins, n, None), type) and issubclass(alias, BaseException)
    }
    for cls in type(error).__mro__:
        if cls.__name__ in wanted or f"{cls.__module__}.{cls.__qualname__}" in wanted:
            return True
        # pyspark re-exports its errors: pyspark.errors.AnalysisException is defined in a submodule.
        top = cls.__module__.split(".")[0]
        if any(w.startswith(top + ".") and w.rsplit(".", 1)[-1] == cls.__name__ for w in wanted):
            return True
    return False


def backoff_delay(retry: RetryConfig, failed_attempt: int, rng: random.Random | None = None) -> float:
    """Delay in seconds before the retry that follows attempt ``failed_attempt`` (1-based)."""
    base = retry.initial_delay_seconds * retry.backoff_multiplier ** (failed_attempt - 1)
    base = min(retry.max_delay_seconds, base)
    if retry.jitter:
        base *= (rng or random).uniform(1 - retry.jitter, 1 + retry.jitter)
    return max(0.0, min(retry.max_delay_seconds, base))


RetryListener = Callable[[int, int, float, BaseException], None]


class RetryingCall:
    """Run a callable under a retry policy and an optional circuit breaker; :attr:`attempts` counts tries.

    Args:
        retry: the policy; ``None`` means one attempt.
        breaker: consulted before every attempt and told the outcome.
        on_retry: ``(failed_attempt, max_attempts, delay_seconds, error)`` before each wait.
        sleep: how to wait (an interruptible wait when the run can be cancelled).
        stop_requested: when it returns true (the run was cancelled), no further attempt is made and the
            last error is raised, also when the request came during the wait.
    """

    def __init__(
        self,
        retry: RetryConfig | None,
        *,
        breaker: CircuitBreaker | None = None,
        on_retry: RetryListener | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.retry = retry
        self.breaker = breaker
        self.on_retry = on_retry
        self.sleep = sleep
        self.stop_requested = stop_requested
        self.attempts = 0
        self._last_error: Exception | None = None

    def _stopping(self) -> bool:
        return self.stop_requested is not None and bool(self.stop_requested())

    @property
    def max_attempts(self) -> int:
        return self.retry.max_attempts if self.retry else 1

    def _retryable(self, error: BaseException) -> bool:
        if self.retry is None or not isinstance(error, Exception):
            return False
        if isinstance(error, CircuitBreakerOpenError) or self._stopping():
            return False
        return exception_matches(error, self.retry.retry_on_exceptions)

    def _attempt(self, fn: Callable[[], Any]) -> Any:
        if self._last_error is not None and self._stopping():
            # Stopped while waiting to retry: give up with the error that caused the wait.
            raise self._last_error
        self.attempts += 1
        if self.breaker is not None:
            self.breaker.before_call()
        try:
            value = fn()
        except Exception as exc:
            self._last_error = exc
            if self.breaker is not None:
                self.breaker.record_failure()
            raise
        if self.breaker is not None:
            self.breaker.record_success()
        return value

    def __call__(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` until it succeeds, the error is not retryable, or attempts run out; re-raise the last error."""
        self.attempts = 0
        self._last_error = None
        retry = self.retry
        if retry is None:
            return self._attempt(fn)

        def wait(state: tenacity.RetryCallState) -> float:
            return backoff_delay(retry, state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if self.on_retry is not None and state.outcome is not None and state.next_action is not None:
                error = state.outcome.exception()
                assert error is not None
                self.on_retry(state.attempt_number, retry.max_attempts, state.next_action.sleep, error)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retry.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(self._retryable),
            before_sleep=before_sleep,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(self._attempt, fn)
