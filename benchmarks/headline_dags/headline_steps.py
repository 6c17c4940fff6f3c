"""The one pipeline of the headline benchmark, and how each variant runs it.

Six Spark steps over generated data, each reading the previous step's output (``benchmarks/airflow_headline.py``
runs them; the DAG files next to this one wire them up):

1. ``orders``: generate the orders (a SHA-256 token per row, ~1 % duplicates, some bad rows);
2. ``clean_orders``: drop bad rows, normalise the status, keep one row per order (a window);
3. ``enriched``: join with generated customers (region, segment, name);
4. ``customer_months``: revenue and order count per customer and month (an aggregation);
5. ``ranked``: rank customers within each region and month (a window);
6. ``report``: the top 10 per region and month, written as parquet. With ``fail_once`` it fails on the
   task's first try, after its work (a late failure), and succeeds when Airflow retries it.

Both variants use the same SQL (:data:`STEPS`), the same Spark settings (:func:`spark_settings`) and the same
report writer (:func:`write_report`):

* one task: ``PipelineOperator`` with one :class:`HeadlineStep` component per step, handing data over through
  temp views (and, for a retry, the views it saves);
* one task per step: ``@task.pyspark`` (the Spark provider) tasks, each with its own SparkSession, reading the
  previous step's parquet and writing its own (:func:`run_step_on_parquet`).

Timing: every task try logs one ``PPF-BENCH {json}`` line (Spark start-up, Spark work per step) that the
benchmark reads back from the task log through the REST API. Nothing here imports pyspark at module level
(DAG files import it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_ppf.components import DataFlow
from airflow_ppf.runner import NoOpHooks

__all__ = [
    "DEFAULT_PARAMS",
    "MARKER",
    "STEPS",
    "HeadlineStep",
    "Step",
    "StepTimings",
    "mark_task_start",
    "one_task_pipeline",
    "run_dir",
    "run_step_on_parquet",
    "spark_settings",
]

log = logging.getLogger(__name__)

#: Prefix of the timing line every task try logs.
MARKER = "PPF-BENCH"
#: DAG params (the benchmark overrides them per run through the run's conf).
DEFAULT_PARAMS: dict[str, Any] = {"base_dir": "/tmp/ppf-headline", "orders": 20_000, "fail_once": False}
SPARK_MASTER = "local[2]"
#: Spark properties of both variants (the master is :data:`SPARK_MASTER`).
SPARK_CONF: dict[str, str] = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
}
SPARK_LOG_LEVEL = "ERROR"


@dataclass(frozen=True)
class Step:
    """One step: its output is named ``name`` (a temp view, or a parquet folder); it reads ``input``'s."""

    name: str
    input: str | None
    sql: str

    def query(self, orders: int) -> str:
        """The step's SQL for ``orders`` generated orders."""
        return self.sql.format(orders=int(orders), customers=customers_for(int(orders)))


