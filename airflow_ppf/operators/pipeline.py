"""PipelineOperator: run a whole Spark pipeline in one Airflow task; a retry resumes where it failed."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_ppf.checkpoint.naming import pipeline_run_id
from airflow_ppf.links.checkpoint import CheckpointLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_ppf.checkpoint.run import CheckpointedRun
    from airflow_ppf.checkpoint.stores import CheckpointStore
    from airflow_ppf.config.models import PipelineConfig
    from airflow_ppf.observability import TaskObservability
    from airflow_ppf.runner.results import PipelineResult

__all__ = ["PipelineOperator", "pipeline_run_id"]

OnConfigChange = Literal["restart", "partial", "fail"]
StoreChoice = Literal["task_state", "local"]
_CONFIG_SUFFIXES = (".conf", ".hocon", ".json", ".yaml", ".yml")
_CONSOLE_PROGRESS = "spark.ui.showConsoleProgress"


class PipelineOperator(BaseOperator):
    """Run an airflow-ppf pipeline in one task, checkpointing every finished component.

    When the task fails and Airflow retries it, the retry skips the components that already finished and
    restores the temp views they produced. A first try, or a task a user cleared, starts from the
    beginning.

    :param pipeline: a config file (HOCON ``.conf``, JSON or YAML; a relative path is resolved against the
        DAG file's folder), inline HOCON text, a dict, or a :class:`~airflow_ppf.config.PipelineConfig`.
        Templated.
    :param pipeline_vars: values of ``${NAME}`` in the config, quoted strings included (templated), e.g.
        ``{"RUN_DATE": "{{ dag_run.run_after | ds }}"}`` (``{{ ds }}`` is undefined in manual runs).
        Keep them identical across tries: they are part of the fingerprint.
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
    :param output_assets: ``True`` or an asset alias name: when the pipeline succeeds, every dataset its
        components write becomes an asset event of that alias (default ``ppf:<dag_id>.<task_id>``), so a
        downstream DAG can be scheduled on ``Asset("file:///path")``; the config is not read at parse
        time (docs/airflow.md, Observability).
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
        output_assets: bool | str = False,
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
        self._run: CheckpointedRun | None = None
        self._store_desc = ""
        self.asset_alias = self._asset_alias(output_assets)
        self._observed: TaskObservability | None = None

    def _asset_alias(self, output_assets: bool | str) -> str | None:
        """Add the asset alias of ``output_assets`` to the task's outlets; return its name."""
        if not output_assets:
            return None
        from airflow.sdk import AssetAlias

        from airflow_ppf.settings import DEFAULT_ASSET_ALIAS

        if output_assets is True:
            if not self.has_dag():  # type: ignore[no-untyped-call]
                raise ValueError("output_assets=True needs a DAG (for the alias name); or pass the alias name")
            output_assets = DEFAULT_ASSET_ALIAS.format(dag_id=self.dag_id, task_id=self.task_id)
        self.outlets = [*self.outlets, AssetAlias(str(output_assets))]
        return str(output_assets)

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
            return PipelineConfig.from_dict(source, source=f"task {self.task_id}", variables=variables)
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

    def make_store(self, context: Context, location: str) -> tuple[CheckpointStore, str]:
        """Pick the checkpoint store; return it and a description for the log."""
        from airflow_ppf.checkpoint import LocalCheckpointStore
        from airflow_ppf.stores.task_state import TaskStateCheckpointStore

        choice = self.checkpoint_store
        if choice is not None and not isinstance(choice, str):
            return choice, repr(choice)
        accessor: Any = context.get("task_state_store")
        if choice in (None, "task_state") and accessor is not None:
            return TaskStateCheckpointStore(accessor, location), "Airflow task state store"
        from airflow_ppf.settings import checkpoint_dir as configured_dir

        checkpoint_dir = configured_dir()
        if choice == "task_state":
            self.log.warning("The task state store is not available (Airflow < 3.3?): using %s", checkpoint_dir)
        return LocalCheckpointStore(checkpoint_dir), f"local folder {checkpoint_dir} ([ppf] checkpoint_dir)"

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
        if not spark.remote and _CONSOLE_PROGRESS not in {**spark.to_spark_conf(), **extra}:
            # Spark draws its progress bar on stderr, which a task log shows as ERROR lines.
            extra[_CONSOLE_PROGRESS] = "false"
        return SparkSessionManager(spark, app_name=f"{config.name} ({self.task_id})", extra_conf=extra)

    # -- execution ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ppf.checkpoint import CheckpointCorruptError, CheckpointError, PipelineConfigChangedError
        from airflow_ppf.checkpoint.errors import CheckpointLocationError
        from airflow_ppf.config import ConfigError
        from airflow_ppf.hooks.spark_connection import SparkConnectionError
        from airflow_ppf.runner.hooks import CriticalHookError

        run = None
        try:
            run = self._run = self.checkpointed_run(context)
            result = run.run()
        except (ConfigError, SparkConnectionError) as exc:
            raise self._fail(context, f"Pipeline config error (no retry: fix the config): {exc}") from None
        except CheckpointLocationError as exc:
            raise self._fail(context, f"{exc} (no retry: fix [ppf] checkpoint_dir or the folder)") from None
        except CheckpointCorruptError as exc:
            raise self._fail(
                context, f"{exc} (no retry: clear the checkpoint, or set on_corrupt_checkpoint='restart')"
            ) from None
        except PipelineConfigChangedError as exc:
            raise self._fail(
                context, f"{exc}. on_config_change='fail': clear the task to start over, or use 'restart' / 'partial'"
            ) from None
        except CriticalHookError as exc:
            assert run is not None
            self._push_summary(context, run, exc.result)
            if isinstance(exc.error, CheckpointError):
                raise AirflowException(f"Checkpoint error, the run is stopped: {exc.error}") from exc
            raise AirflowException(f"Recording progress failed, the run is stopped: {exc}") from exc
        finally:
            self._run = None
            if run is not None:
                run.close()
        summary = self._push_summary(context, run, result)
        if not result.success:
            raise AirflowException(self._failure_message(result, run, context))
        return summary

    def checkpointed_run(self, context: Context) -> CheckpointedRun:
        """Assemble this task instance's checkpointed run: config, store, resume policy, Spark, hooks.

        Raises:
            ConfigError: the pipeline config is missing or invalid.
            SparkConnectionError: ``spark_conn_id`` names no usable Spark connection.
        """
        from airflow_ppf import settings
        from airflow_ppf.checkpoint import CheckpointedRun, ResumePolicy
        from airflow_ppf.observability import TaskObservability
        from airflow_ppf.runner import LoggingHooks

        ti = context["ti"]
        config = self.load_pipeline()
        run_id = pipeline_run_id(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
        try_number, max_tries = int(ti.try_number), int(getattr(ti, "max_tries", 0) or 0)
        data_location = settings.data_location(self.data_location)
        self._warn_if_worker_local(data_location)
        store, store_desc = self.make_store(context, run_id)
        self._store_desc = store_desc
        observed = self._observed = TaskObservability(context, config.name, asset_alias=self.asset_alias)
        run = observed.run = CheckpointedRun(
            config,
            store,
            run_id,
            policy=ResumePolicy(
                resume=self.resume,
                on_config_change=self.on_config_change,  # type: ignore[arg-type]
                keep_state_on_clear=self.keep_state_on_clear,
            ),
            attempt=try_number,
            max_tries=max_tries,
            attempt_meta={"try_number": try_number, "max_tries": max_tries, "hostname": getattr(ti, "hostname", None)},
            data_location=data_location,
            keep_saved_views=self.keep_saved_views,
            on_corrupt_checkpoint=self.on_corrupt_checkpoint,
            progress=LoggingHooks(self.log, group_markers=True),
            hooks=[*self.hooks, *observed.hooks],
            fail_fast=self.fail_fast,
            spark_manager=self._spark_manager(config),
            context=self._component_context(context, run_id, try_number),
        )
        self.log.info(
            "Pipeline %r · checkpoint run id %r · try %d · fingerprint %s · store: %s",
            config.name,
            run_id,
            try_number,
            run.fingerprint[:16],
            store_desc,
        )
        return run

    def _warn_if_worker_local(self, data_location: str) -> None:
        """Warn (once per try) when the saved views of this try cannot help a retry on another worker."""
        from airflow_ppf.settings import worker_local_warning

        warning = worker_local_warning(data_location, getattr(self, "executor", None))
        if warning is not None:
            self.log.warning("%s", warning)

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

    def _failure_message(self, result: PipelineResult, run: CheckpointedRun, context: Context) -> str:
        """Say what failed, what is kept, and how the task goes on: a retry resumes, or, after the last retry,
        how a person resumes it."""
        from airflow_ppf.links.checkpoint import task_checkpoint_url
        from airflow_ppf.runner.report import describe_error

        config = run.config
        total = sum(1 for c in config.components if c.enabled)
        done = len(result.done_components)
        if result.failed_components:
            name, error = result.failed_components[0]
            what = f"component '{name}' failed: {describe_error(error)}"
        else:
            what = f"the run ended {result.status.value}"
        try_number, max_tries = run.attempt_number, run.max_tries or 0
        kept = f"Pipeline '{config.name}': {what}. {done} of {total} components are done and checkpointed"
        if max_tries and try_number <= max_tries:  # Airflow's rule: a retry comes (try_number counts from 1)
            return f"{kept}; the retry (try {try_number + 1} of {max_tries + 1}) resumes from there."
        if run.policy.keep_state_on_clear:
            return f"{kept}. No retry is left: once the cause is fixed, clear the task; it resumes from there."
        ti = context["ti"]
        url = task_checkpoint_url(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
        return (
            f"{kept}. No retry is left: once the cause is fixed, press Resume in the task's Checkpoint tab ({url}): "
            "it keeps what is done and clears the task, and the new try resumes from there. "
            "A plain Clear starts from the beginning (unless keep_state_on_clear=True)."
        )

    def _push_summary(self, context: Context, run: CheckpointedRun, result: PipelineResult | None) -> dict[str, Any]:
        """Build the compact run summary (also pushed as XCom ``ppf_summary``, visible after a failure)."""
        summary = {**run.summary(result), "try_number": run.attempt_number, "store": self._store_desc}
        self._push(context, summary)
        return summary

    def _fail(self, context: Context, message: str) -> AirflowFailException:
        """The error that fails the task without retries; its message also goes to the ``ppf_summary`` XCom,
        where the Checkpoint tab finds it (no checkpoint was written)."""
        self._push(context, {"status": "error", "error": message, "try_number": int(context["ti"].try_number)})
        return AirflowFailException(message)

    def _push(self, context: Context, summary: dict[str, Any]) -> None:
        from airflow_ppf.settings import SUMMARY_XCOM_KEY

        try:
            context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        except Exception as exc:  # the summary is for people; never fail a run over it
            self.log.warning("Could not push the %s XCom: %s", SUMMARY_XCOM_KEY, exc)

    # -- OpenLineage (called by apache-airflow-providers-openlineage when installed and enabled) ---------

    def get_openlineage_facets_on_start(self) -> Any:
        """The datasets the pipeline's components declare, and the ``ppf_pipeline`` facet."""
        from airflow_ppf.observability.lineage import lineage_at_start

        return lineage_at_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The datasets of this try (skipped components included) and the ``ppf_*`` facets."""
        if self._observed is None:
            return self.get_openlineage_facets_on_start()
        return self._observed.lineage("complete")

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """Like on complete, plus the inputs of the component that failed."""
        if self._observed is None:
            return self.get_openlineage_facets_on_start()
        return self._observed.lineage("failure")

    def on_kill(self) -> None:
        """Cancel running Spark jobs; the run then stops and marks its checkpoint interrupted."""
        run = self._run
        if run is not None:
            self.log.warning("Task killed: cancelling the pipeline's Spark jobs")
            run.cancel()
