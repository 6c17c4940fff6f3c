"""The pipeline's outputs as Airflow assets, so that a downstream DAG can be scheduled on them.

Two ways, both opt-in:

* ``PipelineOperator(output_assets=True)`` (or an alias name): the task's outlets get an
  :class:`~airflow.sdk.AssetAlias`; when the pipeline succeeds, every dataset its components write is
  added to it as an asset event (:class:`AssetEvents`). Nothing is read at DAG-parse time, and templated
  paths work. A downstream DAG schedules on ``Asset("file:///data/out/totals")`` (or on the alias).
* ``outlets=pipeline_assets("orders.conf", ...)``: the outputs are read from the config when the DAG file is
  parsed (:func:`pipeline_assets`), and Airflow emits their events itself on success.

Either way an event is emitted only by a successful try, so a pipeline that fails once and resumes
emits each asset event once. An asset's URI is its dataset's OpenLineage namespace and name
(``file:///abs/path``, ``s3://bucket/key``, ``hdfs://nn:8020/path``; a table by its location).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ppf.components.datasets import CatalogInfo, DatasetRef
from airflow_ppf.runner.hooks import NoOpHooks

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from airflow_ppf.config.models import PipelineConfig
    from airflow_ppf.observability.observer import RunObserver
    from airflow_ppf.runner.results import PipelineResult

__all__ = ["AssetEvents", "pipeline_assets", "to_asset"]

log = logging.getLogger(__name__)


def to_asset(ref: DatasetRef) -> Asset:
    """The Airflow asset of a dataset: its URI is the dataset's namespace and name."""
    from airflow.sdk import Asset

    return Asset(ref.uri)


class AssetEvents(NoOpHooks):
    """On a successful run, add an event to ``alias`` for every dataset the pipeline's components write.

    Components skipped because an earlier try finished them count: their output is this task's output.
    """

    def __init__(self, outlet_events: Any, alias: str, observer: RunObserver) -> None:
        self.outlet_events = outlet_events
        self.alias = alias
        self.observer = observer

    def after_pipeline(self, config: PipelineConfig, result: PipelineResult) -> None:
        if not self.observer.succeeded:
            return
        from airflow.sdk import AssetAlias

        events = self.outlet_events[AssetAlias(self.alias)]
        for name in self.observer.done():
            for ref in self.observer.datasets([name], "output_datasets"):
                events.add(to_asset(ref), extra={"pipeline": config.name, "component": name})
                log.info("Asset event for %s (written by %s)", ref.uri, name)


def pipeline_assets(
    pipeline: str | Path | Mapping[str, Any] | PipelineConfig,
    pipeline_vars: Mapping[str, Any] | None = None,
    *,
    spark_conf: Mapping[str, str] | None = None,
) -> list[Asset]:
    """Read a pipeline config now (at DAG-parse time) and return the assets its components write.

    For ``PipelineOperator(outlets=pipeline_assets(...))``. ``pipeline`` is a config file (a relative path
    is relative to the working directory: use ``Path(__file__).parent / "x.conf"`` in a DAG file), a dict
    or a :class:`PipelineConfig`; ``pipeline_vars`` are its ``${NAME}`` values (no Jinja here: they are
    not rendered). Tables are named with ``spark_conf``'s warehouse and metastore.

    Raises:
        ConfigError: the config is missing or invalid.
    """
    from airflow_ppf.config import PipelineConfig
    from airflow_ppf.observability.observer import build_components, declared_datasets

    variables = {str(k): str(v) for k, v in (pipeline_vars or {}).items()}
    if isinstance(pipeline, PipelineConfig):
        config = pipeline
    elif isinstance(pipeline, Mapping):
        config = PipelineConfig.from_dict(pipeline, source="pipeline_assets", variables=variables)
    else:
        config = PipelineConfig.from_file(Path(pipeline), variables=variables)
    catalog = CatalogInfo.from_spark_conf({**config.spark.to_spark_conf(), **(spark_conf or {})})
    components = list(build_components(config).values())
    return [to_asset(ref) for ref in declared_datasets(components, "output_datasets", catalog)]
