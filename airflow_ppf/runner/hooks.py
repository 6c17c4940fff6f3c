"""Lifecycle hooks: observe (or, for critical hooks like checkpointing, guard) a pipeline run.

A hook implements any subset of the :class:`PipelineHooks` methods (every method the runner calls is
declared there). Observer hooks (logging, metrics) that raise are logged and ignored; a hook whose
``critical`` attribute is true fails the run when it raises (the runner raises
:class:`CriticalHookError`, after telling every hook the run ended when the run had started).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ppf.runner.report import describe_error, format_seconds
from airflow_ppf.runner.results import ComponentStatus, PipelineResult

if TYPE_CHECKING:
    from airflow_ppf.components.base import Component
    from airflow_ppf.config.models import ComponentConfig, PipelineConfig
    from airflow_ppf.runner.resilience import CircuitState
    from airflow_ppf.runner.simple_runner import SimplePipelineRunner

__all__ = [
    "ComponentRunListener",
    "CompositeHooks",
    "CriticalHookError",
    "FailureRecovery",
    "LoggingHooks",
    "MeterRegistry",
    "MetricsHooks",
    "NoOpHooks",
    "PipelineHooks",
    "RunPlan",
    "RunPreparation",
    "is_critical",
]

log = logging.getLogger(__name__)

HOOK_METHODS = (
    "prepare_run",
    "recover_failure",
    "on_resume_plan",
    "before_pipeline",
    "after_pipeline",
    "before_component",
    "after_component",
    "on_component_failure",
    "on_component_skipped",
    "on_retry_attempt",
    "on_circuit_breaker_state_change",
)


class RunPlan(Protocol):
    """What a run is going to do per component (skip / run / rerun, and why), as a person reads it.

    The runner only carries a plan (checkpointing makes it: :class:`~airflow_ppf.checkpoint.ResumePlan`).
    """

    @property
    def skip(self) -> set[str]:
        """Names of the components the run skips."""
        ...

    @property
    def skip_reasons(self) -> dict[str, str]:
        """Why each skipped component is skipped (``completed in attempt 1``)."""
        ...

    def headline(self) -> str:
        """One sentence: what the run does."""
        ...

    def format_table(self, *, headline: bool = True) -> str:
        """The plan as a text table (with the headline as its first line unless ``headline=False``)."""
        ...


class ComponentRunListener:
    """Called around each component's run, before the hooks hear about it (added by ``prepare_run``).

    ``after_success`` runs after a component finished and *before* ``after_component`` hooks (so a
    checkpoint never claims a component done before, e.g., its outputs are saved); raising there fails
    the component.
    """

    def before_run(self, config: ComponentConfig, component: Component) -> None:
        """Called just before the first attempt."""

    def after_success(self, config: ComponentConfig, component: Component) -> None:
        """Called once the component finished."""


@dataclass
class RunPreparation:
    """What a run is about to do, handed to :meth:`PipelineHooks.prepare_run` before anything runs.

    A preparing hook (checkpointing) may turn skips into reruns (:meth:`rerun`, with the reason), replace
    ``plan`` by the plan the run now follows, and add listeners around each component. The runner then
    announces ``plan`` and runs with ``skip``.
    """

    runner: SimplePipelineRunner
    components: Mapping[str, Component]
    skip: set[str]
    skip_reasons: dict[str, str]
    plan: RunPlan | None = None
    reruns: dict[str, str] = field(default_factory=dict)
    listeners: list[ComponentRunListener] = field(default_factory=list)

    def rerun(self, name: str, why: str) -> None:
        """Run ``name`` after all, although it was to be skipped; ``why`` is logged."""
        if name in self.skip:
            self.skip.discard(name)
            self.skip_reasons.pop(name, None)
            self.reruns[name] = why


@dataclass
class FailureRecovery:
    """A component failed for good; handed to :meth:`PipelineHooks.recover_failure` before that is reported.

    A recovering hook that can remove the cause by running components again (checkpointing: a saved copy
    found damaged while it was read is remade by rerunning its producer) calls :meth:`rerun` for each of
    them, with the reason. The runner then runs them again in execution order, ``config`` last, and goes
    on. The hook is responsible for bounding this (the runner also stops after as many recoveries as the
    pipeline has components). A hook may also replace :attr:`error` by a clearer one (naming the cause
    and the place): when nothing is run again, that is the error the failure is reported with.

    Attributes:
        runner: the runner.
        config: the component that failed.
        error: its error.
        done: the components done in this run so far (skipped as done, or finished).
        ran: the components that finished in this run so far (not those skipped).
        reruns: ``{name: why}`` of the components to run again (the failed one is always run last).
    """

    runner: SimplePipelineRunner
    config: ComponentConfig
    error: BaseException
    done: frozenset[str]
    ran: frozenset[str]
    reruns: dict[str, str] = field(default_factory=dict)

    def rerun(self, name: str, why: str) -> None:
        """Run ``name`` again before the failed component is run again; ``why`` is logged."""
        self.reruns.setdefault(name, why)


class CriticalHookError(RuntimeError):
    """A critical hook (e.g. checkpointing) failed, so the run's progress may not be recorded.

    ``result`` holds the pipeline result as far as it got, when the failure happened during the run.
    """

    def __init__(self, hook: object, method: str, error: BaseException) -> None:
        self.hook_name = type(hook).__name__
        self.method = method
        self.error = error
        self.result: PipelineResult | None = None
        super().__init__(f"critical hook {self.hook_name}.{method} failed: {type(error).__name__}: {error}")


class PipelineHooks(Protocol):
    """Callbacks at each step of a run. ``index`` is 0-based, ``total`` counts enabled components.

    ``critical``: whether the hook's errors fail the run (default: they are logged and ignored).
    """

    critical: bool

    def prepare_run(self, run: RunPreparation) -> None:
        """Called once, after the components are built and before anything runs (restore what skipped
        components produced, or decide they must run again)."""

    def on_resume_plan(self, plan: RunPlan) -> None:
        """Called once with the plan the run follows (after ``prepare_run``), when the run has a plan."""

    def recover_failure(self, recovery: FailureRecovery) -> None:
        """Called when a component failed for good, before ``on_component_failure``: ask to run components
        again (``recovery.rerun``) to remove the cause within the run, or give a clearer error."""

    def before_pipeline(self, config: PipelineConfig) -> None:
        """Called once before any component runs."""

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        """Called once at the end, also after a failure or an interruption."""

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        """Called before a component's first attempt."""

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        """Called after a component finished successfully."""

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        """Called when a component failed for good (after its retries)."""

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        """Called for a component that is not run: done earlier, or blocked by a failure (not when disabled)."""

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        """Called before an in-process retry; ``attempt`` is the number of the attempt that failed."""

    def on_circuit_breaker_state_change(
        self, component_name: str, old_state: CircuitState, new_state: CircuitState
    ) -> None:
        """Called when a component's circuit breaker changes state."""


