"""Helpers of the resume tests: a small orders pipeline as HOCON, its data, ``ppf run`` in a new process,
and ways to look at what a run left behind (checkpoint, saved-view folders, output rows).

Each attempt of a cross-process test runs ``python -m airflow_ppf run`` in its own ``python`` process, as a
user (or an Airflow retry on another worker) would: temp views of the previous attempt are gone, and
whatever the resumed attempt needs must come back from the saved copies.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ppf.checkpoint.naming import safe_file_name
from airflow_ppf.checkpoint.saved_views import COMMIT_MARKER
from airflow_ppf.checkpoint.state import AttemptRecord, CheckpointState
from airflow_ppf.components import DataFlow
from airflow_ppf.runner.checkpoint import LocalCheckpointStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROOT = Path(__file__).resolve().parents[2]

#: Set to 1 in the first attempt: the fault right before the write fails (it is not part of the fingerprint).
FAIL_ENV = "PPF_TEST_FAIL_BEFORE_WRITE"

ORDERS_SCHEMA = "order_id BIGINT, customer STRING, amount DECIMAL(10,2), status STRING, day DATE"

# The Spark block of every test pipeline: a quick single-core local session (as in tests/conftest.py).
SPARK_BLOCK = """
spark {
  app_name = "ppf-resume-tests"
  master = "local[1]"
  log_level = ERROR
  spark_conf {
    "spark.ui.enabled" = "false"
    "spark.ui.showConsoleProgress" = "false"
    "spark.sql.shuffle.partitions" = "2"
    "spark.default.parallelism" = "1"
    "spark.driver.extraJavaOptions" = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    "spark.sql.session.timeZone" = "UTC"
  }
}
"""


def write_orders(path: Path, rows: int = 3000, seed: int = 7) -> Path:
    """Write a deterministic orders CSV (with some empty amounts and awkward customer names)."""
    rng = random.Random(seed)
    customers = [f"cust_{i:03d}" for i in range(40)] + ['o"brien, ltd', "zoë"]
    statuses = ["paid"] * 6 + ["cancelled", "refunded"]
    lines = ["order_id,customer,amount,status,day"]
    for order_id in range(1, rows + 1):
        customer = rng.choice(customers)
        amount = "" if rng.random() < 0.02 else f"{rng.uniform(0.5, 500):.2f}"
        day = f"2026-10-{rng.randint(1, 28):02d}"
        quoted = '"' + customer.replace('"', '""') + '"'
        lines.append(f"{order_id},{quoted},{amount},{rng.choice(statuses)},{day}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _q(text: str | Path) -> str:
    return json.dumps(str(text))


def orders_pipeline(
    source: Path,
    target: Path,
    *,
    name: str = "orders-resume",
    materialize: str | None = None,
    component_materialize: Mapping[str, str] | None = None,
    spark: str = SPARK_BLOCK,
) -> str:
    """The pipeline of the cross-process tests, as HOCON text (``spark``: its Spark block).

    ``read_orders`` (csv) → ``paid_orders`` (SQL) → ``totals`` (SQL, also after ``order_stats``) →
    ``check_before_write`` (fails when :data:`FAIL_ENV` is set) → ``write_totals`` (parquet).
    ``order_stats`` (SQL on ``orders``) produces a view nobody reads; it runs before ``totals`` so that
    a SQL component with inferred inputs is downstream of it.
    """
    per = dict(component_materialize or {})

    def extra(component: str) -> str:
        return f"    materialize = {per[component]}\n" if component in per else ""

    top = f"materialize = {materialize}\n" if materialize else ""
    return f"""
name = {_q(name)}
version = "1.0.0"
{top}{spark}
components = [
  {{
    name = read_orders
    component_type = source
    class_path = "airflow_ppf.components.spark.ReadFiles"
{extra("read_orders")}    config {{
      path = {_q(source)}
      format = csv
      options {{ header = true }}
      schema = {_q(ORDERS_SCHEMA)}
      output_view = orders
    }}
  }}
  {{
    name = paid_orders
    class_path = "airflow_ppf.components.spark.SqlTransform"
    depends_on = [read_orders]
{extra("paid_orders")}    config {{
      sql = "SELECT order_id, customer, amount, day FROM orders WHERE status = 'paid' AND amount IS NOT NULL"
      output_view = paid
    }}
  }}
  {{
    name = order_stats
    class_path = "airflow_ppf.components.spark.SqlTransform"
    depends_on = [read_orders]
{extra("order_stats")}    config {{
      sql = "SELECT status, COUNT(*) AS orders FROM orders GROUP BY status"
      output_view = order_stats
    }}
  }}
  {{
    name = totals
    class_path = "airflow_ppf.components.spark.SqlTransform"
    depends_on = [paid_orders, order_stats]
{extra("totals")}    config {{
      sql = \"\"\"
        SELECT customer, day, CAST(SUM(amount) AS DECIMAL(16,2)) AS revenue, COUNT(*) AS orders,
               MAX(order_id) AS last_order
        FROM paid
        GROUP BY customer, day
      \"\"\"
      output_view = totals
    }}
  }}
  {{
    name = check_before_write
    class_path = "airflow_ppf.components.faults.FaultInjection"
    depends_on = [totals]
    config {{ fail_if_env = {FAIL_ENV}, message = "injected failure before the write" }}
  }}
  {{
    name = write_totals
    component_type = sink
    class_path = "airflow_ppf.components.spark.WriteFiles"
    depends_on = [check_before_write]
    config {{
      input_view = totals
      path = {_q(target)}
      format = parquet
      mode = overwrite
    }}
  }}
]
"""


#: Component names of :func:`orders_pipeline`, in execution order.
ORDERS_COMPONENTS = ["read_orders", "paid_orders", "order_stats", "totals", "check_before_write", "write_totals"]
#: What each component of :func:`orders_pipeline` produces.
ORDERS_VIEWS = {"read_orders": "orders", "paid_orders": "paid", "order_stats": "order_stats", "totals": "totals"}


@dataclass
class PpfRun:
    """One ``ppf run`` in a new process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\n--- exit {self.returncode}; stdout:\n{self.stdout}\n--- stderr:\n{self.stderr}"
        )


