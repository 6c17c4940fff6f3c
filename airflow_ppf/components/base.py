"""The component model: :class:`Component` runs a step, :class:`DataFlow` is a component that uses Spark."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from airflow_ppf.components.datasets import DatasetDecl

__all__ = ["Component", "DataFlow", "PipelineComponent", "SparkSessionNotAvailableError"]


class SparkSessionNotAvailableError(RuntimeError):
    """A :class:`DataFlow` used ``self.spark`` before the runner injected a session."""


class Component(ABC):
    """One step of a pipeline.

    Subclasses implement :meth:`run`. A component is built from its config's ``config`` block, with
    ``cls.from_config(config)`` when the class defines that classmethod, else ``cls(**config)``.

    Components hand data to each other through Spark temp views. A component that reads or writes views
    says which through :attr:`input_views` and :attr:`output_views`, so that a resume in a new process can
    restore what the components it skips produced (see :mod:`airflow_ppf.checkpoint.dataflow`).

    What a component reads from and writes to outside the pipeline (files, tables) it declares through
    :attr:`input_datasets` and :attr:`output_datasets`: the task's lineage (OpenLineage) and its Airflow
    assets are made from them (see :mod:`airflow_ppf.components.datasets`).
    """

    #: Whether running this component again has no effect beyond re-registering its views (no writes, no
    #: calls to other systems). Under ``materialize = auto`` the cheap views of such a component are
    #: recomputed on a resume, by running it again, instead of being saved on every run.
    recomputable: bool = False
    #: Set by the runner to the component's configured name.
    _ppf_name: str | None = None
    #: Set by the runner before run().
    _ppf_context: Mapping[str, Any] = MappingProxyType({})

    @property
    def name(self) -> str:
        """The component's name in the pipeline (its class name until the runner assigns one)."""
        return self._ppf_name or type(self).__name__

    @name.setter
    def name(self, value: str) -> None:
        self._ppf_name = value

    @property
    def context(self) -> Mapping[str, Any]:
        """Read-only facts about the run, set by the runner before :meth:`run`.

        Always ``pipeline_name``; ``run_id`` and ``attempt`` when the run is checkpointed; under Airflow
        also ``dag_id``, ``task_id``, ``dag_run_id``, ``map_index``, ``try_number`` and ``params``.
        """
        return self._ppf_context

    @property
    def input_views(self) -> Sequence[str] | None:
        """Temp views this component reads: ``()`` for none, ``None`` for unknown (then every view
        produced upstream of it is kept available for it). Plain components use no views."""
        return ()

    @property
    def output_views(self) -> Sequence[str] | None:
        """Temp views this component creates: ``()`` for none, ``None`` for unknown (then the runner
        detects new views in the session catalog after :meth:`run`). Plain components create none."""
        return ()

    @property
    def input_datasets(self) -> Sequence[DatasetDecl]:
        """Datasets this component reads (files, tables), for lineage; ``()`` unless declared. Computed from
        the component's config alone: a component skipped by a resume is asked too."""
        return ()

    @property
    def output_datasets(self) -> Sequence[DatasetDecl]:
        """Datasets this component writes (files, tables), for lineage and Airflow assets; ``()`` unless
        declared. Computed from the component's config alone."""
        return ()

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the component's module and name."""
        return logging.getLogger(f"{type(self).__module__}.{self.name}")

    @abstractmethod
    def run(self) -> None:
        """Do the work. Raise to fail the component."""

    def cancel(self) -> None:  # noqa: B027 - optional hook with a do-nothing default
        """Ask a running :meth:`run` to stop (called from another thread, e.g. when Airflow kills the task)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


#: pyspark-pipeline-framework's name of :class:`Component` (the same class).
PipelineComponent = Component


class DataFlow(Component):
    """A component that runs Spark code; the runner injects a SparkSession as :attr:`spark` before :meth:`run`.

    The session is created lazily, when the first DataFlow of a pipeline is about to run, so pipelines
    made only of plain components never start a JVM.
    """

    _spark: SparkSession | None = None

    @property
    def spark(self) -> SparkSession:
        """The SparkSession to use."""
        if self._spark is None:
            raise SparkSessionNotAvailableError(
                f"{self!r} has no SparkSession yet: it is injected by the runner just before run(); "
                "outside a runner call set_spark_session(spark) first"
            )
        return self._spark

    @property
    def input_views(self) -> Sequence[str] | None:
        """Temp views this component reads; unknown (``None``) unless a subclass declares them."""
        return None

    @property
    def output_views(self) -> Sequence[str] | None:
        """Temp views this component creates; unknown (``None``, detected after :meth:`run`) unless a
        subclass declares them."""
        return None

    def set_spark_session(self, spark: SparkSession) -> None:
        """Inject the SparkSession this component will use."""
        self._spark = spark

    def cancel(self) -> None:
        """Cancel the Spark jobs this component's session is running."""
        if self._spark is not None:
            try:
                self._spark.sparkContext.cancelAllJobs()
            except Exception:  # Spark Connect sessions have no SparkContext
                interrupt: Any = getattr(self._spark, "interruptAll", None)
                if interrupt is not None:
                    interrupt()