def is_critical(hook: object) -> bool:
    """Whether a hook's errors must fail the run (its ``critical`` attribute is ``True`` itself, so a stand-in
    object that answers any attribute, such as a mock, stays an observer)."""
    return getattr(hook, "critical", False) is True


class NoOpHooks:
    """Hooks that do nothing: the default, and a convenient base class for partial hooks."""

    critical = False

    def prepare_run(self, run: RunPreparation) -> None:
        pass

    def on_resume_plan(self, plan: RunPlan) -> None:
        pass

    def recover_failure(self, recovery: FailureRecovery) -> None:
        pass

    def before_pipeline(self, config: PipelineConfig) -> None:
        pass

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        pass

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        pass

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        pass

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        pass

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        pass

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        pass

    def on_circuit_breaker_state_change(
        self, component_name: str, old_state: CircuitState, new_state: CircuitState
    ) -> None:
        pass


class CompositeHooks:
    """Forward every event to several hooks, in order.

    Every hook sees every event. Errors of observer hooks are logged and ignored; the first error of a
    critical hook is raised as :class:`CriticalHookError` once all hooks have been called. The
    composite is critical when any of its hooks is.
    """

    def __init__(self, *hooks: PipelineHooks | object) -> None:
        flat: list[object] = []
        for hook in hooks:
            if isinstance(hook, CompositeHooks):
                flat.extend(hook.hooks)
            elif hook is not None:
                flat.append(hook)
        self.hooks: tuple[object, ...] = tuple(flat)
        # Which hook implements which declared method, found once (hooks may implement any subset).
        self._methods: dict[str, list[tuple[object, Callable[..., Any]]]] = {
            method: [(h, getattr(h, method)) for h in flat if callable(getattr(h, method, None))]
            for method in HOOK_METHODS
        }

    @property
    def critical(self) -> bool:
        return any(is_critical(h) for h in self.hooks)

    def implements(self, method: str) -> bool:
        """Whether any of the hooks implements ``method`` (one of :data:`HOOK_METHODS`)."""
        return bool(self._methods[method])

    def _call_all(self, method: str, *args: Any) -> None:
        failure: CriticalHookError | None = None
        for hook, fn in self._methods[method]:
            try:
                fn(*args)
            except Exception as exc:
                if is_critical(hook):
                    log.error("Critical hook %s.%s failed: %s", type(hook).__name__, method, exc)
                    if failure is None:
                        failure = CriticalHookError(hook, method, exc)
                        failure.__cause__ = exc
                else:
                    log.warning(
                        "Hook %s.%s raised %s: %s (ignored: it is an observer hook)",
                        type(hook).__name__,
                        method,
                        type(exc).__name__,
                        exc,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
        if failure is not None:
            raise failure

    def prepare_run(self, run: RunPreparation) -> None:
        self._call_all("prepare_run", run)

    def on_resume_plan(self, plan: RunPlan) -> None:
        self._call_all("on_resume_plan", plan)

    def recover_failure(self, recovery: FailureRecovery) -> None:
        self._call_all("recover_failure", recovery)

    def before_pipeline(self, config: PipelineConfig) -> None:
        self._call_all("before_pipeline", config)

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        self._call_all("after_pipeline", config, result)

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        self._call_all("before_component", config, index, total)

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        self._call_all("after_component", config, index, total, duration_ms)

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        self._call_all("on_component_failure", config, index, error)

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        self._call_all("on_component_skipped", config, index, total, reason)

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        self._call_all("on_retry_attempt", config, attempt, max_attempts, delay_ms, error)

    def on_circuit_breaker_state_change(
        self, component_name: str, old_state: CircuitState, new_state: CircuitState
    ) -> None:
        self._call_all("on_circuit_breaker_state_change", component_name, old_state, new_state)


class LoggingHooks(NoOpHooks):
    """Log one line per component: ``[3/7] clean_customers ✓ 2.1 s`` or ``[1/7] read skipped (done in try 1)``.

    Args:
        logger: where to log (a ``logging.Logger`` or anything with ``info/warning/error``, e.g. an
            Airflow task's ``self.log``).
        group_markers: wrap the resume plan in ``::group::`` / ``::endgroup::`` lines, which Airflow's log
            view shows as a collapsible section.
    """

    def __init__(self, logger: logging.Logger | Any | None = None, *, group_markers: bool = False) -> None:
        # pyspark-pipeline-framework's logger name, so logging configuration written for it keeps working.
        self.logger = logger or logging.getLogger("ppf.pipeline")
        self.group_markers = group_markers
        self._total = 0

    def on_resume_plan(self, plan: RunPlan) -> None:
        """Log the plan a run follows (called by the runner before anything runs)."""
        if self.group_markers:
            # The group's title is the headline: the table follows without it.
            self.logger.info("::group::Resume plan: %s", plan.headline())
            self.logger.info("%s", plan.format_table(headline=False))
            self.logger.info("::endgroup::")
        else:
            self.logger.info("Resume plan\n%s", plan.format_table())

    def before_pipeline(self, config: PipelineConfig) -> None:
        self._total = sum(1 for c in config.components if c.enabled)
        self.logger.info("Pipeline %r: %d components", config.name, self._total)

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        self._total = total
        self.logger.info("[%d/%d] %s running…", index + 1, total, config.name)

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        self.logger.info("[%d/%d] %s ✓ %s", index + 1, total, config.name, format_seconds(duration_ms / 1000))

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        self.logger.error("[%d/%d] %s ✗ %s", index + 1, self._total, config.name, describe_error(error))

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        self.logger.info("[%d/%d] %s skipped (%s)", index + 1, total, config.name, reason)

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        self.logger.warning(
            "%s attempt %d/%d failed (%s: %s); retrying in %s",
            config.name,
            attempt,
            max_attempts,
            type(error).__name__,
            error,
            format_seconds(delay_ms / 1000),
        )

    def on_circuit_breaker_state_change(
        self, component_name: str, old_state: CircuitState, new_state: CircuitState
    ) -> None:
        self.logger.warning(
            "%s circuit breaker: %s -> %s",
            component_name,
            getattr(old_state, "value", old_state),
            getattr(new_state, "value", new_state),
        )

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult | None) -> None:
        if not isinstance(result, PipelineResult):  # called by hand without a result
            self.logger.info("Pipeline %r finished", config.name)
            return
        elapsed = result.total_duration_ms / 1000
        interrupted = [r.component_name for r in result.component_results if r.status is ComponentStatus.INTERRUPTED]
        if result.interrupted_by is not None or interrupted:
            # A timeout or a kill: say which component it stopped (its work is lost; what finished is not).
            by = type(result.interrupted_by).__name__ if result.interrupted_by is not None else "a cancel"
            self.logger.warning(
                "Pipeline %r interrupted by %s after %s, %s; %d components done",
                config.name,
                by,
                format_seconds(elapsed),
                f"while running '{interrupted[0]}'" if interrupted else "between components",
                len(result.done_components),
            )
            return
        self.logger.info(
            "Pipeline %r %s in %s: %d ran, %d skipped, %d failed",
            config.name,
            result.status.value.upper(),
            format_seconds(elapsed),
            len(result.completed_components),
            len(result.skipped_components),
            len(result.failed_components),
        )


