"""PipelineOperator: run a whole Spark pipeline in one Airflow task; a retry resumes where it failed."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_ppf.links.checkpoint import CheckpointLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_ppf.config.models import PipelineConfig
    from airflow_ppf.runner.checkpoint.resume import ResumePlan
    from airflow_ppf.runner.checkpoint.state import CheckpointState
    from airflow_ppf.runner.checkpoint.stores import CheckpointStore
    from airflow_ppf.runner.results import PipelineResult
    from airflow_ppf.runner.simple_runner import SimplePipelineRunner

__all__ = ["PipelineOperator", "pipeline_run_id"]

OnConfigChange = Literal["restart", "partial", "fail"]
StoreChoice = Literal["task_state", "local"]
_CONFIG_SUFFIXES = (".conf", ".hocon", ".json", ".yaml", ".yml")


def pipeline_run_id(dag_id: str, dag_run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """The checkpoint run id of one task instance: ``dag/run/task``, plus ``[i]`` for mapped tasks.

    Stable across the tries of a task instance, distinct for every other task instance.
    """
    base = f"{dag_id}/{dag_run_id}/{task_id}"
    return f"{base}[{map_index}]" if map_index is not None and map_index >= 0 else base


class PipelineOperator(BaseOperator):
    """Run an airflow-ppf pipeline in one task, checkpointing every finished component.

    When the task fails and Airflow retries it, the retry skips the components that already finished and
    restores the temp views they produced. A first try, or a task a user cleared, starts from the
    beginning.

    :param pipeline: a config file (HOCON ``.conf``, JSON or YAML; a relative path is resolved against the
        DAG file's folder), inline HOCON text, a dict, or a :class:`~airflow_ppf.config.PipelineConfig`.
        Templated.
    :param pipeline_vars: values for ``${NAME}`` substitutions in the config (templated), e.g.
        ``{"RUN_DATE": "{{ ds }}"}``. Keep them identical across tries: they are part of the fingerprint.
    :param spark_conn_id: an Airflow connection of type ``spark`` (master URL) or ``spark_connect``
        (``sc://``); its ``spark.*`` extras become Spark properties. Default: the config's ``spark`` block.
        Templated (e.g. ``"{{ params.spark_conn_id }}"`` to pick a cluster per run).
    :param spark_conf: Spark properties applied last (templated).
    :param checkpoint_store: ``"task_state"`` (default when available: Airflow's per-task-instance store),
        ``"local"`` (a folder, ``[ppf] checkpoint_dir``), or any ``CheckpointStore`` object.
    :param data_location: where temp views of finished components are saved for a retry to restore (any
        Spark-writable URI; use one every worker can reach). Default: ``[ppf] data_location``, else
        ``<checkpoint_dir>/_data``. Templated.
    :param resume: whether a retry resumes (default) or starts over.
    :param on_config_change: when the pipeline changed between tries: ``restart`` (default), ``partial``
        (rerun only changed components and what is downstream of them) or ``fail``.
    :param on_corrupt_checkpoint: ``fail`` (default; the message says how to recover) or ``restart``
        (move the damaged checkpoint aside and start over).
    :param keep_state_on_clear: resume even after a user cleared the task (default: a clear starts over).
    :param fail_fast: stop at the first failed component (default) or keep running independent branches.
    :param hooks: extra lifecycle hooks (observers; a hook with ``critical = True`` can fail the task).
    :param keep_saved_views: keep saved views after success (default: delete them).
    """

    template_fields: Sequence[str] = ("pipeline", "pipeline_vars", "spark_conn_id", "spark_conf", "data_location")
    template_fields_renderers: ClassVar[dict[str, str]] = {"pipeline_vars": "json", "spark_conf": "json"}
    operator_extra_links = (CheckpointLink(),)
    ui_color = "#fde9c9"

    def __init__(
        self,
        *,
        pipeline: str | Mapping[str, Any] | PipelineConfig,
        pipeline_vars: Mapping[str, Any] | None = None,
        spark_conn_id: str | None = None,
        spark_conf: Mapping[str, Any] | None = None,
        checkpoint_store: StoreChoice | CheckpointStore | None = None,
        data_location: str | None = None,
        resume: bool = True,
        on_config_change: OnConfigChange = "restart",
        on_corrupt_checkpoint: Literal["fail", "restart"] = "fail",
        keep_state_on_clear: bool = False,
        fail_fast: bool = True,
        hooks: Sequence[object] = (),
        keep_saved_views: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_config_change not in ("restart", "partial", "fail"):
            raise ValueError(f"on_config_change must be 'restart', 'partial' or 'fail', got {on_config_change!r}")
        if on_corrupt_checkpoint not in ("fail", "restart"):
            raise ValueError(f"on_corrupt_checkpoint must be 'fail' or 'restart', got {on_corrupt_checkpoint!r}")
        if isinstance(checkpoint_store, str) and checkpoint_store not in ("task_state", "local"):
            raise ValueError(f"checkpoint_store must be 'task_state', 'local' or a store, got {checkpoint_store!r}")
        self.pipeline = pipeline
        self.pipeline_vars = dict(pipeline_vars or {})
        self.spark_conn_id = spark_conn_id
        self.spark_conf = dict(spark_conf or {})
        self.checkpoint_store = checkpoint_store
        self.data_location = data_location
        self.resume = resume
        self.on_config_change = on_config_change
        self.on_corrupt_checkpoint = on_corrupt_checkpoint
        self.keep_state_on_clear = keep_state_on_clear
        self.fail_fast = fail_fast
        self.hooks = list(hooks)
        self.keep_saved_views = keep_saved_views
        self._runner: SimplePipelineRunner | None = None

    # -- building blocks ------------------------------------------------------------------------------

    def load_pipeline(self) -> PipelineConfig:
        """Turn the ``pipeline`` argument into a validated config.

        Raises:
            ConfigError: the config is missing or invalid.
        """
        from airflow_ppf.config import ConfigError, PipelineConfig

        variables = {str(k): str(v) for k, v in self.pipeline_vars.items()}
        source = self.pipeline
        if isinstance(source, PipelineConfig):
            return source
        if isinstance(source, Mapping):
            return PipelineConfig.from_dict(source, source=f"task {self.task_id}")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError.single("", "pipeline must be a file path, HOCON text, a dict or a PipelineConfig")
        text = source.strip()
        if "\n" in text or text.startswith("{"):
            return PipelineConfig.from_string(text, source=f"task {self.task_id}", variables=variables)
        path = Path(text)
        if not path.is_absolute():
            folder = getattr(self.dag, "folder", None) if self.has_dag() else None  # type: ignore[no-untyped-call]
            path = Path(folder or ".") / path
        if path.suffix.lower() not in _CONFIG_SUFFIXES and not path.exists():
            raise ConfigError.single("", f"pipeline {text!r} is neither a config file nor HOCON text")
        return PipelineConfig.from_file(path, variables=variables)

    def _settings(self) -> Any:
        from airflow.sdk import conf

        checkpoint_dir = conf.get("ppf", "checkpoint_dir", fallback="/tmp/airflow-ppf/checkpoints")
        data_location = self.data_location or conf.get("ppf", "data_location", fallback="") or ""
        return checkpoint_dir, data_location or str(Path(checkpoint_dir) / "_data")

    def make_store(self, context: Context, location: str) -> tuple[CheckpointStore, str]:
        """Pick the checkpoint store; return it and a description for the log."""
        from airflow_ppf.runner.checkpoint import LocalCheckpointStore
        from airflow_ppf.stores.task_state import TaskStateCheckpointStore

        choice = self.checkpoint_store
        if choice is not None and not isinstance(choice, str):
            return choice, repr(choice)
        accessor: Any = context.get("task_state_store")
        if choice in (None, "task_state") and accessor is not None:
            return TaskStateCheckpointStore(accessor, location), "Airflow task state store"
        checkpoint_dir, _ = self._settings()
        if choice == "task_state":
            self.log.warning("The task state store is not available (Airflow < 3.3?): using %s", checkpoint_dir)
        return LocalCheckpointStore(Path(checkpoint_dir)), f"local folder {checkpoint_dir} ([ppf] checkpoint_dir)"

    def _spark_manager(self, config: PipelineConfig) -> Any:
        from airflow_ppf.spark import SparkSessionManager

        spark = config.spark
        extra: dict[str, str] = {}
        if self.spark_conn_id:
            from airflow_ppf.hooks.spark_connection import spark_settings_from_connection

            settings = spark_settings_from_connection(self.spark_conn_id)
            spark = dataclasses.replace(spark, master=settings.master, remote=settings.remote)
            extra.update(settings.conf)
            self.log.info("Spark from %s", settings.describe())
        extra.update({str(k): str(v) for k, v in self.spark_conf.items()})
        return SparkSessionManager(spark, app_name=f"{config.name} ({self.task_id})", extra_conf=extra)

    # -- execution ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ppf.config import ConfigError
        from airflow_ppf.runner import CheckpointHooks, CompositeHooks, LoggingHooks, SimplePipelineRunner
        from airflow_ppf.runner.checkpoint import (
            CheckpointCorruptError,
            CheckpointError,
            PipelineConfigChangedError,
            compute_pipeline_fingerprint,
            plan_resume,
        )
        from airflow_ppf.runner.hooks import CriticalHookError

        ti = context["ti"]
        try:
            config = self.load_pipeline()
        except ConfigError as exc:
            raise AirflowFailException(f"Pipeline config error (no retry: fix the config): {exc}") from None
        map_index = getattr(ti, "map_index", -1)
        run_id = pipeline_run_id(ti.dag_id, ti.run_id, ti.task_id, map_index)
        try_number = int(ti.try_number)
        max_tries = int(getattr(ti, "max_tries", 0) or 0)
        fingerprint = compute_pipeline_fingerprint(config)
        _, data_location = self._settings()
        store, store_desc = self.make_store(context, run_id)
        self.log.info(
            "Pipeline %r · checkpoint run id %r · try %d · fingerprint %s · store: %s",
            config.name,
            run_id,
            try_number,
            fingerprint[:16],
            store_desc,
        )

        state = self._load_state(store, run_id, config.name, CheckpointCorruptError)
        fresh_reason = self._fresh_start_reason(state, try_number, max_tries)
        if state is not None and fresh_reason is not None:
            self.log.info("Starting from the beginning: %s", fresh_reason)
            self._forget(store, state, data_location)
            state = None
        try:
            plan = plan_resume(state, config, on_config_change=self.on_config_change, run_id=run_id)
        except PipelineConfigChangedError as exc:
            raise AirflowFailException(
                f"{exc}. on_config_change='fail': clear the task to start over, or use 'restart' / 'partial'"
            ) from None

        checkpoint = CheckpointHooks(
            store,
            run_id=run_id,
            pipeline_fingerprint=fingerprint,
            attempt=try_number,
            on_config_change=self.on_config_change,
            resume_plan=plan,
            data_location=data_location,
            keep_saved_views=self.keep_saved_views,
            attempt_meta={"try_number": try_number, "max_tries": max_tries, "hostname": getattr(ti, "hostname", None)},
        )
        hooks = CompositeHooks(LoggingHooks(self.log, group_markers=True), checkpoint, *self.hooks)
        runner = SimplePipelineRunner(
            config,
            hooks=hooks,
            fail_fast=self.fail_fast,
            spark_manager=self._spark_manager(config),
            context=self._component_context(context, run_id, try_number),
        )
        self._runner = runner
        result: PipelineResult | None = None
        try:
            result = runner.run(plan=plan)
        except ConfigError as exc:
            raise AirflowFailException(f"Pipeline config error (no retry: fix the config): {exc}") from None
        except CriticalHookError as exc:
            result = exc.result
            self._push_summary(context, run_id, fingerprint, try_number, plan, result, store_desc)
            if isinstance(exc.error, CheckpointError):
                raise AirflowException(f"Checkpoint error, the run is stopped: {exc.error}") from exc
            raise AirflowException(f"Recording progress failed, the run is stopped: {exc}") from exc
        finally:
            self._runner = None
            runner.close()

        summary = self._push_summary(context, run_id, fingerprint, try_number, plan, result, store_desc)
        if not result.success:
            raise AirflowException(self._failure_message(result, config))
        return summary

    def _load_state(
        self, store: CheckpointStore, run_id: str, pipeline_name: str, corrupt: type[Exception]
    ) -> CheckpointState | None:
        try:
            return store.load(run_id, pipeline_name)
        except corrupt as exc:
            if self.on_corrupt_checkpoint != "restart":
                raise AirflowFailException(
                    f"{exc} (no retry: clear the checkpoint, or set on_corrupt_checkpoint='restart')"
                ) from None
            quarantine = getattr(store, "quarantine", None)
            moved = quarantine(run_id, pipeline_name) if quarantine else []
            self.log.warning("Damaged checkpoint moved aside (%s); starting over: %s", moved, exc)
            return None

    def _fresh_start_reason(self, state: CheckpointState | None, try_number: int, max_tries: int) -> str | None:
        """Say why this try must not resume (``None`` when it resumes)."""
        if state is None:
            return None
        if not self.resume:
            return "resume=False"
        if try_number <= 1:
            return "first try of this task instance"
        last = state.current_attempt
        previous_max = last.meta.get("max_tries") if last is not None else None
        if not self.keep_state_on_clear and previous_max is not None and previous_max != max_tries:
            # Airflow keeps task state across a clear; a clear raises max_tries, a retry does not.
            edited = last is not None and any(e.get("event") in ("rerun_from", "reset") for e in last.events)
            if not edited:
                return "the task was cleared (max_tries changed); keep_state_on_clear=True would resume"
            # Someone edited the checkpoint (checkpoint view: "rerun from X") and then cleared the task to
            # apply the edit: resume, honouring it.
        return None

    def _forget(self, store: CheckpointStore, state: CheckpointState, data_location: str) -> None:
        """Delete a checkpoint and its saved views before a fresh start."""
        from airflow_ppf.runner.checkpoint.saved_views import ViewMaterializer
        from airflow_ppf.spark.fs import is_local_uri

        location = state.data_location or data_location
        if location and is_local_uri(location):

            def no_spark() -> Any:
                raise RuntimeError("not needed for a local location")

            ViewMaterializer(location, state.pipeline_name, state.run_id, no_spark).delete_all()
        store.delete(state.run_id, state.pipeline_name)

    def _component_context(self, context: Context, run_id: str, try_number: int) -> dict[str, Any]:
        ti = context["ti"]
        params = context.get("params") or {}
        return {
            "run_id": run_id,
            "attempt": try_number,
            "try_number": try_number,
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "dag_run_id": ti.run_id,
            "map_index": getattr(ti, "map_index", -1),
            "params": dict(params),
        }

    def _failure_message(self, result: PipelineResult, config: PipelineConfig) -> str:
        from airflow_ppf.runner.report import describe_error

        total = sum(1 for c in config.components if c.enabled)
        done = len(result.done_components)
        if result.failed_components:
            name, error = result.failed_components[0]
            what = f"component '{name}' failed: {describe_error(error)}"
        else:
            what = f"the run ended {result.status.value}"
        return (
            f"Pipeline '{config.name}': {what}. {done} of {total} components are done and checkpointed; "
            "a retry resumes from there."
        )

    def _push_summary(
        self,
        context: Context,
        run_id: str,
        fingerprint: str,
        try_number: int,
        plan: ResumePlan,
        result: PipelineResult | None,
        store_desc: str,
    ) -> dict[str, Any]:
        """Build the compact run summary (also pushed as XCom ``ppf_summary``, visible after a failure)."""
        from airflow_ppf.runner.report import describe_error

        summary: dict[str, Any] = {
            "pipeline": plan.pipeline_name,
            "run_id": run_id,
            "fingerprint": fingerprint,
            "try_number": try_number,
            "store": store_desc,
            "resumed": plan.is_resume,
            "time_saved_s": round(plan.time_saved_ms / 1000, 3),
        }
        if result is not None:
            summary.update(
                status=result.status.value,
                duration_s=round(result.total_duration_seconds, 3),
                ran=[
                    {"name": r.component_name, "duration_s": round(r.duration_seconds, 3)}
                    for r in result.component_results
                    if r.success
                ],
                skipped=result.skipped_components,
                failed=[{"name": name, "error": describe_error(err)} for name, err in result.failed_components],
            )
        try:
            context["ti"].xcom_push(key="ppf_summary", value=summary)
        except Exception as exc:  # the summary is for people; never fail a run over it
            self.log.warning("Could not push the ppf_summary XCom: %s", exc)
        return summary

    def on_kill(self) -> None:
        """Cancel running Spark jobs; the run then stops and marks its checkpoint interrupted."""
        runner = self._runner
        if runner is not None:
            self.log.warning("Task killed: cancelling the pipeline's Spark jobs")
            runner.cancel()
