"""The provider's settings: the ``[ppf]`` section of Airflow's configuration, and where the UI plugin lives.

Read by the operator (on workers), the UI plugin (on the api-server) and the extra link, so each value has
one definition. Importing this module imports nothing of Airflow (the registration in
:mod:`airflow_ppf.get_provider_info` reads the defaults while Airflow starts up).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CHECKPOINT_VIEW_PATH",
    "DEFAULT_ASSET_ALIAS",
    "DEFAULT_CHECKPOINT_DIR",
    "SINGLE_MACHINE_EXECUTORS",
    "SUMMARY_XCOM_KEY",
    "URL_PREFIX",
    "checkpoint_dir",
    "data_location",
    "task_executor",
    "worker_local_warning",
]

#: ``[ppf] checkpoint_dir`` when unset: checkpoints of ``checkpoint_store="local"`` and, below it, saved views.
DEFAULT_CHECKPOINT_DIR = "/tmp/airflow-ppf/checkpoints"
#: Where the api-server mounts the checkpoint inspector (the plugin's ``fastapi_apps`` url_prefix).
URL_PREFIX = "/ppf"
#: The inspector page of one task instance.
CHECKPOINT_VIEW_PATH = f"{URL_PREFIX}/checkpoint"
#: The asset alias of ``PipelineOperator(output_assets=True)`` (``str.format`` with dag_id and task_id).
DEFAULT_ASSET_ALIAS = "ppf:{dag_id}.{task_id}"
#: The XCom key of the run summary ``PipelineOperator`` pushes (read by the Checkpoint tab). Not the task
#: state store's key of the same name (:data:`airflow_ppf.stores.task_state.SUMMARY_KEY`).
SUMMARY_XCOM_KEY = "ppf_summary"
#: Executors that run every try of a task on the scheduler's machine: saved views on a local path reach
#: every retry. Any other executor (Celery, Kubernetes, Edge...) may run a retry on another machine.
SINGLE_MACHINE_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def _get(key: str) -> str:
    from airflow.configuration import conf

    return str(conf.get("ppf", key, fallback="") or "")


def checkpoint_dir() -> Path:
    """``[ppf] checkpoint_dir``: where ``PipelineOperator`` keeps checkpoints outside the task state store."""
    return Path(_get("checkpoint_dir") or DEFAULT_CHECKPOINT_DIR)


def data_location(explicit: str | None = None) -> str:
    """Where saved views go: ``explicit`` (the operator's argument), else ``[ppf] data_location``, else
    ``<checkpoint_dir>/_data``."""
    return explicit or _get("data_location") or str(checkpoint_dir() / "_data")


def task_executor(task_executor: str | None = None) -> str:
    """The class name of the executor that runs a task: the one its ``executor`` argument names (a class
    path or an alias of ``[core] executor``), else the first of ``[core] executor`` (Airflow's default)."""
    from airflow.configuration import conf

    configured = [e.strip() for e in str(conf.get("core", "executor", fallback="") or "").split(",") if e.strip()]
    aliases = {e.partition(":")[0]: e.partition(":")[2] for e in configured if ":" in e}
    chosen = task_executor or (configured[0] if configured else "LocalExecutor")
    chosen = aliases.get(chosen, chosen)
    return chosen.rpartition(":")[2].rpartition(".")[2]


def worker_local_warning(data_location: str, executor: str | None = None) -> str | None:
    """What to warn about when saved views go to a path of the worker's own disk (a plain or ``file:`` path
    that is not a network mount) while the task's executor (``executor``: its ``executor`` argument) can run a
    retry on another machine: there the saved views are missing and their producers run again. ``None``
    when they can help any retry."""
    from airflow_ppf.spark.fs import is_local_uri, is_network_path

    name = task_executor(executor)
    if name in SINGLE_MACHINE_EXECUTORS or not is_local_uri(data_location) or is_network_path(data_location):
        return None
    return (
        f"Saved views go to {data_location}, a path on this worker's own disk, but the {name} can run a retry "
        "on another worker: there the saved views cannot help it (they are missing; their producers run again). "
        "Set data_location (or [ppf] data_location) to a location every worker reaches (hdfs://, s3a://, a "
        "shared mount) for a retry on any worker to resume."
    )