MetricSink = Callable[[str, float, dict[str, str]], None]


class MeterRegistry(Protocol):
    """What :class:`MetricsHooks` records into when given ``registry=`` (pyspark-pipeline-framework's metric
    names: ``ppf.pipeline.components``, ``ppf.pipeline.duration``, ``ppf.component.duration``,
    ``ppf.component.failures``, ``ppf.component.retries``, ``ppf.circuit_breaker.state_changes``)."""

    def counter(self, name: str, value: float = 1.0, tags: dict[str, str] | None = None) -> None: ...

    def gauge(self, name: str, value: float, tags: dict[str, str] | None = None) -> None: ...

    def timer(self, name: str, duration_ms: float, tags: dict[str, str] | None = None) -> None: ...


class MetricsHooks(NoOpHooks):
    """Collect run metrics in memory and optionally forward each one to ``sink(name, value, tags)``.

    Collected over the hooks' life: ``component_duration_ms[name]``, ``component_attempts[name]``, counters
    (``components.succeeded/failed/skipped``, ``retries``, ``circuit_breaker.<new state>``: ``open``,
    ``half_open``, ``closed``) and ``pipeline_duration_ms``.

    Per run, as pyspark-pipeline-framework names them (reset when a run starts): ``component_durations``
    (ms per component that finished), ``component_retries`` (retries per component) and
    ``total_duration_ms`` (measured with ``clock``, a monotonic clock in seconds). With ``registry``, the
    same figures are recorded into it (:class:`MeterRegistry`).
    """

    def __init__(
        self,
        sink: MetricSink | None = None,
        *,
        clock: Callable[[], float] | None = None,
        registry: MeterRegistry | None = None,
    ) -> None:
        self.sink = sink
        self.component_duration_ms: dict[str, int] = {}
        self.component_attempts: dict[str, int] = defaultdict(int)
        self.counters: dict[str, int] = defaultdict(int)
        self.pipeline_duration_ms: int | None = None
        self._pipeline = ""
        self._clock = clock or time.monotonic
        self.registry = registry
        self.component_durations: dict[str, int] = {}
        self.component_retries: dict[str, int] = {}
        self.total_duration_ms = 0
        self._started = 0.0

    def _emit(self, name: str, value: float, **tags: str) -> None:
        if self.sink is not None:
            self.sink(f"ppf.{name}", value, {"pipeline": self._pipeline, **tags})

    def before_pipeline(self, config: PipelineConfig) -> None:
        self._pipeline = config.name
        self.component_durations = {}
        self.component_retries = {}
        self.total_duration_ms = 0
        self._started = self._clock()
        if self.registry is not None:
            self.registry.gauge(
                "ppf.pipeline.components", float(len(config.components)), tags={"pipeline": config.name}
            )

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        self.component_attempts[config.name] += 1

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        self.component_duration_ms[config.name] = duration_ms
        self.component_durations[config.name] = duration_ms
        self.counters["components.succeeded"] += 1
        self._emit("component.duration_ms", duration_ms, component=config.name)
        if self.registry is not None:
            self.registry.timer("ppf.component.duration", float(duration_ms), tags={"component": config.name})

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        self.counters["components.failed"] += 1
        self._emit("component.failed", 1, component=config.name, error=type(error).__name__)
        if self.registry is not None:
            self.registry.counter("ppf.component.failures", tags={"component": config.name})

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        self.counters["components.skipped"] += 1
        self._emit("component.skipped", 1, component=config.name)

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        self.component_attempts[config.name] += 1
        self.component_retries[config.name] = self.component_retries.get(config.name, 0) + 1
        self.counters["retries"] += 1
        self._emit("component.retry", 1, component=config.name)
        if self.registry is not None:
            self.registry.counter("ppf.component.retries", tags={"component": config.name})

    def on_circuit_breaker_state_change(
        self, component_name: str, old_state: CircuitState, new_state: CircuitState
    ) -> None:
        state = str(getattr(new_state, "value", new_state))
        self.counters[f"circuit_breaker.{state}"] += 1
        self._emit("circuit_breaker.state_change", 1, component=component_name, state=state)
        if self.registry is not None:
            tags = {"component": component_name, "to_state": state}
            self.registry.counter("ppf.circuit_breaker.state_changes", tags=tags)

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult | None) -> None:
        self.total_duration_ms = int((self._clock() - self._started) * 1000)
        if self.registry is not None:
            tags = {"pipeline": config.name}
            self.registry.timer("ppf.pipeline.duration", float(self.total_duration_ms), tags=tags)
        if not isinstance(result, PipelineResult):  # called by hand without a result
            return
        self.pipeline_duration_ms = result.total_duration_ms
        self._emit("pipeline.duration_ms", result.total_duration_ms, status=result.status.value)

    def summary(self) -> dict[str, Any]:
        """Return everything collected as a plain dict."""
        return {
            "pipeline_duration_ms": self.pipeline_duration_ms,
            "component_duration_ms": dict(self.component_duration_ms),
            "component_attempts": dict(self.component_attempts),
            "counters": dict(self.counters),
        }
