"""What a pipeline run reports: one :class:`ComponentResult` per component and an overall status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_ppf.runner.report import first_line

__all__ = ["ComponentResult", "ComponentStatus", "PipelineResult", "PipelineResultStatus"]


class PipelineResultStatus(StrEnum):
    """Overall outcome of a run.

    ``SUCCESS``: every enabled component is done (ran now or skipped as done before).
    ``PARTIAL_SUCCESS``: some components are done and some failed (or could not run because of it).
    ``FAILURE``: a component failed and none is done.
    ``INTERRUPTED``: the run was stopped from outside (KeyboardInterrupt, SystemExit, a task timeout).
    """

    SUCCESS = "success"
    PARTIAL_SUCCESS = "partial_success"
    FAILURE = "failure"
    INTERRUPTED = "interrupted"


class ComponentStatus(StrEnum):
    """What happened to one component in one run."""

    SUCCESS = "success"  # ran and finished
    FAILED = "failed"  # ran and raised (after its in-process retries)
    SKIPPED = "skipped"  # not run: done in an earlier attempt (resume)
    BLOCKED = "blocked"  # not run: a component it depends on failed
    NOT_RUN = "not_run"  # not run: the pipeline stopped first (fail-fast, interruption)
    DISABLED = "disabled"  # not run: ``enabled = false`` in the config
    INTERRUPTED = "interrupted"  # was running when the run was interrupted


@dataclass(init=False)
class ComponentResult:
    """The outcome of one component.

    ``attempts`` counts the in-process attempts made (0 when it did not run); ``reason`` says why a
    component did not run; ``error`` is the last exception of a failed component.

    Also built the way pyspark-pipeline-framework builds it: ``ComponentResult(name, success=True,
    duration_ms=..., error=..., retries=...)`` (``success`` as the second positional argument works too).
    """

    component_name: str
    status: ComponentStatus
    duration_ms: int = 0
    attempts: int = 0
    error: BaseException | None = None
    reason: str | None = None

    def __init__(
        self,
        component_name: str,
        status: ComponentStatus | bool | None = None,
        duration_ms: int = 0,
        attempts: int | BaseException = 0,
        error: BaseException | int | None = None,
        reason: str | None = None,
        *,
        success: bool | None = None,
        retries: int | None = None,
    ) -> None:
        if isinstance(status, bool):  # pyspark-pipeline-framework's order: (name, success, duration_ms, error, retries)
            status, success = None, status
            if isinstance(error, int) and retries is None:
                error, retries = None, error
            if isinstance(attempts, BaseException):
                attempts, error = 0, attempts
        if status is None:
            if success is None:
                raise TypeError("ComponentResult needs a status (or success=True / False)")
            status = ComponentStatus.SUCCESS if success else ComponentStatus.FAILED
        if isinstance(attempts, BaseException) or isinstance(error, int):
            raise TypeError("ComponentResult: attempts must be a number and error an exception")
        if retries is not None:
            attempts = retries + 1
        elif success is not None and not attempts:
            attempts = 1
        self.component_name = component_name
        self.status = ComponentStatus(status)
        self.duration_ms = duration_ms
        self.attempts = attempts
        self.error = error
        self.reason = reason

    @property
    def success(self) -> bool:
        """Whether the component ran and finished in this run."""
        return self.status is ComponentStatus.SUCCESS

    @property
    def retries(self) -> int:
        """In-process retries used (attempts after the first)."""
        return max(0, self.attempts - 1)

    @property
    def duration_seconds(self) -> float:
        """Wall time spent in this run, in seconds."""
        return self.duration_ms / 1000.0

    @property
    def error_type(self) -> str | None:
        """The failing exception's class name."""
        return type(self.error).__name__ if self.error is not None else None

    @property
    def error_message(self) -> str | None:
        """The failing exception's message (first line, trimmed)."""
        if self.error is None:
            return None
        return first_line(self.error, 500)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly summary."""
        out: dict[str, Any] = {
            "name": self.component_name,
            "status": self.status.value,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
        }
        if self.error is not None:
            out["error_type"] = self.error_type
            out["error_message"] = self.error_message
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class PipelineResult:
    """The outcome of one run of a pipeline."""

    status: PipelineResultStatus
    pipeline_name: str
    component_results: list[ComponentResult] = field(default_factory=list)
    total_duration_ms: int = 0
    interrupted_by: BaseException | None = None

    def _names(self, *statuses: ComponentStatus) -> list[str]:
        return [r.component_name for r in self.component_results if r.status in statuses]

    @property
    def completed_components(self) -> list[str]:
        """Components that ran and finished in this run, in completion order."""
        return self._names(ComponentStatus.SUCCESS)

    @property
    def skipped_components(self) -> list[str]:
        """Components not run because an earlier attempt had finished them."""
        return self._names(ComponentStatus.SKIPPED)

    @property
    def failed_components(self) -> list[tuple[str, BaseException]]:
        """``(name, error)`` of every component that failed in this run."""
        return [
            (r.component_name, r.error)
            for r in self.component_results
            if r.status is ComponentStatus.FAILED and r.error is not None
        ]

    @property
    def blocked_components(self) -> list[str]:
        """Components not run because something they depend on failed."""
        return self._names(ComponentStatus.BLOCKED)

    @property
    def done_components(self) -> list[str]:
        """Components finished now or in an earlier attempt (what a further resume may skip)."""
        return self._names(ComponentStatus.SUCCESS, ComponentStatus.SKIPPED)

    @property
    def success(self) -> bool:
        """Whether the whole pipeline is done."""
        return self.status is PipelineResultStatus.SUCCESS

    @property
    def total_duration_seconds(self) -> float:
        """Wall time of the run in seconds."""
        return self.total_duration_ms / 1000.0

    def get(self, name: str) -> ComponentResult | None:
        """Return the result of the component called ``name``."""
        for result in self.component_results:
            if result.component_name == name:
                return result
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly summary."""
        return {
            "pipeline": self.pipeline_name,
            "status": self.status.value,
            "duration_ms": self.total_duration_ms,
            "components": [r.to_dict() for r in self.component_results],
        }

    @staticmethod
    def decide_status(results: list[ComponentResult], interrupted: bool = False) -> PipelineResultStatus:
        """Derive the overall status from per-component results (see :class:`PipelineResultStatus`)."""
        if interrupted:
            return PipelineResultStatus.INTERRUPTED
        statuses = {r.status for r in results}
        bad = statuses & {ComponentStatus.FAILED, ComponentStatus.BLOCKED, ComponentStatus.NOT_RUN}
        if not bad:
            return PipelineResultStatus.SUCCESS
        if statuses & {ComponentStatus.SUCCESS, ComponentStatus.SKIPPED}:
            return PipelineResultStatus.PARTIAL_SUCCESS
        return PipelineResultStatus.FAILURE
