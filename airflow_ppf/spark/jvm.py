"""Every use of pyspark's private handles on the driver JVM (``_jvm``, ``_jsc``, ``_jsparkSession``, ``_jdf``).

They exist only in a classic session (a driver JVM in this process), not with Spark Connect, and they are
not public API: keeping them here makes one place to adapt when pyspark changes, and every caller gets
``None`` (or ``False``) instead of an exception where there is no JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["analyzed_plan", "executed_plan", "hadoop_handles", "has_driver_jvm", "session_state", "temp_view_plan"]


def has_driver_jvm(spark: SparkSession) -> bool:
    """Whether ``spark`` is a classic session with a driver JVM in this process (not Spark Connect)."""
    try:
        return spark._jvm is not None and spark._jsc is not None
    except Exception:  # Spark Connect raises PySparkAttributeError (JVM_ATTRIBUTE_NOT_SUPPORTED)
        return False


def hadoop_handles(spark: SparkSession) -> tuple[Any, Any]:
    """The py4j gateway's JVM view and the session's Hadoop ``Configuration`` (classic sessions only).

    Raises:
        ValueError: the session has no driver JVM (Spark Connect).
    """
    if not has_driver_jvm(spark):
        raise ValueError("this Spark session has no driver JVM (Spark Connect)")
    return spark._jvm, spark._jsc.hadoopConfiguration()


def session_state(spark: SparkSession) -> Any | None:
    """The JVM ``SessionState`` of ``spark`` (SQL parser, session catalog), or ``None`` without a JVM."""
    try:
        jsession = spark._jsparkSession
    except Exception:  # Spark Connect: JVM_ATTRIBUTE_NOT_SUPPORTED
        return None
    return None if jsession is None else jsession.sessionState()


def temp_view_plan(spark: SparkSession, name: str) -> Any | None:
    """The JVM plan object a temp view is registered with (changes when the view is replaced), or ``None``."""
    state = session_state(spark)
    if state is None:
        return None
    try:
        found = state.catalog().getTempView(name)
        return found.get() if found.isDefined() else None
    except Exception:
        return None


def executed_plan(frame: DataFrame) -> str | None:
    """The text of a DataFrame's physical plan, or ``None`` without a JVM (Spark Connect) or on error."""
    return _query_execution_text(frame, "executedPlan")


def analyzed_plan(frame: DataFrame) -> str | None:
    """The text of a DataFrame's analyzed logical plan (no optimisation, no physical planning: cheap), or
    ``None`` without a JVM (Spark Connect) or on error."""
    return _query_execution_text(frame, "analyzed")


def _query_execution_text(frame: DataFrame, stage: str) -> str | None:
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        return None
    try:
        return str(getattr(jdf.queryExecution(), stage)().toString())
    except Exception:
        return None
