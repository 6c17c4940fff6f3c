"""Pipeline metrics through Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as ``[metrics]`` says).

Every metric is sent under its name with tags (``dag_id``, ``task_id``, ``pipeline``, and ``component``
for per-component ones), and, while ``[metrics] legacy_names_on`` is true (Airflow's default), also
under a name that carries those values (for plain StatsD, which has no tags), like Airflow's own
``ti.finish.<dag_id>.<task_id>.<state>``. The names are listed in docs/airflow.md (Observability).

Nothing is sent when Airflow's metrics are off; a metric that cannot be sent is logged and dropped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.configuration import conf
from airflow.sdk.observability.stats import Stats

from airflow_ppf.runner.hooks import NoOpHooks, RunPlan

if TYPE_CHECKING:
    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.results import PipelineResult

__all__ = ["METRICS", "StatsHooks"]

log = logging.getLogger(__name__)

#: ``name: (kind, unit, what)`` of every metric sent; per-component ones carry the ``component`` tag.
METRICS: dict[str, tuple[str, str, str]] = {
    "ppf.component.duration": ("timer", "ms", "run time of a component that ran (tag status: success/failed)"),
    "ppf.component.succeeded": ("counter", "", "a component finished"),
    "ppf.component.failed": ("counter", "", "a component failed (after its in-process retries)"),
    "ppf.component.skipped": ("counter", "", "a component was not run (tag cause: resume / upstream_failed)"),
    "ppf.pipeline.duration": ("timer", "ms", "run time of the try (tag status)"),
    "ppf.resume.skipped_components": ("gauge", "", "components this try skipped because an earlier try did them"),
    "ppf.resume.seconds_saved": ("gauge", "s", "recorded time of the skipped components minus the restore time"),
    "ppf.saved_views.restore_time": ("timer", "ms", "checking and restoring the saved views this try read"),
    "ppf.saved_views.restored_bytes": ("gauge", "bytes", "size of the saved views restored"),
    "ppf.saved_views.save_time": ("timer", "ms", "saving one view for a later try (tag component)"),
    "ppf.saved_views.saved_bytes": ("counter", "bytes", "bytes written saving views (tag component)"),
    "ppf.checkpoint.write_time": ("timer", "ms", "one durable write of the checkpoint"),
}

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def _name_part(value: str) -> str:
    """A tag value as one segment of a dotted StatsD name (dots become ``__``, as Airflow does)."""
    return _INVALID.sub("_", value.replace(".", "__"))


class StatsHooks(NoOpHooks):
    """Send a run's metrics through Airflow's ``Stats`` (see :data:`METRICS`).

    Args:
        tags: the task instance's tags (``dag_id``, ``task_id``: Airflow's ``ti.stats_tags``) and ``pipeline``.
    """

    def __init__(self, tags: Mapping[str, str]) -> None:
        self.tags = dict(tags)
        self.legacy = conf.getboolean("metrics", "legacy_names_on", fallback=True)
        self._started: dict[str, float] = {}
        self._plan: RunPlan | None = None

    def _send(self, kind: str, name: str, value: float, component: str | None = None, **tags: str) -> None:
        all_tags = {**self.tags, **({"component": component} if component else {}), **tags}
        try:
            self._call(kind, name, value, all_tags)
            if self.legacy:
                parts = [self.tags.get("dag_id", ""), self.tags.get("task_id", ""), *([component] if component else [])]
                legacy = ".".join([name, *(_name_part(p) for p in parts)])
                self._call(kind, legacy, value, dict(tags))
        except Exception as exc:  # a metric is never worth a failed run
            log.debug("Metric %s not sent: %s", name, exc)

    @staticmethod
    def _call(kind: str, name: str, value: float, tags: dict[str, Any]) -> None:
        if kind == "timer":
            Stats.timing(name, value, tags=tags)
        elif kind == "gauge":
            Stats.gauge(name, value, tags=tags)
        else:
            Stats.incr(name, int(value), tags=tags)

    # -- the run ---------------------------------------------------------------------------------------

    def on_resume_plan(self, plan: RunPlan) -> None:
        self._plan = plan

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        self._started[config.name] = time.monotonic()

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        self._send("timer", "ppf.component.duration", duration_ms, config.name, status="success")
        self._send("counter", "ppf.component.succeeded", 1, config.name)

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        started = self._started.get(config.name)
        if started is not None:
            elapsed_ms = (time.monotonic() - started) * 1000
            self._send("timer", "ppf.component.duration", elapsed_ms, config.name, status="failed")
        self._send("counter", "ppf.component.failed", 1, config.name, error=type(error).__name__)

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        by_resume = self._plan is not None and config.name in self._plan.skip
        self._send(
            "counter", "ppf.component.skipped", 1, config.name, cause="resume" if by_resume else "upstream_failed"
        )

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        self._send("timer", "ppf.pipeline.duration", result.total_duration_ms, status=result.status.value)
        plan = self._plan
        skipped = len(plan.skip) if plan is not None else 0
        # The recorded plan's net saving: skipped components' recorded time minus the restore cost.
        saved_ms = int(getattr(plan, "time_saved_ms", 0) or 0)
        self._send("gauge", "ppf.resume.skipped_components", skipped)
        self._send("gauge", "ppf.resume.seconds_saved", round(saved_ms / 1000, 3))

    # -- checkpoint work (CheckpointObserver) ------------------------------------------------------------

    def on_checkpoint_written(self, seconds: float) -> None:
        self._send("timer", "ppf.checkpoint.write_time", seconds * 1000)

    def on_view_saved(self, component: str, record: Mapping[str, Any], seconds: float) -> None:
        self._send("timer", "ppf.saved_views.save_time", seconds * 1000, component)
        self._send("counter", "ppf.saved_views.saved_bytes", int(record.get("bytes") or 0), component)

    def on_views_restored(self, views: list[str], restored_bytes: int, seconds: float) -> None:
        self._send("timer", "ppf.saved_views.restore_time", seconds * 1000)
        self._send("gauge", "ppf.saved_views.restored_bytes", restored_bytes)
