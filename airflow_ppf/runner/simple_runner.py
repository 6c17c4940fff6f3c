"""Run a pipeline's components in dependency order, with hooks, retries, circuit breakers and resume."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow_ppf.components.base import Component, DataFlow
from airflow_ppf.components.loading import ComponentLoadError, create_component
from airflow_ppf.components.protocols import Resource
from airflow_ppf.config.errors import ConfigError, ConfigProblem
from airflow_ppf.config.models import ComponentConfig, PipelineConfig
from airflow_ppf.runner.hooks import (
    ComponentRunListener,
    CompositeHooks,
    CriticalHookError,
    FailureRecovery,
    NoOpHooks,
    PipelineHooks,
    RunPlan,
    RunPreparation,
)
from airflow_ppf.runner.report import describe_error
from airflow_ppf.runner.resilience import CircuitBreaker, CircuitState, RetryingCall
from airflow_ppf.runner.results import ComponentResult, ComponentStatus, PipelineResult, PipelineResultStatus
from airflow_ppf.runner.validation import check_component_classes
from airflow_ppf.spark.session import SparkSessionManager
from airflow_ppf.spark.wrapper import manager_for_wrapper

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SimplePipelineRunner"]

log = logging.getLogger(__name__)


class SimplePipelineRunner:
    """Execute a pipeline's enabled components in a deterministic topological order.

    Args:
        config: the pipeline.
        hooks: lifecycle hooks (:class:`NoOpHooks` by default). Wrap several in :class:`CompositeHooks`.
        fail_fast: stop at the first failed component (default). With ``False``, independent branches go
            on, and components downstream of a failure are reported as blocked, never run.
        spark: an existing SparkSession to use; the runner never stops a session it did not create.
        spark_manager: full control over session creation (overrides ``spark``).
        spark_wrapper: an object whose ``spark`` attribute gives the session (pyspark-pipeline-framework's
            ``SparkSessionWrapper``), read when the first Spark component runs and never stopped here.
        clock: monotonic clock (tests); ``None`` for the default.
        sleep: how to wait between in-process retries (tests, cancellation); ``sleep_func`` is the same.
        validate_before_run: accepted for pyspark-pipeline-framework's code; the check cannot be turned
            off here: every enabled component is imported and built before anything runs, and one that
            does not load fails the run with a ``ConfigError`` naming every such component.
        context: facts about the run that components read as ``self.context`` (``run_id``, ``attempt``...);
            ``pipeline_name``, ``environment`` and ``tags`` come from the config.

    Components that implement ``open()`` and ``close()`` (:class:`~airflow_ppf.components.Resource`) are
    opened before their first attempt and closed once after the last one, also when they fail.

    The SparkSession is created only when the first :class:`DataFlow` is about to run and is kept
    across :meth:`run` calls (temp views live in it); :meth:`close` stops it if the runner created it.
    """

    def __init__(
        self,
        config: PipelineConfig,
        hooks: PipelineHooks | object | None = None,
        *,
        fail_fast: bool = True,
        spark: SparkSession | None = None,
        spark_manager: SparkSessionManager | None = None,
        spark_wrapper: object | None = None,
        clock: Callable[[], float] | None = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
        sleep_func: Callable[[float], Any] | None = None,
        validate_before_run: bool = True,  # accepted for upstream code, never read: validation is always on
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        facts: dict[str, Any] = {"pipeline_name": config.name, "environment": str(config.environment)}
        if config.tags:
            facts["tags"] = MappingProxyType(dict(config.tags))
        self.context: Mapping[str, Any] = MappingProxyType({**facts, **(context or {})})
        self.user_hooks = hooks or NoOpHooks()
        self._hooks = (
            self.user_hooks if isinstance(self.user_hooks, CompositeHooks) else CompositeHooks(self.user_hooks)
        )
        self.fail_fast = fail_fast
        if spark_manager is None and spark_wrapper is not None:
            spark_manager = manager_for_wrapper(spark_wrapper, config.spark)
        self.spark_manager = spark_manager or SparkSessionManager(config.spark, session=spark, app_name=config.name)
        self._clock = clock or time.monotonic
        self._cancel = threading.Event()
        self._sleep = sleep or sleep_func or self._interruptible_sleep
        self._breakers: dict[str, CircuitBreaker] = {}
        self._current: Component | None = None
        self.listeners: list[ComponentRunListener] = []
        #: Components done so far in the current run (skipped as done, or finished).
        self.done: set[str] = set()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> SimplePipelineRunner:
        """Load a config file and build a runner for it."""
        return cls(PipelineConfig.from_file(path), **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> SimplePipelineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the SparkSession if this runner created it."""
        self.spark_manager.stop()

    def cancel(self) -> None:
        """Stop the run from another thread: cancel running Spark jobs and run nothing further."""
        self._cancel.set()
        component = self._current
        if component is not None:
            try:
                component.cancel()
            except Exception as exc:
                log.warning("Cancelling %r failed: %s", component, exc)
        self.spark_manager.cancel_all()

    def _interruptible_sleep(self, seconds: float) -> None:
        self._cancel.wait(seconds)

    # -- planning ------------------------------------------------------------------------------------

    def execution_order(self) -> list[ComponentConfig]:
        """All components (disabled ones included) in the order they run."""
        by_name = {c.name: c for c in self.config.components}
        return [by_name[name] for name in self.config.get_execution_order()]

    def dry_run(self) -> list[str]:
        """Check every enabled component's class without running anything; return the notes and problems.

        An empty list means every class loads and has ``from_config``; a class that cannot be loaded gives
        ``Cannot load '<class_path>': <why>``.
        """
        notes: list[str] = []
        for _, component_notes, problem in check_component_classes(self.config):
            notes.extend(component_notes)
            if problem is not None:
                notes.append(problem)
        return notes

    def build_components(self, names: Collection[str]) -> dict[str, Component]:
        """Import and build the named components, reporting every failure at once.

        Raises:
            ConfigError: one problem per component that cannot be imported or built.
        """
        built: dict[str, Component] = {}
        problems: list[ConfigProblem] = []
        for index, comp in enumerate(self.config.components):
            if comp.name not in names:
                continue
            try:
                component = create_component(comp)
            except ComponentLoadError as exc:
                problems.append(ConfigProblem(f"components[{index}]", f"'{comp.name}': {exc.reason}"))
                continue
            if isinstance(component, Component):
                component._ppf_context = self.context
            built[comp.name] = component
        if problems:
            raise ConfigError(problems, source=f"pipeline '{self.config.name}'")
        return built

    # -- running -------------------------------------------------------------------------------------

    def run(
        self,
        completed_components: Collection[str] | None = None,
        *,
        skip_reasons: Mapping[str, str] | None = None,
        plan: RunPlan | None = None,
    ) -> PipelineResult:
        """Run the pipeline, skipping ``completed_components`` (reported as skipped).

        Every enabled component is imported and built before anything runs, so a bad class path or bad
        arguments fail the run up front (``ConfigError``) without touching checkpoints.
        ``skip_reasons`` maps skipped names to the reason shown in logs (``done in try 1``). With a
        ``plan`` (from :func:`~airflow_ppf.checkpoint.plan_resume`), its skips and reasons are used and
        the plan is announced to the hooks (``on_resume_plan``) before anything runs.

        Hooks that prepare a run (``prepare_run``: checkpointing restores the temp views that skipped
        components produced) may turn a skip into a rerun when what the component produced is gone, and
        replace the plan by the one the run then follows; the reason is logged and the component runs.

        Raises:
            TypeError: ``completed_components`` is not a collection of names (a plain string, a dict...).
            ValueError: ``completed_components`` names components that are not in the pipeline.
            ConfigError: a component cannot be imported or built.
            CriticalHookError: a critical hook (checkpointing) failed; its ``result`` holds the run so far
                (``None`` when it failed while preparing the run).
            BaseException: KeyboardInterrupt, SystemExit or a task timeout, after ``after_pipeline``
                was called with an ``INTERRUPTED`` result.
        """
        given = None if completed_components is None else completed_names(completed_components, self.config)
        if plan is not None:
            completed = set(plan.skip if given is None else given)
            reasons = {**plan.skip_reasons, **(skip_reasons or {})}
        else:
            completed = set(given or ())
            reasons = dict(skip_reasons or {})
        order = self.execution_order()
        enabled = [c for c in order if c.enabled]
        components = self.build_components({c.name for c in enabled})
        completed &= set(components)
        prep = RunPreparation(self, components, completed, reasons, plan)
        self._hooks.prepare_run(prep)
        for name, why in prep.reruns.items():
            log.warning("%s runs again: %s", name, why)
        completed, reasons, self.listeners = prep.skip, prep.skip_reasons, prep.listeners
        if prep.plan is not None:
            if self._hooks.implements("on_resume_plan"):
                self._hooks.on_resume_plan(prep.plan)
            else:
                log.info("Resume plan\n%s", prep.plan.format_table())

        self._cancel.clear()
        self.done = set(completed)
        started = self._clock()
        state = _RunState(components, {c.name: i for i, c in enumerate(enabled)})
        results = state.results
        interrupt: BaseException | None = None
        critical: CriticalHookError | None = None
        total = len(enabled)
        try:
            self._hooks.before_pipeline(self.config)
            for comp in order:
                if not comp.enabled:
                    results[comp.name] = ComponentResult(comp.name, ComponentStatus.DISABLED, reason="disabled")
                    log.info("%s is disabled; not run", comp.name)
                    continue
                index = state.index_of[comp.name]
                results[comp.name] = self._visit(comp, index, total, components, completed, reasons, state)
                if results[comp.name].status is ComponentStatus.SUCCESS:
                    self.done.add(comp.name)
        except CriticalHookError as exc:
            critical = exc
        except BaseException as exc:
            interrupt = exc
            where = f"while running '{state.running}'" if state.running else "between components"
            log.warning("Pipeline %r interrupted by %s %s", self.config.name, type(exc).__name__, where)
        finally:
            self._current = None

        for comp in order:
            if comp.name in results:
                continue
            if comp.name == state.running and critical is not None:
                # It ran, but its progress could not be recorded: it is not done as far as a resume knows.
                results[comp.name] = ComponentResult(
                    comp.name, ComponentStatus.FAILED, error=critical, reason="its checkpoint was not saved"
                )
            elif comp.name == state.running:
                results[comp.name] = ComponentResult(comp.name, ComponentStatus.INTERRUPTED, reason="interrupted")
            else:
                reason = "pipeline interrupted" if interrupt else "pipeline stopped"
                results[comp.name] = ComponentResult(comp.name, ComponentStatus.NOT_RUN, reason=reason)
        ordered = [results[c.name] for c in order]
        interrupted = interrupt is not None or self._cancel.is_set()
        result = PipelineResult(
            status=PipelineResult.decide_status(ordered, interrupted=interrupted),
            pipeline_name=self.config.name,
            component_results=ordered,
            total_duration_ms=int((self._clock() - started) * 1000),
            interrupted_by=interrupt,
        )
        try:
            self._hooks.after_pipeline(self.config, result)
        except CriticalHookError as exc:
            if critical is None and interrupt is None:
                critical = exc
        if critical is not None and result.status is PipelineResultStatus.SUCCESS:
            # Never report success when progress was not recorded.
            result.status = PipelineResultStatus.PARTIAL_SUCCESS
        if interrupt is not None:
            raise interrupt
        if critical is not None:
            critical.result = result
            raise critical
        if plan is None and result.status in (PipelineResultStatus.FAILURE, PipelineResultStatus.PARTIAL_SUCCESS):
            # A hint for plain-Python use only: a checkpointed run (given a plan) resumes by itself.
            failed = ", ".join(f"'{n}'" for n, _ in result.failed_components) or "none"
            log.info(
                "Pipeline %r did not finish (failed: %s; %d of %d done). Run it again with "
                "completed_components=%s (or through a checkpoint) to resume where it stopped.",
                self.config.name,
                failed,
                len(result.done_components),
                total,
                result.done_components,
            )
        return result

    def _visit(
        self,
        comp: ComponentConfig,
        index: int,
        total: int,
        components: Mapping[str, Component],
        completed: set[str],
        reasons: Mapping[str, str],
        state: _RunState,
    ) -> ComponentResult:
        if comp.name in completed:
            reason = reasons.get(comp.name, "done in an earlier attempt")
            self._hooks.on_component_skipped(comp, index, total, reason)
            return ComponentResult(comp.name, ComponentStatus.SKIPPED, reason=reason)
        if state.stopped_by is not None or self._cancel.is_set():
            why = "run cancelled" if self._cancel.is_set() else f"pipeline stopped after '{state.stopped_by}' failed"
            return ComponentResult(comp.name, ComponentStatus.NOT_RUN, reason=why)
        blockers = [d for d in comp.depends_on if d in state.broken]
        if blockers:
            state.broken.add(comp.name)
            reason = f"blocked: upstream '{blockers[0]}' did not finish"
            self._hooks.on_component_skipped(comp, index, total, reason)
            return ComponentResult(comp.name, ComponentStatus.BLOCKED, reason=reason)

        result = self._execute(comp, components[comp.name], index, total, state)
        if result.status in (ComponentStatus.FAILED, ComponentStatus.BLOCKED):
            state.broken.add(comp.name)
        if result.status is ComponentStatus.FAILED and self.fail_fast:
            state.stopped_by = comp.name
        return result

    def _execute(
        self, comp: ComponentConfig, component: Component, index: int, total: int, state: _RunState
    ) -> ComponentResult:
        # Left set when an interruption or a checkpoint failure escapes: the run's end reports it.
        outer, state.running = state.running, comp.name
        result = self._execute_once(comp, component, index, total, state)
        state.running = outer
        return result

    def _execute_once(
        self, comp: ComponentConfig, component: Component, index: int, total: int, state: _RunState
    ) -> ComponentResult:
        self._hooks.before_component(comp, index, total)
        self._current = component
        if isinstance(component, DataFlow) and not self.spark_manager.started:
            # Start Spark outside the component's clock: its start-up is not the component's run time
            # (and must not inflate the time a resume reports as saved). A failure here still fails it.
            with contextlib.suppress(Exception):
                self.spark_manager.get()
        started = self._clock()

        def attempt() -> None:
            if isinstance(component, DataFlow):
                component.set_spark_session(self.spark_manager.get())
            component.run()

        call = RetryingCall(
            comp.retry,
            breaker=self._breaker(comp),
            on_retry=lambda n, most, delay, err: self._hooks.on_retry_attempt(comp, n, most, int(delay * 1000), err),
            sleep=self._sleep,
            stop_requested=self._cancel.is_set,
        )
        try:
            for listener in self.listeners:
                listener.before_run(comp, component)
            with _opened(component):
                call(attempt)
            for listener in self.listeners:
                listener.after_success(comp, component)
        except CriticalHookError:
            raise
        except Exception as exc:
            duration_ms = int((self._clock() - started) * 1000)
            self._current = None
            recovery = FailureRecovery(self, comp, exc, frozenset(self.done), frozenset(state.ran))
            self._hooks.recover_failure(recovery)
            if recovery.reruns and state.recoveries < len(state.index_of):
                state.recoveries += 1
                return self._recover(recovery, index, total, state)
            error = recovery.error
            if error is exc:
                log.error("Component %r failed after %d attempt(s)", comp.name, max(call.attempts, 1), exc_info=exc)
            else:  # a hook explained the failure: one clear line (the original is the error's cause)
                log.error("Component %r failed: %s", comp.name, describe_error(error, 1000))
            self._hooks.on_component_failure(comp, index, error)
            return ComponentResult(
                comp.name, ComponentStatus.FAILED, duration_ms, attempts=max(call.attempts, 1), error=error
            )
        self._current = None
        duration_ms = int((self._clock() - started) * 1000)
        self._hooks.after_component(comp, index, total, duration_ms)
        state.ran.add(comp.name)
        return ComponentResult(comp.name, ComponentStatus.SUCCESS, duration_ms, attempts=call.attempts)

    def _recover(self, recovery: FailureRecovery, index: int, total: int, state: _RunState) -> ComponentResult:
        """Run again what a hook asked for (in execution order), then the failed component; see
        :class:`FailureRecovery`. A rerun that fails leaves the failed component blocked by it."""
        failed = recovery.config
        reruns = [
            c
            for c in self.execution_order()
            if c.name in recovery.reruns and c.name != failed.name and c.name in state.components
        ]
        names = [c.name for c in reruns]
        log.warning(
            "%s failed (%s); running again within this run: %s",
            failed.name,
            describe_error(recovery.error, 1000),
            ", ".join([*names, failed.name]),
        )
        for name in names:
            log.warning("%s runs again: %s", name, recovery.reruns[name])
        self.done -= {*names, failed.name}
        for comp in reruns:
            name = comp.name
            state.results.pop(name, None)  # reported as running (interrupted...) until it ends again
            result = self._execute(comp, state.components[name], state.index_of[name], total, state)
            state.results[name] = result
            if result.status is not ComponentStatus.SUCCESS:
                state.broken.add(name)
                if self.fail_fast:
                    state.stopped_by = name
                reason = f"blocked: '{name}', run again to recover from its failure, did not finish"
                self._hooks.on_component_skipped(failed, index, total, reason)
                return ComponentResult(failed.name, ComponentStatus.BLOCKED, reason=reason)
            self.done.add(name)
        return self._execute(failed, state.components[failed.name], index, total, state)

    def _breaker(self, comp: ComponentConfig) -> CircuitBreaker | None:
        if comp.circuit_breaker is None:
            return None
        breaker = self._breakers.get(comp.name)
        if breaker is None:

            def changed(old: CircuitState, new: CircuitState) -> None:
                self._hooks.on_circuit_breaker_state_change(comp.name, old, new)

            breaker = CircuitBreaker(comp.circuit_breaker, comp.name, on_state_change=changed, clock=self._clock)
            self._breakers[comp.name] = breaker
        return breaker


