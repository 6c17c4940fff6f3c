"""In-process resilience of one component: retries with exponential backoff (tenacity) and a circuit breaker."""

from __future__ import annotations

import builtins
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import tenacity

from airflow_ppf.config.models import CircuitBreakerConfig, RetryConfig
from airflow_ppf.runner.hooks import CriticalHookError

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "RetryExecutor",
    "RetryingCall",
    "backoff_delay",
    "exception_matches",
    "exponential_delay",
    "with_retry",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


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

    @property
    def time_until_reset(self) -> float:
        """pyspark-pipeline-framework's name of :attr:`retry_in_seconds`."""
        return self.retry_in_seconds


StateListener = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    """Classic three-state circuit breaker (closed → open → half-open → closed).

    ``failure_threshold`` consecutive failures open the circuit; after ``timeout_seconds`` it turns
    half-open and lets ``half_open_max_calls`` trial calls through; ``success_threshold`` successes in a
    row close it, one failure opens it again.

    Use it around any call with :meth:`call`, or step by step (:meth:`before_call`, then
    :meth:`record_success` / :meth:`record_failure`) as the runner does. An ``on_state_change`` listener
    that raises is logged and ignored (a critical hook's failure still fails the run).
    """

    def __init__(
        self,
        config: CircuitBreakerConfig,
        name: str = "default",
        on_state_change: StateListener | None = None,
        clock: Callable[[], float] | None = time.monotonic,
    ) -> None:
        self.config = config
        self.name = name
        self._on_state_change = on_state_change
        self._clock = clock or time.monotonic
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

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    @property
    def success_count(self) -> int:
        """Successes counted while half-open."""
        return self._successes

    @property
    def time_until_reset(self) -> float:
        """Seconds until an open circuit lets a trial call through (0 unless open)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self.config.timeout_seconds - (self._clock() - self._opened_at))

    def _set(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if new is CircuitState.CLOSED:
            self._failures = 0
        self._successes = 0
        self._half_open_calls = 0
        if old is not new and self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception as exc:
                if isinstance(exc, CriticalHookError):
                    raise
                log.warning(
                    "Circuit breaker %r: state listener raised %s: %s (ignored)", self.name, type(exc).__name__, exc
                )

    def reset(self) -> None:
        """Close the circuit and forget the counts."""
        with self._lock:
            self._set(CircuitState.CLOSED)

    def call(self, func: Callable[[], T]) -> T:
        """Call ``func`` through the breaker: refused while open, its outcome counted.

        Raises:
            CircuitBreakerOpenError: the circuit is open (or half-open with its trial calls used up).
        """
        self.before_call()
        try:
            value = func()
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return value

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


def exponential_delay(retry: RetryConfig, failed_attempt: int) -> float:
    """``initial_delay_seconds * backoff_multiplier ** (failed_attempt - 1)``, capped at ``max_delay_seconds``."""
    return float(
        min(retry.max_delay_seconds, retry.initial_delay_seconds * retry.backoff_multiplier ** (failed_attempt - 1))
    )


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
    base = exponential_delay(retry, failed_attempt)
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
        try:
            return self.breaker.call(fn) if self.breaker is not None else fn()
        except Exception as exc:
            self._last_error = exc
            raise

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


class RetryExecutor:
    """Retry any call under a :class:`RetryConfig` (pyspark-pipeline-framework's retry API, on tenacity).

    The delay before retry ``n`` is :func:`exponential_delay` plus a random extra of up to
    ``jitter_factor`` times it (``jitter_factor=0`` gives exact delays; the config's own ``jitter`` is
    the runner's and is not used here).
    """

    def __init__(
        self,
        config: RetryConfig,
        jitter_factor: float = 0.25,
        sleep_func: Callable[[float], Any] | None = None,
    ) -> None:
        self._config = config
        self.jitter_factor = jitter_factor
        self._sleep = sleep_func or time.sleep

    @property
    def config(self) -> RetryConfig:
        """The retry policy."""
        return self._config

    def calculate_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` is 0 for the first retry)."""
        base = exponential_delay(self._config, attempt + 1)
        if self.jitter_factor > 0:
            base += base * self.jitter_factor * random.random()
        return base

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is of a class named in ``retry_on_exceptions`` (see :func:`exception_matches`)."""
        return isinstance(error, Exception) and exception_matches(error, self._config.retry_on_exceptions)

    def execute(self, func: Callable[[], T], on_retry: Callable[[int, Exception, float], Any] | None = None) -> T:
        """Call ``func`` until it succeeds, raises an error that is not retryable, or attempts run out.

        ``on_retry(failed_attempt, error, delay_seconds)`` is called before each wait (``failed_attempt``
        counts from 1). The last error is raised as it is.
        """

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None and state.next_action is not None:
                error = state.outcome.exception()
                assert isinstance(error, Exception)
                on_retry(state.attempt_number, error, state.next_action.sleep)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._config.max_attempts),
            wait=lambda state: self.calculate_delay(state.attempt_number - 1),
            retry=tenacity.retry_if_exception(self.is_retryable),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        result: T = retrying(func)
        return result


def with_retry(
    config: RetryConfig, jitter_factor: float = 0.25, sleep_func: Callable[[float], Any] | None = None
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a function so that each call runs under :class:`RetryExecutor`."""
    executor = RetryExecutor(config, jitter_factor=jitter_factor, sleep_func=sleep_func)

    def decorator(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return executor.execute(lambda: func(*args, **kwargs))

        return wrapper

    return decorator
