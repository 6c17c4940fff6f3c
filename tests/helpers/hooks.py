"""Hooks that record what they are told."""

from __future__ import annotations

from typing import Any

from airflow_ppf.runner import NoOpHooks


class RecordingHooks(NoOpHooks):
    """Record every event as a tuple ``(method, component name or pipeline name, *details)``."""

    def __init__(self, critical: bool = False, fail_on: str | None = None, fail_for: str | None = None) -> None:
        self.critical = critical
        self.fail_on = fail_on
        self.fail_for = fail_for
        self.events: list[tuple[Any, ...]] = []
        self.results: list[Any] = []

    def _record(self, method: str, subject: str, *details: Any) -> None:
        self.events.append((method, subject, *details))
        if self.fail_on == method and self.fail_for in (None, subject):
            raise OSError(f"{method} failed for {subject}")

    def names(self, method: str) -> list[str]:
        """Subjects of every recorded ``method`` event, in order."""
        return [e[1] for e in self.events if e[0] == method]

    def before_pipeline(self, config: Any) -> None:
        self._record("before_pipeline", config.name)

    def after_pipeline(self, config: Any, result: Any) -> None:
        self.results.append(result)
        self._record("after_pipeline", config.name, result.status)

    def before_component(self, config: Any, index: int, total: int) -> None:
        self._record("before_component", config.name, index, total)

    def after_component(self, config: Any, index: int, total: int, duration_ms: int) -> None:
        self._record("after_component", config.name, index, total, duration_ms)

    def on_component_failure(self, config: Any, index: int, error: BaseException) -> None:
        self._record("on_component_failure", config.name, index, error)

    def on_component_skipped(self, config: Any, index: int, total: int, reason: str) -> None:
        self._record("on_component_skipped", config.name, index, total, reason)

    def on_retry_attempt(
        self, config: Any, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        self._record("on_retry_attempt", config.name, attempt, max_attempts, delay_ms, error)

    def on_circuit_breaker_state_change(self, component_name: str, old_state: Any, new_state: Any) -> None:
        self._record("on_circuit_breaker_state_change", component_name, old_state, new_state)