def customers_for(orders: int) -> int:
    """How many customers the generated orders belong to (about 15 orders each)."""
    return max(100, orders // 15)


STEPS: tuple[Step, ...] = (
    Step(
        "orders",
        None,
        """
        SELECT id - IF(id % 97 = 0, 1, 0) AS order_id,
               IF(id % 1009 = 0, NULL, pmod(xxhash64(id, 1), {customers})) AS customer_id,
               CAST((pmod(xxhash64(id, 2), 100000) - 300) / 100.0 AS DECIMAL(10, 2)) AS amount,
               date_add(DATE'2026-01-01', CAST(pmod(xxhash64(id, 3), 365) AS INT)) AS order_date,
               element_at(array('paid', ' PAID', 'paid ', 'Paid', 'refunded', 'cancelled'),
                          CAST(pmod(xxhash64(id, 4), 6) AS INT) + 1) AS status,
               sha2(CAST(id AS STRING), 256) AS token
        FROM range({orders})
        """,
    ),
    Step(
        "clean_orders",
        "orders",
        """
        SELECT order_id, customer_id, amount, order_date, status, token
        FROM (
            SELECT order_id, customer_id, amount, order_date, lower(trim(status)) AS status, token,
                   row_number() OVER (PARTITION BY order_id ORDER BY token) AS copy
            FROM orders
            WHERE customer_id IS NOT NULL AND amount > 0
        )
        WHERE copy = 1 AND status IN ('paid', 'refunded')
        """,
    ),
    Step(
        "enriched",
        "clean_orders",
        """
        WITH customers AS (
            SELECT id AS customer_id,
                   element_at(array('north', 'south', 'east', 'west'), CAST(id % 4 AS INT) + 1) AS region,
                   IF(pmod(xxhash64(id), 10) < 2, 'business', 'private') AS segment,
                   concat('customer-', CAST(id AS STRING)) AS name
            FROM range({customers})
        )
        SELECT o.order_id, o.order_date, trunc(o.order_date, 'MM') AS month,
               IF(o.status = 'refunded', -o.amount, o.amount) AS net_amount, o.token,
               c.customer_id, c.region, c.segment, c.name
        FROM clean_orders o JOIN customers c ON o.customer_id = c.customer_id
        """,
    ),
    Step(
        "customer_months",
        "enriched",
        """
        SELECT customer_id, name, region, segment, month,
               COUNT(*) AS orders, SUM(net_amount) AS revenue, MAX(net_amount) AS largest_order,
               COUNT(DISTINCT token) AS tokens
        FROM enriched
        GROUP BY customer_id, name, region, segment, month
        """,
    ),
    Step(
        "ranked",
        "customer_months",
        """
        SELECT *,
               RANK() OVER (PARTITION BY region, month ORDER BY revenue DESC, customer_id) AS rank,
               SUM(revenue) OVER (PARTITION BY region, month) AS region_revenue
        FROM customer_months
        """,
    ),
    Step(
        "report",
        "ranked",
        """
        SELECT region, month, rank, customer_id, name, segment, orders, revenue, largest_order,
               region_revenue, CAST(revenue / region_revenue AS DECIMAL(12, 8)) AS share
        FROM ranked
        WHERE rank <= 10
        """,
    ),
)
STEP_BY_NAME: dict[str, Step] = {s.name: s for s in STEPS}
LAST = STEPS[-1].name


def spark_settings() -> dict[str, str]:
    """Spark properties of a per-step task (``@task.pyspark``'s ``config_kwargs``): master and :data:`SPARK_CONF`."""
    return {"spark.master": SPARK_MASTER, **SPARK_CONF}


def run_dir(params: Mapping[str, Any], variant: str, dag_run_id: str) -> Path:
    """The folder of one DAG run's outputs."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dag_run_id)
    return Path(str(params["base_dir"])) / variant / safe


def write_report(frame: Any, path: Path, *, fail: bool) -> None:
    """Write the report; with ``fail``, raise afterwards (the late failure a retry recovers from)."""
    frame.write.mode("overwrite").parquet(str(path))
    if fail:
        raise RuntimeError("publishing the report failed (injected: first try only)")


# -- timing --------------------------------------------------------------------------------------------

#: Wall-clock time (``time.time()``) at which the current task's ``pre_execute`` ran, in this process.
_task_started: float | None = None


def mark_task_start(context: Any) -> None:
    """``pre_execute`` callback: remember when the operator's work began (before any Spark start-up)."""
    global _task_started
    _task_started = time.time()


def _emit(record: Mapping[str, Any]) -> None:
    log.info("%s %s", MARKER, json.dumps(dict(record), sort_keys=True))


# -- variant (b): one task per step -------------------------------------------------------------------


def run_step_on_parquet(spark: Any, step_name: str, previous: str | None, context: Mapping[str, Any]) -> str:
    """Run one step in its own task: read the previous step's parquet, write this step's; return its path.

    Called by a ``@task.pyspark`` task once the provider has built the session; logs the timing line.
    """
    entered = time.time()
    step = STEP_BY_NAME[step_name]
    params = context["params"]
    try_number = int(context["ti"].try_number)
    spark.sparkContext.setLogLevel(SPARK_LOG_LEVEL)
    out = run_dir(params, "per_step", str(context["run_id"])) / step.name
    failed = None
    try:
        if step.input is not None:
            if previous is None:
                raise ValueError(f"step {step.name!r} needs the output of {step.input!r}")
            spark.read.parquet(previous).createOrReplaceTempView(step.input)
        frame = spark.sql(step.query(params["orders"]))
        if step.name == LAST:
            write_report(frame, out, fail=bool(params["fail_once"]) and try_number == 1)
        else:
            frame.write.mode("overwrite").parquet(str(out))
    except Exception:
        failed = step.name
        raise
    finally:
        done = time.time()
        _emit(
            {
                "variant": "per_step",
                "task": step.name,
                "try": try_number,
                "started": _task_started,
                "spark_start": None if _task_started is None else entered - _task_started,
                "work": {step.name: done - entered},
                "failed": failed,
            }
        )
    return str(out)


# -- variant (a): one PipelineOperator task -----------------------------------------------------------


class HeadlineStep(DataFlow):
    """One step as a component: registers its result as a temp view (the last one writes the report).

    Config: ``{"step": "<name>"}``. The data size and the output folder come from the DAG run's params.
    """

    def __init__(self, step: str) -> None:
        if step not in STEP_BY_NAME:
            raise ValueError(f"unknown step {step!r}; known: {', '.join(STEP_BY_NAME)}")
        self.step = STEP_BY_NAME[step]
        # Re-running a step only registers its view again, except for the report, which writes files.
        self.recomputable = step != LAST

    @property
    def input_views(self) -> Sequence[str]:
        return () if self.step.input is None else (self.step.input,)

    @property
    def output_views(self) -> Sequence[str]:
        return () if self.step.name == LAST else (self.step.name,)

    def run(self) -> None:
        params = self.context["params"]
        frame = self.spark.sql(self.step.query(params["orders"]))
        if self.step.name != LAST:
            frame.createOrReplaceTempView(self.step.name)
            return
        out = run_dir(params, "one_task", str(self.context["dag_run_id"])) / self.step.name
        write_report(frame, out, fail=bool(params["fail_once"]) and int(self.context["try_number"]) == 1)


class StepTimings(NoOpHooks):
    """Log the timing line of a PipelineOperator try: each component's time (the runner's clock, which
    includes saving its views for a retry) and the time before the first component (``prepare``: loading
    the checkpoint, planning, restoring saved views)."""

    def __init__(self) -> None:
        self._work: dict[str, float] = {}
        self._prepare: float | None = None
        self._session_before_run = False
        self._component_started = 0.0
        self._failed: str | None = None

    def before_pipeline(self, config: Any) -> None:
        from pyspark.sql import SparkSession

        self._work, self._failed = {}, None  # one instance may see several tries (dag.test() in one process)
        if _task_started is not None:
            self._prepare = time.time() - _task_started
        # Started already only when a resume restored saved views (otherwise at the first component).
        self._session_before_run = SparkSession.getActiveSession() is not None

    def before_component(self, config: Any, index: int, total: int) -> None:
        self._component_started = time.monotonic()

    def after_component(self, config: Any, index: int, total: int, duration_ms: int) -> None:
        self._work[config.name] = duration_ms / 1000

    def on_component_failure(self, config: Any, index: int, error: BaseException) -> None:
        self._work[config.name] = time.monotonic() - self._component_started
        self._failed = config.name

    def after_pipeline(self, config: Any, result: Any) -> None:
        _emit(
            {
                "variant": "one_task",
                "task": "pipeline",
                "started": _task_started,
                "prepare": self._prepare,
                "session_started_in_prepare": self._session_before_run,
                "work": self._work,
                "failed": self._failed,
            }
        )


def one_task_pipeline() -> dict[str, Any]:
    """The pipeline config of the one-task variant: one :class:`HeadlineStep` per step, in order."""
    return {
        "name": "headline",
        "spark": {"master": SPARK_MASTER, "log_level": SPARK_LOG_LEVEL, "spark_conf": dict(SPARK_CONF)},
        "components": [
            {
                "name": step.name,
                "class_path": f"{__name__}.HeadlineStep",
                "depends_on": [] if step.input is None else [step.input],
                "config": {"step": step.name},
            }
            for step in STEPS
        ],
    }