def ppf(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> PpfRun:
    """Run ``python -m airflow_ppf ARGS`` in a new process and capture what it prints."""
    full_env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    full_env.pop(FAIL_ENV, None)
    full_env.update(env or {})
    command = [sys.executable, "-m", "airflow_ppf", *args]
    done = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return PpfRun(command, done.returncode, done.stdout, done.stderr)


def run_attempt(
    config: Path, run_id: str, checkpoints: Path, *, resume: bool, fail: bool = False, cwd: Path | None = None
) -> PpfRun:
    """One attempt of ``config`` under ``ppf run`` (``fail`` sets :data:`FAIL_ENV`)."""
    args = ["run", str(config), "--run-id", run_id, "--checkpoint-dir", str(checkpoints), "--json"]
    if resume:
        args.append("--resume")
    return ppf(*args, cwd=cwd or checkpoints.parent, env={FAIL_ENV: "1"} if fail else None)


def result_json(run: PpfRun) -> dict[str, Any]:
    """The ``--json`` result document a ``ppf run`` printed (after its plan and banner lines)."""
    start = run.stdout.find("\n{")
    text = run.stdout[start + 1 :] if start >= 0 else run.stdout
    end = text.rfind("\n}")
    doc: dict[str, Any] = json.loads(text[: end + 2])
    return doc


def statuses(run: PpfRun) -> dict[str, str]:
    """``{component: status}`` of a ``ppf run --json``."""
    return {c["name"]: c["status"] for c in result_json(run)["components"]}


def load_state(checkpoints: Path, run_id: str, pipeline: str = "orders-resume") -> CheckpointState:
    state = LocalCheckpointStore(checkpoints).load(run_id, pipeline)
    assert state is not None, f"no checkpoint of {run_id!r} in {checkpoints}"
    return state


def attempt(state: CheckpointState | None, number: int) -> AttemptRecord:
    assert state is not None, "no checkpoint"
    return next(a for a in state.attempts if a.attempt == number)


def events(record: AttemptRecord, kind: str) -> list[dict[str, Any]]:
    return [e for e in record.events if e.get("event") == kind]


def run_root(data_location: Path, pipeline: str, run_id: str) -> Path:
    """Where the saved views of one run live."""
    return data_location / safe_file_name(pipeline) / safe_file_name(run_id)


def saved_copies(
    data_location: Path, pipeline: str, run_id: str, components: Sequence[str], *, committed_only: bool = False
) -> dict[str, list[Path]]:
    """``{"component/view": [copy folders]}`` of one run (component and view names given in ``components``
    as ``component/view`` or plain component names whose folders are listed whatever their views)."""
    root = run_root(data_location, pipeline, run_id)
    names = {safe_file_name(c): c for c in components}
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for component_dir in sorted(root.iterdir()):
        component = names.get(component_dir.name, component_dir.name)
        for view_dir in sorted(component_dir.iterdir()):
            view = view_dir.name.rsplit("-", 1)[0]
            copies = [c for c in sorted(view_dir.iterdir()) if not committed_only or (c / COMMIT_MARKER).exists()]
            if copies:
                found[f"{component}/{view}"] = copies
    return found


def part_files(folder: Path) -> list[Path]:
    """The parquet data files of a saved copy or an output folder."""
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file())