@contextlib.contextmanager
def _opened(component: Component) -> Iterator[None]:
    """Open a :class:`Resource` component around its attempts and close it once after them.

    ``close()`` runs after a failure too; when it then fails as well, the component's own error is kept
    (and the close failure logged). A close failure after a success fails the component.
    """
    if not isinstance(component, Resource):
        yield
        return
    component.open()
    try:
        yield
    except BaseException:
        try:
            component.close()
        except Exception as exc:
            log.warning("Closing %r after its failure failed too: %s: %s", component, type(exc).__name__, exc)
        raise
    component.close()


def completed_names(completed: object, config: PipelineConfig) -> list[str]:
    """Check ``completed_components``: a collection (list, tuple, set) of names of ``config``'s components.

    Raises:
        TypeError: a plain string or bytes (iterating it would skip components named after its letters),
            a mapping, anything else that is not a collection, or an item that is not a string.
        ValueError: names that are not components of the pipeline (all of them are named).
    """
    kinds: dict[type, str] = {str: "a string", bytes: "a bytes", dict: "a dict"}
    kind = kinds.get(type(completed), type(completed).__name__)
    if isinstance(completed, (str, bytes)):
        raise TypeError(
            f"completed_components must be a collection of component names, not {kind} ({completed!r}): "
            f"pass a list or set of names, e.g. [{completed!r}]"
        )
    if isinstance(completed, Mapping) or not isinstance(completed, Iterable):
        raise TypeError(f"completed_components must be a collection of component names, not {kind}")
    names = list(completed)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"completed_components must hold component names (strings), got {name!r} ({type(name).__name__})"
            )
    known = set(config.component_names)
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise ValueError(
            f"completed_components names components that are not in pipeline {config.name!r}: "
            f"{', '.join(repr(n) for n in unknown)} (its components: {', '.join(config.component_names)})"
        )
    return names


class _RunState:
    """Mutable bookkeeping of one run."""

    def __init__(self, components: Mapping[str, Component], index_of: Mapping[str, int]) -> None:
        self.components = components
        self.index_of = index_of  # position among the enabled components
        self.results: dict[str, ComponentResult] = {}
        self.broken: set[str] = set()  # failed or blocked
        self.stopped_by: str | None = None
        self.running: str | None = None
        self.ran: set[str] = set()  # finished in this run
        self.recoveries = 0
