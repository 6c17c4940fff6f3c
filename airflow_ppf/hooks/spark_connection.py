"""SparkConnectionHook: an Airflow Spark connection as pipeline Spark settings (master or Connect URL, conf).

Supported connection types are those of the Apache Spark provider:

* ``spark`` – host is the master: ``local[*]``, ``yarn``, ``spark://host`` (+ port), ``k8s://https://...``;
  extras ``deploy-mode`` and ``queue`` map to ``spark.submit.deployMode`` / ``spark.yarn.queue``;
* ``spark_connect`` – ``sc://host:port`` with the user and token of the connection (via the provider's
  ``SparkConnectHook``).

Any extra whose key starts with ``spark.`` (or sits under an ``conf`` / ``spark_conf`` object) becomes a
Spark property. Unlike the provider's SparkSubmitHook, a missing connection is an error, never a silent
fallback to ``yarn``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

__all__ = ["SparkConnectionError", "SparkConnectionHook", "SparkConnectionSettings", "spark_settings_from_connection"]

log = logging.getLogger(__name__)

SUPPORTED_TYPES = ("spark", "spark_connect")
_NOT_CONF = {"deploy-mode", "queue", "spark-binary", "namespace", "principal", "keytab", "use_ssl"}


class SparkConnectionError(AirflowException):
    """A Spark connection is missing, of an unsupported type, or malformed."""


@dataclass(frozen=True)
class SparkConnectionSettings:
    """What a connection says about how to reach Spark (``master`` or ``remote``, never both)."""

    conn_id: str
    master: str | None = None
    remote: str | None = None
    conf: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Say where Spark is, without credentials (for logs)."""
        if self.remote:
            return f"Spark Connect {self.remote.split(';')[0]} (connection {self.conn_id!r})"
        return f"master {self.master} (connection {self.conn_id!r})"


def _conf_from_extras(extras: dict[str, Any]) -> dict[str, str]:
    conf: dict[str, str] = {}
    for key, value in extras.items():
        if key in ("conf", "spark_conf") and isinstance(value, dict):
            conf.update({str(k): str(v) for k, v in value.items()})
        elif key.startswith("spark."):
            conf[key] = str(value).lower() if isinstance(value, bool) else str(value)
        elif key == "deploy-mode" and value:
            conf["spark.submit.deployMode"] = str(value)
        elif key == "queue" and value:
            conf["spark.yarn.queue"] = str(value)
        elif key not in _NOT_CONF:
            log.warning("Ignoring extra %r of the Spark connection: not a Spark property", key)
    return conf


class SparkConnectionHook(BaseHook):
    """Read an Airflow connection of type ``spark`` or ``spark_connect`` as the settings of a SparkSession.

    Unlike the Spark provider's hooks it submits nothing: ``PipelineOperator`` builds the session in the
    task's own process from :meth:`get_settings`.

    :param spark_conn_id: the connection.
    """

    conn_name_attr = "spark_conn_id"
    default_conn_name = "spark_default"
    hook_name = "Spark (airflow-ppf pipelines)"

    def __init__(self, spark_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.spark_conn_id = spark_conn_id

    def get_conn(self) -> SparkConnectionSettings:
        """Same as :meth:`get_settings` (the hook's connection *is* the settings)."""
        return self.get_settings()

    def get_settings(self) -> SparkConnectionSettings:
        """Return where Spark is and its extra properties.

        Raises:
            SparkConnectionError: the connection does not exist, has another type, or has no host.
        """
        conn_id = self.spark_conn_id
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException as exc:
            # A config error (the task fails without retries); other errors (a secrets backend that is
            # down) propagate, and a retry may well succeed.
            raise SparkConnectionError(
                f"Spark connection {conn_id!r} not found ({exc}): create it (Admin → Connections, "
                f"`airflow connections add {conn_id}` or AIRFLOW_CONN_{conn_id.upper()}) or fix spark_conn_id"
            ) from exc
        conn_type = (conn.conn_type or "").replace("-", "_")
        if conn_type not in SUPPORTED_TYPES:
            raise SparkConnectionError(
                f"connection {conn_id!r} has type {conn.conn_type!r}; PipelineOperator supports "
                f"{' and '.join(SUPPORTED_TYPES)} connections"
            )
        if not conn.host:
            raise SparkConnectionError(f"Spark connection {conn_id!r} has no host (the master or Connect server)")
        conf = _conf_from_extras(conn.extra_dejson or {})
        if conn_type == "spark_connect":
            from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

            return SparkConnectionSettings(
                conn_id, remote=SparkConnectHook(conn_id=conn_id).get_connection_url(), conf=conf
            )
        host = conn.host.strip()
        master = host if "://" in host or not conn.port else f"spark://{host}"
        if conn.port:
            master = f"{master}:{conn.port}"
        return SparkConnectionSettings(conn_id, master=master, conf=conf)


def spark_settings_from_connection(conn_id: str) -> SparkConnectionSettings:
    """Read an Airflow connection of type ``spark`` or ``spark_connect`` (see :class:`SparkConnectionHook`).

    Raises:
        SparkConnectionError: the connection does not exist, has another type, or has no host.
    """
    return SparkConnectionHook(conn_id).get_settings()
