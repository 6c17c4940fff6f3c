"""pyspark-pipeline-framework's session wrapper, on top of :class:`SparkSessionManager`.

``SparkSessionWrapper(config.spark).spark`` creates the session on first use; a runner given
``spark_wrapper=`` takes its session from the wrapper (any object with a ``spark`` attribute) the first
time a Spark component runs, and never stops it: the wrapper's owner does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_ppf.config.models import SparkConfig
from airflow_ppf.spark.session import SparkSessionManager

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkSessionWrapper", "manager_for_wrapper"]


class SparkSessionWrapper(SparkSessionManager):
    """A SparkSession made on first use from a :class:`SparkConfig`; ``stop()`` stops it if it made it."""

    _instance: ClassVar[SparkSessionWrapper | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, config: SparkConfig | None = None) -> None:
        super().__init__(config or SparkConfig(app_name="pyspark-pipeline"))

    @classmethod
    def get_or_create(cls, config: SparkConfig | None = None) -> SparkSessionWrapper:
        """The process's shared wrapper (made with ``config`` on the first call)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls(config)
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Stop and forget the shared wrapper."""
        with cls._instance_lock:
            if cls._instance is not None:
                cls._instance.stop()
                cls._instance = None

    @property
    def spark(self) -> SparkSession:
        """The session, created on first access."""
        return self.get()

    @property
    def spark_context(self) -> Any:
        """The session's SparkContext (Spark Connect sessions have none)."""
        if self.is_connect:
            raise RuntimeError("SparkContext is not available in Spark Connect mode; use the session itself")
        return self.spark.sparkContext

    @property
    def is_connect_mode(self) -> bool:
        """Whether the session comes from a Spark Connect server."""
        return self.is_connect

    def set_spark_session(self, spark: SparkSession) -> None:
        """Use ``spark`` from now on (a session made here before is stopped; ``spark`` never is)."""
        self.stop()
        with self._lock:
            self._session, self._owns = spark, False

    def __enter__(self) -> SparkSessionWrapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _BorrowedSession(SparkSessionManager):
    """Takes its session from a wrapper's ``spark`` attribute when first needed; never stops it."""

    def __init__(self, wrapper: Any, config: SparkConfig) -> None:
        super().__init__(config)
        self.wrapper = wrapper

    def _create(self) -> tuple[SparkSession, bool]:
        return self.wrapper.spark, False


def manager_for_wrapper(wrapper: Any, config: SparkConfig) -> SparkSessionManager:
    """The session manager a runner uses for ``spark_wrapper=``: the wrapper itself when it is one."""
    if isinstance(wrapper, SparkSessionManager):
        return wrapper
    return _BorrowedSession(wrapper, config)
