"""Shared test setup: tier markers by folder and one local SparkSession per test process.

Tiers: ``tests/unit`` (no JVM, no Airflow), ``tests/spark`` (real local Spark), ``tests/airflow``
(real Airflow, ``dag.test()``), ``tests/e2e`` (real Airflow services, PostgreSQL, Spark daemons).
``make test-fast`` runs the unit tier alone.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

TESTS = Path(__file__).parent
_TIERS = {"spark": ("spark",), "airflow": ("airflow", "slow"), "e2e": ("e2e", "slow")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        except ValueError:
            continue
        for marker in _TIERS.get(tier, ()):
            item.add_marker(getattr(pytest.mark, marker))


#: Spark settings for a quick, quiet, single-core local session.
FAST_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.sql.session.timeZone": "UTC",
}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests were skipped because a system package is missing, and how to install it."""
    from tests.helpers.system_packages import PACKAGES, REQUIRE_VAR, skipped_by_package

    counts = skipped_by_package(terminalreporter.stats.get("skipped", []))
    if not counts:
        return
    terminalreporter.write_sep("=", "skipped: missing system packages", yellow=True)
    for debian, count in sorted(counts.items()):
        install = PACKAGES[debian].install if debian in PACKAGES else f"apt-get install {debian}"
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(f"{count} {tests} skipped: Debian package '{debian}' is missing ({install})")
    terminalreporter.write_line(f"Install them (as root) to run every test; {REQUIRE_VAR}=1 makes such skips fail.")


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """The one SparkSession of this test process. Never stop it in a test."""
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    builder = SparkSession.builder.master("local[1]").appName("airflow-ppf-tests")
    for key, value in {**FAST_SPARK_CONF, "spark.sql.warehouse.dir": str(warehouse)}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def spark(spark_session: SparkSession) -> SparkSession:
    """A fresh session on the shared JVM: its own temp views, shared SparkContext."""
    return spark_session.newSession()


# py4j logs at interpreter shutdown, after pytest closed the capture streams.
logging.getLogger("py4j").setLevel(logging.WARNING)
