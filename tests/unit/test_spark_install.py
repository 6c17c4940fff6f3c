"""An install without Spark's jars (``airflow-ppf[airflow]`` alone brings pyspark-client only) gets a clear
message for a local master, not Spark Connect's ``[CONNECT_URL_NOT_SET]``.

pyspark-client is pyspark without ``pyspark.core`` (the classic, JVM-backed API); a fresh process that
cannot import ``pyspark.core`` is that install, seen from pyspark's own ``is_remote_only()``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CLIENT_ONLY = """
import sys
sys.modules["pyspark.core"] = None  # what pyspark-client lacks
from pyspark.util import is_remote_only
assert is_remote_only()
from airflow_ppf.config.models import SparkConfig
from airflow_ppf.spark import SparkSessionManager, SparkUnavailableError
try:
    SparkSessionManager(SparkConfig(master="local[1]")).get()
except SparkUnavailableError as exc:
    print(exc)
else:
    raise SystemExit("a local session started without pyspark.core")
"""


@pytest.mark.slow
def test_a_local_master_with_pyspark_client_only_says_to_install_the_spark_extra() -> None:
    out = subprocess.run([sys.executable, "-c", CLIENT_ONLY], capture_output=True, text=True, timeout=120)

    assert out.returncode == 0, out.stderr
    assert "only pyspark-client is installed" in out.stdout
    assert "install airflow-ppf with its [spark] extra" in out.stdout
    assert "pip install './airflow-ppf[spark]'" in out.stdout
    assert "CONNECT_URL_NOT_SET" not in out.stdout + out.stderr


@pytest.mark.parametrize("extra", ["spark", "airflow"])
def test_every_extra_that_brings_pyspark_pins_pandas_below_3(extra: str) -> None:
    """pip picks pandas 3 otherwise, which pyspark 4.2 does not support (both extras pull in pyspark-client)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = project["project"]["optional-dependencies"][extra]
    assert any(r.startswith("pyspark-client==") for r in requirements), requirements
    (pandas,) = [r for r in requirements if r.startswith("pandas")]
    assert pandas.endswith(",<3"), pandas


FAILING_JVM = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
from airflow_ppf.config.models import SparkConfig
from airflow_ppf.spark import SparkSessionManager
try:
    SparkSessionManager(SparkConfig(master="local[1]", driver_memory="12zz")).get()
except Exception as exc:
    print("RAISED", exc)
"""


@pytest.mark.slow
def test_a_driver_jvm_that_cannot_start_logs_what_it_said_at_error() -> None:
    """Its stderr is captured (kept out of a task's stderr); when the start fails, it is the explanation."""
    import os

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    out = subprocess.run([sys.executable, "-c", FAILING_JVM], capture_output=True, text=True, timeout=120, env=env)

    assert out.returncode == 0, out.stderr
    assert "ERROR airflow_ppf.spark.jvm The Spark driver JVM did not start; it said:" in out.stdout, out.stdout
    assert "Invalid maximum heap size: -Xmx12zz" in out.stdout
    assert "RAISED [JAVA_GATEWAY_EXITED]" in out.stdout
    assert "Invalid maximum heap size" not in out.stderr  # not written raw to the process's stderr
