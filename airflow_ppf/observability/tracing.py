"""One OpenTelemetry span per component, and per restore / save of views, under the task's span.

Airflow's worker runs each task inside a span (``worker.<task_id>``) when ``[traces] otel_on`` is true;
the spans made here are its children (they are started in the task's current context). When tracing
is off, OpenTelemetry's API hands out non-recording spans: nothing is recorded, nothing is sent.

Span names: ``ppf.component.<name>`` (attributes ``ppf.component.status``: success / failed / skipped /
interrupted, ``ppf.component.action``: the plan's run / rerun / skip, ``ppf.skip_reason``),
``ppf.restore_views`` (before the first component) and ``ppf.save_view.<view>`` (child of its
component's span).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from airflow_ppf.runner.hooks import NoOpHooks, RunPlan
from airflow_ppf.runner.report import describe_error

if TYPE_CHECKING:
    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.results import PipelineResult

__all__ = ["TracingHooks"]

TRACER_NAME = "airflow_ppf"


class TracingHooks(NoOpHooks):
    """Make the spans of a run (see the module docstring).

    Args:
        tags: ``dag_id``, ``task_id`` and ``pipeline``, set as span attributes.
    """

    def __init__(self, tags: Mapping[str, str]) -> None:
        self.tracer = trace.get_tracer(TRACER_NAME)
        self.attributes: dict[str, Any] = {
            "airflow.dag_id": tags.get("dag_id", ""),
            "airflow.task_id": tags.get("task_id", ""),
            "ppf.pipeline": tags.get("pipeline", ""),
        }
        self._plan: RunPlan | None = None
        self._open: dict[str, tuple[Span, object]] = {}

    def _attributes(self, config: ComponentConfig, index: int, total: int) -> dict[str, Any]:
        action = "run"
        entry = getattr(self._plan, "get", lambda _name: None)(config.name)
        if entry is not None:
            action = str(getattr(entry.action, "value", entry.action))
        return {
            **self.attributes,
            "ppf.component": config.name,
            "ppf.component.class": config.class_path,
            "ppf.component.position": f"{index + 1}/{total}",
            "ppf.component.action": action,
        }

    def _past_span(self, name: str, seconds: float, parent: Span | None, **attributes: Any) -> None:
        """A span for work that just ended and took ``seconds``."""
        end = time.time_ns()
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            name,
            context=context,
            start_time=end - int(seconds * 1e9),
            attributes={**self.attributes, **attributes},
        )
        span.set_status(Status(StatusCode.OK))
        span.end(end_time=end)

    def _close(self, name: str, status: str, error: BaseException | None = None) -> None:
        opened = self._open.pop(name, None)
        if opened is None:
            return
        span, token = opened
        span.set_attribute("ppf.component.status", status)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, describe_error(error, 200)))
        elif status == "success":
            span.set_status(Status(StatusCode.OK))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

    # -- the run ---------------------------------------------------------------------------------------

    def on_resume_plan(self, plan: RunPlan) -> None:
        self._plan = plan

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        span = self.tracer.start_span(f"ppf.component.{config.name}", attributes=self._attributes(config, index, total))
        # Current while the component runs: Spark or component code that traces nests under it.
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open[config.name] = (span, token)

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        self._close(config.name, "success")

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        self._close(config.name, "failed", error)

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        attributes = {**self._attributes(config, index, total), "ppf.component.status": "skipped"}
        span = self.tracer.start_span(
            f"ppf.component.{config.name}", attributes={**attributes, "ppf.skip_reason": reason}
        )
        span.end()

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        opened = self._open.get(config.name)
        if opened is not None:
            opened[0].add_event(
                "retry",
                {"ppf.attempt": attempt, "ppf.max_attempts": max_attempts, "ppf.error": describe_error(error, 200)},
            )

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        for name in list(self._open):
            self._close(name, "interrupted")

    # -- checkpoint work (CheckpointObserver) ------------------------------------------------------------

    def on_views_restored(self, views: list[str], restored_bytes: int, seconds: float) -> None:
        self._past_span(
            "ppf.restore_views", seconds, None, **{"ppf.views": list(views), "ppf.restored_bytes": restored_bytes}
        )

    def on_view_saved(self, component: str, record: Mapping[str, Any], seconds: float) -> None:
        opened = self._open.get(component)
        self._past_span(
            f"ppf.save_view.{record.get('view')}",
            seconds,
            opened[0] if opened is not None else None,
            **{
                "ppf.component": component,
                "ppf.view": str(record.get("view")),
                "ppf.saved_bytes": int(record.get("bytes") or 0),
                "ppf.saved_rows": int(record.get("rows") or 0),
            },
        )
