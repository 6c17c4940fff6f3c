"""The demo behind ``make demo``: a Spark pipeline fails late, then resumes from its checkpoint.

1. generate input data (200,000 orders) under demo-output/data;
2. run the pipeline with ``ppf run``: it fails at ``publish_check`` (a deliberate, first-attempt-only
   fault), after the expensive components are done and checkpointed;
3. run it again with ``--resume`` in a new process: the finished components are skipped, the views they
   produced are restored from the checkpoint, and only the rest runs;
4. print the checkpoint history and the report the pipeline wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_dags"  # the same pipeline file the example DAG runs
OUT = ROOT / "demo-output"
RUN_ID = "demo"


def ppf(*args: str) -> tuple[int, float]:
    """Run ``ppf`` in a new process (as a user would); return its exit code and wall time."""
    env = {
        **os.environ,
        "DATA_DIR": str(OUT / "data"),
        "OUTPUT_DIR": str(OUT / "report"),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "airflow_ppf", *args], env=env)
    return code, time.monotonic() - started


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


def main() -> int:
    sys.path.insert(0, str(EXAMPLES))
    from orders_data import generate

    if not (OUT / "data" / "orders.csv").exists():
        print("Generating input data (200,000 orders, 5,000 customers)…", flush=True)
        generate(OUT / "data")
    config = str(EXAMPLES / "orders_pipeline.conf")
    checkpoints = ["--checkpoint-dir", str(OUT / "checkpoints")]
    ppf("checkpoints", *checkpoints, "clear", RUN_ID)

    banner("1) First attempt: the pipeline fails late, at publish_check")
    code1, took1 = ppf("run", config, "--run-id", RUN_ID, *checkpoints)
    if code1 != 1:
        print(f"expected the first attempt to fail with exit code 1, got {code1}")
        return 1

    banner("2) Second attempt, in a new process: resume from the checkpoint")
    code2, took2 = ppf("run", config, "--run-id", RUN_ID, "--resume", *checkpoints)
    if code2 != 0:
        print(f"the resumed attempt failed with exit code {code2}")
        return 1

    banner("3) The checkpoint's history")
    ppf("checkpoints", *checkpoints, "show", RUN_ID)

    banner("4) What the pipeline wrote")
    import pyarrow.dataset as ds

    table = ds.dataset(OUT / "report" / "daily_revenue", format="parquet", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda r: (str(r["order_date"]), r["region"]))
    print(f"{table.num_rows} rows in {OUT / 'report' / 'daily_revenue'}; the first ones:")
    for row in rows[:6]:
        print(f"  {row['order_date']}  {row['region']:<6} {row['orders']:>5} orders  revenue {row['revenue']:>10}")
    print(
        f"\nFirst attempt: failed after {took1:.1f} s. Resumed attempt: {took2:.1f} s, "
        "skipping the components the first attempt finished (both include Spark start-up)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
