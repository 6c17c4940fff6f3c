"""What saving views costs a run that succeeds: ``python benchmarks/materialize_overhead.py [--runs N]``.

The same checkpointed pipeline runs with ``materialize = auto`` (views a later component reads are saved
as parquet when their producer finishes, and re-pointed at the saved copy) and ``materialize = never``
(nothing saved; a resume in a new process would rerun the producers). Both use ``CheckpointHooks`` on a
``LocalCheckpointStore``; only the policy differs. Two pipelines over 1,000,000 generated orders:

* ``linear``: orders → paid orders with derived columns → join with 50,000 customers → aggregate by day
  and region → write. Each view is read once, so on a successful run the saved copies buy nothing (the
  three large ones are written and read back for no gain): the worst case for saving.
* ``fan-out``: orders and customers → enriched (join) → two aggregations over enriched (daily revenue, a
  ranked customer table) → two writes. With never, Spark computes the join once per consumer; with auto,
  once.

Each pipeline runs with Spark's shuffle partitions tuned for two cores (4) and with Spark's default (200),
both in one invocation (``--shuffle-partitions``).

Method: one process and one SparkContext (``local[2]``), every run in a new SparkSession (its own temp
views, as a new process would have), so JVM start-up (~5-10 s, the same for both policies and noisy)
does not drown the difference. One warm-up run per pipeline (JIT, first-job costs) is discarded, then
auto and never alternate (auto first in even rounds, never first in odd ones) so that drift in machine
load hits both alike. The wall time of ``runner.run()`` is reported: median per policy, their ratio, and
the median of the ratios of the two runs of each round ("paired", the goal's measure: auto ≤ 1.15 ×
never). The deletion of the saved views when the run completes is part of it.
So is the CPU time the Spark JVM used during the run (Linux ``/proc``), which other work on a busy
machine disturbs much less than wall time, and the number of Spark jobs each run started (not disturbed
at all).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import CheckpointHooks, LocalCheckpointStore, PipelineResultStatus, SimplePipelineRunner

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SQL = "airflow_ppf.components.spark.SqlTransform"
WRITE = "airflow_ppf.components.spark.WriteFiles"

ORDERS = """
    SELECT id AS order_id,
           pmod(xxhash64(id, 1), 50000) AS customer_id,
           CAST(pmod(xxhash64(id, 2), 100000) / 100.0 AS DECIMAL(10,2)) AS amount,
           date_add(DATE'2026-01-01', CAST(pmod(xxhash64(id, 3), 365) AS INT)) AS day,
           element_at(array('paid', 'paid', 'paid', 'cancelled', 'refunded'),
                      CAST(pmod(xxhash64(id, 4), 5) AS INT) + 1) AS status,
           concat('note-', CAST(pmod(xxhash64(id, 5), 1000) AS STRING)) AS note
    FROM range({rows})
"""
CUSTOMERS = """
    SELECT id AS customer_id,
           element_at(array('north', 'south', 'east', 'west'), CAST(id % 4 AS INT) + 1) AS region,
           IF(pmod(xxhash64(id), 10) < 2, 'business', 'private') AS segment
    FROM range(50000)
