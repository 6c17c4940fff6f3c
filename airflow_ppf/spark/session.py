"""SparkSession lifecycle: created lazily, from a SparkConfig or handed in, stopped only by its creator."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_ppf.config.models import SparkConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkSessionManager", "SparkUnavailableError", "check_pyspark_install"]

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
#: How to get pyspark with its jars (airflow-ppf is installed from a clone or a wheel: docs/installation.md).
_INSTALL_SPARK = "from a clone: pip install './airflow-ppf[spark]', or the wheel with [spark]"


class SparkUnavailableError(RuntimeError):
    """pyspark is not installed (or broken) but a Spark component needs a session."""


def _is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[") or master.startswith("local-cluster[")


class SparkSessionManager:
    """Give out one SparkSession per pipeline run, creating it only on first use.

    Args:
        config: how to build a session (master URL, Spark Connect URL, conf). Ignored when ``session``
            is given.
        session: an existing session to use. The manager never stops a session it did not create.
        app_name: the application name when ``config.app_name`` is unset.
        extra_conf: Spark properties applied on top of ``config`` (e.g. from an Airflow connection).
    """

    def __init__(
        self,
        config: SparkConfig | None = None,
        *,
        session: SparkSession | None = None,
        app_name: str | None = None,
        extra_conf: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or SparkConfig()
        self.app_name = self.config.app_name or app_name or "airflow-ppf"
        self.extra_conf = dict(extra_conf or {})
        self._session = session
        self._owns = False
        self._lock = threading.Lock()
        self.startup_seconds: float | None = None

    @property
    def started(self) -> bool:
        """Whether a session is in hand (created here or handed in)."""
        return self._session is not None

    @property
    def owns_session(self) -> bool:
        """Whether this manager created the session (and so will stop it)."""
        return self._owns

    @property
    def is_connect(self) -> bool:
        """Whether sessions come from a Spark Connect server."""
        return bool(self.config.remote)

    def describe(self) -> str:
        """Say where sessions come from, without secrets (for logs)."""
        if self.config.remote:
            return f"Spark Connect {_strip_secrets(self.config.remote)}"
        return f"master {self.config.master or DEFAULT_MASTER}"

    def get(self) -> SparkSession:
        """Return the session, creating it on first call.

        When the process already has an active classic session (another library, a test suite, a notebook)
        a new session on it is used instead: same SparkContext, its own temp views, and it is never
        stopped by this manager.
        """
        with self._lock:
            if self._session is None:
                self._session, self._owns = self._create()
            return self._session

    def peek(self) -> SparkSession | None:
        """Return the session if one exists, without creating it."""
        return self._session

    def catalog_conf(self) -> dict[str, str]:
        """The Spark properties that name catalog tables (warehouse, catalog implementation, metastore).

        Read from the running session when there is one (what Spark really uses), else from the
        configured properties; never starts a session.
        """
        keys = (
            "spark.sql.warehouse.dir",
            "spark.sql.catalogImplementation",
            "spark.hadoop.hive.metastore.uris",
            "spark.sql.hive.metastore.uris",
        )
        configured = {**self.config.to_spark_conf(), **self.extra_conf}
        session = self._session
        out = {key: configured[key] for key in keys if key in configured}
        if session is None:
            return out
        for key in keys:
            try:
                # No default argument: with one, Spark returns it instead of the built-in default of a static conf.
                value = session.conf.get(key)
            except Exception:  # unset without a default, or a Connect server that refuses it
                continue
            if value is not None:
                out[key] = str(value)
        return out

    def stop(self) -> None:
        """Stop the session if this manager created it; leave a handed-in session alone."""
        with self._lock:
            session, owned = self._session, self._owns
            self._session, self._owns = (None, False) if owned else (session, False)
        if session is not None and owned:
            log.info("Stopping the SparkSession this pipeline created")
            session.stop()

    def cancel_all(self) -> None:
        """Cancel every running Spark job of the session (used when a task is killed)."""
        session = self._session
        if session is None:
            return
        try:
            if self.is_connect:
                session.interruptAll()
            else:
                session.sparkContext.cancelAllJobs()
        except Exception as exc:  # cancelling is best effort: the process is going away anyway
            log.warning("Could not cancel Spark jobs: %s", exc)

    def _create(self) -> tuple[SparkSession, bool]:
        check_pyspark_install(classic=not self.config.remote)
        from pyspark.sql import SparkSession

        quiet_query_context_loggers()

        active = None if self.config.remote else SparkSession.getActiveSession()
        if active is not None:
            log.info("Using a new session on this process's active SparkContext (it will not be stopped)")
            return active.newSession(), False

        # Python workers must use this interpreter, which has the project's packages (pyarrow, ...).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        conf = self.config.to_spark_conf()
        conf.update(self.extra_conf)
        builder = SparkSession.builder.appName(self.app_name)
        if self.config.remote:
            builder = builder.remote(self.config.remote)
        else:
            master = self.config.master or DEFAULT_MASTER
            builder = builder.master(master)
            if _is_local(master):
                # A local driver never needs to be reached from another host; binding to loopback
                # avoids hostname-resolution surprises on workers and CI machines.
                conf.setdefault("spark.driver.host", "127.0.0.1")
                conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
        for key, value in conf.items():
            builder = builder.config(key, value)
        log.info("Starting a SparkSession (%s, app %r)", self.describe(), self.app_name)
        started = time.monotonic()
        if self.config.remote:
            session = builder.getOrCreate()
        else:
            from airflow_ppf.spark.jvm import captured_jvm_startup

            launch = {**conf, "spark.master": self.config.master or DEFAULT_MASTER, "spark.app.name": self.app_name}
            with captured_jvm_startup(launch):
                session = builder.getOrCreate()
        self.startup_seconds = time.monotonic() - started
        if not self.config.remote:
            # A Spark Connect client has no SparkContext; the server's log level is the server's business.
            if self.config.log_level:
                session.sparkContext.setLogLevel(self.config.log_level)
            _warn_on_version_mismatch(session)
        log.info("SparkSession ready in %.1f s (Spark %s)", self.startup_seconds, session.version)
        return session, True


#: pyspark's loggers that write every analysis error with a query context to stderr as one JSON line that
#: carries the whole JVM stack trace (``logger.exception`` on loggers of their own, ``propagate=False``).
QUERY_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def quiet_query_context_loggers() -> None:
    """Keep pyspark's query-context error dumps out of task logs and the CLI unless ``airflow_ppf`` logs DEBUG.

    The runner reports the same error (its type, error class and message) once, for the component that raised
    it; the dump repeated it with a few hundred lines of JVM frames. At DEBUG the dumps stay as pyspark writes them.
    """
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # a pyspark without structured logging has no such dumps
        return
    level = logging.WARNING if logging.getLogger("airflow_ppf").isEnabledFor(logging.DEBUG) else logging.CRITICAL
    for name in QUERY_CONTEXT_LOGGERS:
        # PySparkLogger.getLogger, not logging.getLogger: pyspark calls .exception(..., errorClass=...) on it,
        # which a plain Logger would refuse.
        PySparkLogger.getLogger(name).setLevel(level)


def check_pyspark_install(*, classic: bool = False) -> None:
    """Fail with an actionable message when pyspark cannot be imported.

    Args:
        classic: a classic session (a driver JVM in this process) is about to start, which needs the full
            pyspark, not ``pyspark-client`` alone (Spark Connect only, no Spark jars).

    Raises:
        SparkUnavailableError: pyspark is missing or broken, or only its Spark Connect client is installed.
    """
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession  # noqa: F401
    except ImportError as exc:
        raise SparkUnavailableError(
            f"this pipeline has Spark components but pyspark cannot be imported ({exc}); "
            f"install airflow-ppf with its [spark] extra ({_INSTALL_SPARK})"
        ) from exc
    if classic and _remote_only():
        # Without this, pyspark answers a local master with Spark Connect's [CONNECT_URL_NOT_SET].
        raise SparkUnavailableError(
            "only pyspark-client is installed (the Spark Connect client, without Spark's jars), so Spark "
            "cannot run in this process: install airflow-ppf with its [spark] extra, which brings the full "
            f"pyspark ({_INSTALL_SPARK}; the [airflow] extra alone brings pyspark-client only), or use a "
            "Spark Connect server (spark.remote, or a spark_connect connection)"
        )


def _remote_only() -> bool:
    """Whether the installed pyspark is the Spark Connect client alone (``pyspark.util.is_remote_only``)."""
    try:
        from pyspark.util import is_remote_only
    except ImportError:  # pyspark before 4.0 has no such client
        return False
    return bool(is_remote_only())


def _warn_on_version_mismatch(session: SparkSession) -> None:
    import pyspark

    python_side = pyspark.__version__
    jvm_side = session.version
    if python_side.split(".")[:3] != jvm_side.split(".")[:3]:
        log.warning(
            "pyspark Python files are %s but the Spark jars are %s: Python UDFs will fail. This happens when "
            "pyspark-client (pulled in by the Airflow Spark provider) overwrites pyspark's files; install "
            "both at the same release, e.g. pip install 'pyspark==4.2.0' 'pyspark-client==4.2.0'",
            python_side,
            jvm_side,
        )


def _strip_secrets(url: str) -> str:
    """Drop ``;token=...`` style parameters from a Spark Connect URL."""
    base, _, params = url.partition(";")
    kept = [p for p in params.split(";") if p and not p.lower().startswith(("token", "password"))]
    return ";".join([base, *kept]) if kept else base
