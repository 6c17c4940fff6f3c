"""What ``ppf run`` prints when a Spark component fails: the error once, where it was raised, no dumps.

A SQL analysis error made pyspark write one JSON line with a few hundred JVM frames to stderr (its own
query-context logger) and the runner's log line carried the Python traceback. ``--debug`` brings both back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.spark.resume_support import ppf

pytestmark = [pytest.mark.slow]

PIPELINE = """
name: typo
spark { master: "local[1]", spark_conf { spark.ui.enabled: "false" } }
components: [
  { name: numbers, class_path: airflow_ppf.components.spark.SqlTransform,
    config { sql: "SELECT id AS amount FROM range(3)", output_view: numbers } }
  { name: totals, class_path: airflow_ppf.components.spark.SqlTransform, depends_on: [numbers],
    config { sql: "SELECT SUM(amout) AS total FROM numbers", output_view: totals } }
]
"""


def test_a_sql_error_is_reported_once_without_dumps_and_debug_shows_them(tmp_path: Path) -> None:
    config = tmp_path / "typo.conf"
    config.write_text(PIPELINE, encoding="utf-8")
    args = ["run", str(config), "--checkpoint-dir", str(tmp_path / "ckpt")]

    quiet = ppf(*args, "--run-id", "quiet", cwd=tmp_path)

    assert quiet.returncode == 1, quiet.describe()
    assert "UNRESOLVED_COLUMN" in quiet.stdout, quiet.describe()
    assert "`amout`" in quiet.stdout, quiet.describe()
    assert "Traceback" not in quiet.stderr, quiet.describe()
    assert "QueryContextLogger" not in quiet.stderr, quiet.describe()
    assert "\tat org.apache.spark" not in quiet.stderr + quiet.stdout, quiet.describe()
    (failure,) = [line for line in quiet.stderr.splitlines() if line.startswith("ERROR ")]
    assert "Component 'totals' failed after 1 attempt(s)" in failure
    # the innermost frame outside pyspark and py4j: the component's own code, not pyspark's error wrapper
    assert re.search(r"raised at \S*airflow_ppf/components/spark/transforms\.py:\d+ in run;", failure), failure
    assert "ppf --debug shows the traceback" in failure

    debug = ppf(*args, "--run-id", "debug", "--debug", cwd=tmp_path)

    assert debug.returncode == 1, debug.describe()
    assert "Traceback (most recent call last)" in debug.stderr, debug.describe()
    assert '"logger": "SQLQueryContextLogger"' in debug.stderr, debug.describe()