"""


def _sql(name: str, view: str, sql: str, depends_on: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "name": name,
        "class_path": SQL,
        "depends_on": list(depends_on),
        "config": {"sql": sql, "output_view": view},
    }


def _write(name: str, view: str, path: Path, depends_on: Sequence[str]) -> dict[str, Any]:
    return {
        "name": name,
        "class_path": WRITE,
        "depends_on": list(depends_on),
        "config": {"input_view": view, "path": str(path), "format": "parquet", "mode": "overwrite"},
    }


def linear(rows: int, out: Path, policy: str) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "name": "materialize-linear",
            "materialize": policy,
            "components": [
                _sql("orders", "orders", ORDERS.format(rows=rows)),
                _sql(
                    "paid",
                    "paid",
                    """SELECT order_id, customer_id, amount, day, amount * 0.2 AS tax,
                              upper(note) AS note, dayofweek(day) AS weekday
                       FROM orders WHERE status = 'paid'""",
                    ["orders"],
                ),
                _sql("customers", "customers", CUSTOMERS),
                _sql(
                    "enriched",
                    "enriched",
                    """SELECT p.*, c.region, c.segment
                       FROM paid p JOIN customers c ON p.customer_id = c.customer_id""",
                    ["paid", "customers"],
                ),
                _sql(
                    "daily",
                    "daily",
                    """SELECT day, region, COUNT(*) AS orders, SUM(amount) AS revenue, SUM(tax) AS tax,
                              COUNT(DISTINCT customer_id) AS customers
                       FROM enriched GROUP BY day, region""",
                    ["enriched"],
                ),
                _write("write_daily", "daily", out / "daily", ["daily"]),
            ],
        }
    )


def fan_out(rows: int, out: Path, policy: str) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "name": "materialize-fan-out",
            "materialize": policy,
            "components": [
                _sql("orders", "orders", ORDERS.format(rows=rows)),
                _sql("customers", "customers", CUSTOMERS),
                _sql(
                    "enriched",
                    "enriched",
                    """SELECT o.order_id, o.day, o.amount, o.customer_id, c.region, c.segment
                       FROM orders o JOIN customers c ON o.customer_id = c.customer_id
                       WHERE o.status = 'paid'""",
                    ["orders", "customers"],
                ),
                _sql(
                    "daily",
                    "daily",
                    """SELECT day, region, segment, COUNT(*) AS orders, SUM(amount) AS revenue,
                              percentile_approx(amount, 0.5) AS median_amount
                       FROM enriched GROUP BY day, region, segment""",
                    ["enriched"],
                ),
                _sql(
                    "ranked",
                    "ranked",
                    """SELECT customer_id, region, SUM(amount) AS total, COUNT(*) AS orders,
                              RANK() OVER (PARTITION BY region ORDER BY SUM(amount) DESC) AS rank
                       FROM enriched GROUP BY customer_id, region""",
                    ["enriched"],
                ),
                _write("write_daily", "daily", out / "daily", ["daily"]),
                _write("write_ranked", "ranked", out / "ranked", ["ranked"]),
            ],
        }
    )


PIPELINES = {"linear": linear, "fan-out": fan_out}


def jvm_cpu_seconds(spark: SparkSession) -> Callable[[], float]:
    """Return a function giving the CPU seconds the driver JVM has used so far (NaN where unknown)."""
    try:
        jvm: Any = spark._jvm
        pid = int(jvm.java.lang.ProcessHandle.current().pid())
        ticks = os.sysconf("SC_CLK_TCK")
    except Exception:
        return lambda: float("nan")

    def used() -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    return used


def last_job_id(spark: SparkSession) -> int:
    """The id of the latest Spark job of the SparkContext (ids count up from 0; -1 before the first)."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None) or [-1])


@dataclass
class Run:
    """One run's measurements."""

    seconds: float
    cpu_seconds: float
    jobs: int
    saved: list[str]
    saved_bytes: int


