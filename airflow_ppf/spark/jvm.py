"""Every use of pyspark's private handles on the driver JVM (``_jvm``, ``_jsc``, ``_jsparkSession``, ``_jdf``).

They exist only in a classic session (a driver JVM in this process), not with Spark Connect, and they are
not public API: keeping them here makes one place to adapt when pyspark changes, and every caller gets
``None`` (or ``False``) instead of an exception where there is no JVM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "analyzed_plan",
    "captured_jvm_startup",
    "executed_plan",
    "hadoop_handles",
    "has_driver_jvm",
    "session_state",
    "temp_view_plan",
]

#: What the driver JVM writes to stderr, as log records (``JVM: <line>``).
jvm_log = logging.getLogger("airflow_ppf.spark.jvm")
_LOG4J_LEVEL = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}


class _JvmStderr:
    """Read the driver JVM's stderr and log it, one record per line.

    While the JVM starts (banner, ``Using Spark's default log4j profile``, the native-hadoop warning) lines
    are logged at DEBUG and kept, so a start that fails can show them; afterwards each line is logged at
    its log4j level (lines without one, such as stack traces, at the level of the line before).
    """

    #: Printed by the JVM once the session exists: everything before it on the stream is start-up output.
    STARTED = "ppf: driver JVM started"

    def __init__(self, fd: int) -> None:
        self.starting = True
        self.startup: deque[str] = deque(maxlen=40)
        self._level = logging.INFO
        self._thread = threading.Thread(target=self._pump, args=(fd,), name="ppf-jvm-stderr", daemon=True)
        self._thread.start()

    def _pump(self, fd: int) -> None:
        with open(fd, "rb", closefd=True) as stream:
            for raw in stream:
                # A progress bar redraws itself after carriage returns: keep what a terminal would show.
                line = raw.decode("utf-8", "replace").rstrip().rsplit("\r", 1)[-1]
                if not line.strip():
                    continue
                if line == self.STARTED:
                    self.starting = False
                    continue
                if self.starting:
                    self.startup.append(line)
                    jvm_log.debug("JVM: %s", line)
                    continue
                match = _LOG4J_LEVEL.match(line)
                if match:
                    self._level = _LEVELS.get(match.group(1), logging.ERROR)
                jvm_log.log(self._level, "JVM: %s", line)

    def wait_for_exit(self, seconds: float) -> None:
        self._thread.join(seconds)


def _start_gateway(conf: Mapping[str, str]) -> _JvmStderr | None:
    """Start the process's py4j gateway (the driver JVM) with its stderr read by a :class:`_JvmStderr`.

    Returns ``None`` (and starts nothing) when the process already has a gateway, or pyspark is given one
    (``PYSPARK_GATEWAY_PORT``, e.g. under spark-submit). Otherwise the JVM's stderr is a pipe this process
    reads: without it the JVM writes to the task's stderr, which Airflow logs as ERROR lines.

    Raises:
        Exception: pyspark's own error when the JVM cannot start (e.g. ``JAVA_GATEWAY_EXITED``).
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return None
    spark_conf = SparkConf()
    for key, value in conf.items():
        spark_conf.set(key, value)
    read_end, write_end = os.pipe()
    reader = _JvmStderr(read_end)
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": write_end})  # type: ignore[no-untyped-call]
    except BaseException:
        os.close(write_end)
        reader.wait_for_exit(5)  # the JVM died: read what it said
        _log_startup(reader)
        raise
    os.close(write_end)  # the JVM holds its own copy
    SparkContext._ensure_initialized(gateway=gateway)
    return reader


def _log_startup(reader: _JvmStderr) -> None:
    if reader.startup:
        jvm_log.error("The Spark driver JVM did not start; it said:\n%s", "\n".join(reader.startup))


@contextlib.contextmanager
def captured_jvm_startup(conf: Mapping[str, str]) -> Iterator[None]:
    """Start the driver JVM (if this process has none) with its start-up chatter logged at DEBUG.

    ``conf`` are the Spark properties of the session about to be created (``spark.master`` included):
    those the JVM needs at launch (driver memory, extra Java options, jars) are passed to it. The block
    creates the session; if it fails, the JVM's start-up output is logged at ERROR. Once it succeeds,
    the JVM's later output is logged at its own level.
    """
    reader = _start_gateway(conf)
    try:
        yield
    except BaseException:
        if reader is not None:
            _log_startup(reader)
            reader.starting = False
        raise
    if reader is not None:
        _end_startup(reader)


def _end_startup(reader: _JvmStderr) -> None:
    """Have the JVM print the end-of-start-up marker on its stderr, after whatever it wrote so far."""
    from pyspark import SparkContext

    try:
        jvm: Any = SparkContext._jvm
        err = jvm.System.err
        err.println(reader.STARTED)
        err.flush()
    except Exception:  # never fail a session over log levels
        reader.starting = False


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