def read_output(spark: SparkSession, path: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """The schema (as a DDL-ish string) and the sorted rows of a parquet output."""
    frame = spark.read.parquet(str(path))
    rows = sorted((tuple(r) for r in frame.collect()), key=lambda r: tuple(str(v) for v in r))
    return frame.schema.simpleString(), rows


# -- in-process attempts -------------------------------------------------------------------------------


def component(name: str, class_path: str, *, depends_on: Sequence[str] = (), **config: Any) -> dict[str, Any]:
    """A component entry of a dict config (``materialize`` goes to the entry, the rest to ``config``)."""
    entry: dict[str, Any] = {"name": name, "class_path": class_path, "depends_on": list(depends_on)}
    if "materialize" in config:
        entry["materialize"] = config.pop("materialize")
    entry["config"] = config
    return entry


def read_csv(name: str, source: Path, view: str = "orders", **extra: Any) -> dict[str, Any]:
    return component(
        name,
        "airflow_ppf.components.spark.ReadFiles",
        path=str(source),
        format="csv",
        options={"header": True},
        schema=ORDERS_SCHEMA,
        output_view=view,
        **extra,
    )


def sql(name: str, query: str, view: str, *, depends_on: Sequence[str], **extra: Any) -> dict[str, Any]:
    return component(
        name, "airflow_ppf.components.spark.SqlTransform", depends_on=depends_on, sql=query, output_view=view, **extra
    )


def fault(name: str, *, depends_on: Sequence[str]) -> dict[str, Any]:
    return component(name, "airflow_ppf.components.faults.FaultInjection", depends_on=depends_on, fail_if_env=FAIL_ENV)


def write_parquet(name: str, view: str, target: Path, *, depends_on: Sequence[str]) -> dict[str, Any]:
    return component(
        name,
        "airflow_ppf.components.spark.WriteFiles",
        depends_on=depends_on,
        input_view=view,
        path=str(target),
        format="parquet",
        mode="overwrite",
    )


def custom(name: str, cls: type, *, depends_on: Sequence[str] = (), **config: Any) -> dict[str, Any]:
    return component(name, f"{cls.__module__}.{cls.__qualname__}", depends_on=depends_on, **config)


# -- custom components that declare no views (the runner watches the session catalog) ---------------------


class LoadOrders(DataFlow):
    """Read the orders CSV into the view ``orders`` (declares nothing)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def run(self) -> None:
        frame = self.spark.read.option("header", True).schema(ORDERS_SCHEMA).csv(self.path)
        frame.createOrReplaceTempView("orders")


class DropCancelledInPlace(DataFlow):
    """Replace the view ``orders`` by its non-cancelled rows (a view replaced, not created)."""

    def run(self) -> None:
        self.spark.table("orders").where("status <> 'cancelled'").createOrReplaceTempView("orders")


class SummarizeOrders(DataFlow):
    """``orders`` → view ``summary`` (one row per customer and status)."""

    def run(self) -> None:
        self.spark.sql(
            "SELECT customer, status, COUNT(*) AS orders, CAST(SUM(amount) AS DECIMAL(16,2)) AS amount "
            "FROM orders GROUP BY customer, status"
        ).createOrReplaceTempView("summary")


class JoinSegments(DataFlow):
    """``orders`` joined with a segment table into the view ``joined``, which has two ``customer``
    columns: Spark can register such a view but not write it as parquet."""

    def run(self) -> None:
        spark = self.spark
        segments = spark.sql("SELECT DISTINCT customer, IF(customer < 'cust_020', 'a', 'b') AS segment FROM orders")
        orders = spark.table("orders")
        orders.join(segments, orders["customer"] == segments["customer"]).createOrReplaceTempView("joined")


# -- bit rot: damage inside a saved view's data that keeps every size and footer intact ----------------------


def rot_a_data_page(copy: Path, *, sidecars: bool = True) -> Path:
    """Flip one byte inside a data page of the largest parquet file of a saved view (its size and footer stay
    intact); return that file.

    The commit marker's file checksums are removed first, as a remote file system (or a marker of an
    earlier version) leaves it: the checks before a resume then compare sizes and footers only, pass, and
    the damage is found when a component reads the copy. ``sidecars=False`` also removes Hadoop's ``.crc``
    files (and the marker's record of them), as on a store without them (object stores): then only
    Parquet's page checksums can find the damage.
    """
    part = max(part_files(copy), key=lambda f: f.stat().st_size)
    marker = json.loads((copy / COMMIT_MARKER).read_text(encoding="utf-8"))
    marker.pop("checksums", None)
    if not sidecars:
        for crc in copy.glob(".*.crc"):
            crc.unlink()
        marker["files"] = {n: size for n, size in marker["files"].items() if not n.endswith(".crc")}
    (copy / COMMIT_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0xFF  # a data page, far from the footer
    part.write_bytes(bytes(data))
    return part


class RotSavedCopies(DataFlow):
    """Rot a data page of every committed saved view of ``view`` under ``data_location`` not rotted yet, and
    append a line per run to ``journal``. Declares that it reads ``view``: when a saved view it rotted is
    remade, it is among the components that read the damaged one, runs again, and rots the new one too."""

    def __init__(self, data_location: str, view: str, journal: str) -> None:
        self.data_location = data_location
        self.view = view
        self.journal = journal
        self._rotted: set[Path] = set()

    @property
    def input_views(self) -> tuple[str, ...]:
        return (self.view,)

    @property
    def output_views(self) -> tuple[str, ...]:
        return ()

    def run(self) -> None:
        rotted = []
        for marker in sorted(Path(self.data_location).glob(f"*/*/*/*/*/{COMMIT_MARKER}")):
            if json.loads(marker.read_text(encoding="utf-8")).get("view") != self.view:
                continue
            if marker.parent not in self._rotted:
                self._rotted.add(marker.parent)
                rotted.append(str(rot_a_data_page(marker.parent)))
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rotted) + "\n")