def run_once(
    spark: SparkSession, cpu: Callable[[], float], build: Any, rows: int, policy: str, partitions: int, folder: Path
) -> Run:
    """One successful checkpointed run in a new session."""
    config = build(rows, folder / "out", policy)
    store = LocalCheckpointStore(folder / "checkpoints")
    hooks = CheckpointHooks(store, "run")
    session = spark.newSession()
    session.conf.set("spark.sql.shuffle.partitions", str(partitions))
    runner = SimplePipelineRunner(config, hooks=hooks, spark=session)
    started, cpu_before, jobs_before = time.monotonic(), cpu(), last_job_id(spark)
    result = runner.run()
    seconds, cpu_seconds = time.monotonic() - started, cpu() - cpu_before
    jobs = last_job_id(spark) - jobs_before
    if result.status is not PipelineResultStatus.SUCCESS:
        raise SystemExit(f"run failed: {result.to_dict()}")
    state = store.load("run", config.name)
    assert state is not None
    saved = [o for r in state.components.values() for o in r.outputs if o.get("path")]
    views = [str(o["view"]) for o in saved]
    return Run(seconds, cpu_seconds, jobs, views, sum(int(o.get("bytes") or 0) for o in saved))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated orders (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per policy and configuration (default 5)")
    parser.add_argument("--pipelines", nargs="*", default=list(PIPELINES), choices=list(PIPELINES))
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        nargs="+",
        default=[4, 200],
        help="spark.sql.shuffle.partitions, one configuration each (default: 4, tuned for 2 cores, and 200, "
        "Spark's own default)",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("materialize-overhead")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    cpu = jvm_cpu_seconds(spark)
    load_before = _load()
    results: dict[tuple[str, int], dict[str, list[Run]]] = {}
    with tempfile.TemporaryDirectory(prefix="ppf-materialize-bench-") as tmp:
        base = Path(tmp)
        count = 0
        for partitions in args.shuffle_partitions:
            for name in args.pipelines:
                build = PIPELINES[name]
                runs: dict[str, list[Run]] = {"auto": [], "never": []}
                print(f"{name}, {partitions} shuffle partitions: warm-up…", flush=True)
                run_once(spark, cpu, build, args.rows, "auto", partitions, base / f"{name}-{partitions}-warm-up")
                for i in range(args.runs):
                    for policy in ("auto", "never") if i % 2 == 0 else ("never", "auto"):
                        count += 1
                        run = run_once(spark, cpu, build, args.rows, policy, partitions, base / f"{count}")
                        runs[policy].append(run)
                        print(
                            f"  {name} {policy:<5} run {i + 1}: {run.seconds:.2f} s, JVM CPU {run.cpu_seconds:.2f} s, "
                            f"{run.jobs} Spark jobs, saved {', '.join(run.saved) or 'nothing'}",
                            flush=True,
                        )
                results[(name, partitions)] = runs
    spark.stop()

    print(
        f"\nMaterialize overhead: {args.rows:,} orders, local[2], {args.runs} runs per policy and configuration "
        f"(interleaved), medians; load average {load_before} at the start, {_load()} at the end (1/5/15 min) "
        f"on {os.cpu_count()} CPUs\n"
    )
    header = (
        f"{'pipeline':9}{'shuffle':>8}{'never':>8}{'auto':>8}{'ratio':>7}{'paired':>8}  {'goal':7}{'CPU never':>10}"
        f"{'CPU auto':>9}{'ratio':>7}{'paired':>8}{'jobs':>8}  saved by auto"
    )
    print(header)
    print("-" * (len(header) + 20))
    for (name, partitions), runs in results.items():
        wall = {p: statistics.median(r.seconds for r in runs[p]) for p in runs}
        used = {p: statistics.median(r.cpu_seconds for r in runs[p]) for p in runs}
        jobs = {p: statistics.median(r.jobs for r in runs[p]) for p in runs}
        ratio, cpu_ratio = wall["auto"] / wall["never"], used["auto"] / used["never"]
        # The two runs of a round ran back to back: the median of their ratios cancels slow drifts of load.
        pairs = list(zip(runs["auto"], runs["never"], strict=True))
        paired = statistics.median(a.seconds / n.seconds for a, n in pairs)
        cpu_paired = statistics.median(a.cpu_seconds / n.cpu_seconds for a, n in pairs)
        last = runs["auto"][-1]
        saved = f"{len(last.saved)} ({', '.join(last.saved) or '-'}), {last.saved_bytes / 1e6:.0f} MB"
        print(
            f"{name:9}{partitions:>8}{wall['never']:>7.1f}s{wall['auto']:>7.1f}s{ratio:>7.2f}{paired:>8.2f}  "
            f"{_goal(paired):7}{used['never']:>9.1f}s{used['auto']:>8.1f}s{cpu_ratio:>7.2f}{cpu_paired:>8.2f}"
            f"{jobs['never']:>4.0f}/{jobs['auto']:<3.0f}  {saved}"
        )
    print("\nruns (wall s / JVM CPU s):")
    for (name, partitions), runs in results.items():
        for policy in ("never", "auto"):
            samples = "  ".join(f"{r.seconds:.1f}/{r.cpu_seconds:.1f}" for r in runs[policy])
            print(f"  {name:9}{partitions:>4} {policy:6}{samples}")
    return 0


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def _goal(ratio: float) -> str:
    return "met" if ratio <= 1.15 else "missed"


if __name__ == "__main__":
    sys.exit(main())
