"""Per-component checkpoint cost through Airflow's task state store: ``python benchmarks/task_state_overhead.py``.

The DAG of ``benchmarks/task_state_dags/`` runs one pipeline of 40 components that do nothing through
``PipelineOperator`` three times in a row, once per checkpoint store (see that file): an in-memory store (no
round trip to Airflow), the task state store as the operator uses it, and the task state store written
the way format 1 did (a read for fencing and a rewrite of the whole checkpoint per save: the cost before
issue 13). Each task reports the time its store's saves took, their number and the round trips to
Airflow's API they made. Two ways of running Airflow, each in one invocation:

* ``dag-test``: ``dag.test()`` in this process (the execution API in-process);
* ``api-server``: a real api-server, scheduler and dag-processor on loopback (LocalExecutor, SQLite; the
  harness of ``tests/e2e``), the task in its own process talking to the execution API over HTTP.

Reported per variant: median over the rounds of the saves' time per component (everything the store did
in the run, over the number of components), round trips per component, and the task's execute time.
Round trips are not disturbed by other work on the machine; times are (the load average is printed).
Goal: ≤ 10 ms per component through the task state store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAGS = Path(__file__).resolve().parent / "task_state_dags"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DAG_ID = "ppf_task_state_bench"
VARIANTS = ("in_memory", "task_state", "task_state_format1")
LABELS = {
    "in_memory": "in-memory store (no Airflow round trip)",
    "task_state": "task state store (format 2: this version)",
    "task_state_format1": "task state store, saved as format 1 did",
}


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def run_dag_test(rounds: int, root: Path) -> list[dict[str, Any]]:
    """``dag.test()`` the benchmark DAG ``rounds`` times in a fresh AIRFLOW_HOME; return each task's report."""
    home = root / "dag-test-home"
    dags = shutil.copytree(DAGS, root / "dag-test-dags")
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    home.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL, env=os.environ.copy()
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("ppf_task_state_bench_dag", dags / "task_state_bench.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    reports: list[dict[str, Any]] = []
    for round_ in range(rounds + 1):  # the first round warms up (imports, DB caches) and is not counted
        dag_run = module.dag.test()
        with create_session() as session:
            for variant in VARIANTS:
                row = session.scalars(
                    XComModel.get_many(run_id=dag_run.run_id, key="return_value", dag_ids=DAG_ID, task_ids=variant)
                ).first()
                if row is None:
                    raise SystemExit(f"dag.test(): task {variant} returned nothing (state {dag_run.state})")
                if round_:
                    reports.append({**XComModel.deserialize_value(row)["bench"], "mode": "dag-test"})
        print(f"  dag-test round {round_ or 'warm-up'} done (load {_load()})", flush=True)
    return reports


def run_api_server(rounds: int, root: Path) -> list[dict[str, Any]]:
    """Trigger the benchmark DAG ``rounds`` times on a real Airflow stack; return each task's report."""
    from tests.e2e.harness import AirflowStack, copy_dags

    dags = copy_dags(root / "stack-dags", DAGS)
    stack = AirflowStack(root / "stack", dags_folder=dags, name="airflow-task-state-bench")
    reports: list[dict[str, Any]] = []
    try:
        print("  starting Airflow (api-server, scheduler, dag-processor) …", flush=True)
        stack.start()
        stack.client.wait_for_dag(DAG_ID)
        for round_ in range(rounds + 1):
            run_id = stack.client.trigger(DAG_ID)
            state = stack.client.wait_for_run(DAG_ID, run_id)
            if state != "success":
                raise SystemExit(f"run {run_id} ended {state}\n{stack.client.run_report(DAG_ID, run_id)}")
            if round_:
                for variant in VARIANTS:
                    report = stack.client.xcom(DAG_ID, run_id, variant)
                    reports.append({**report["bench"], "mode": "api-server"})
            print(f"  api-server round {round_ or 'warm-up'} done (load {_load()})", flush=True)
    finally:
        killed = stack.stop()
        if killed:
            print(f"  needed SIGKILL: {killed}", file=sys.stderr)
    return reports


def print_table(reports: list[dict[str, Any]], rounds: int) -> None:
    print(f"\nCheckpoint cost through the task state store: 40 components that do nothing, {rounds} round(s), medians")
    print(f"load average at the end: {_load()} (1 / 5 / 15 min) on {os.cpu_count()} CPUs\n")
    header = f"{'mode':<11}{'store':<44}{'saves / comp.':>15}{'round trips / comp.':>21}{'task execute':>14}"
    print(header)
    print("-" * len(header))
    for mode in ("dag-test", "api-server"):
        rows = [r for r in reports if r["mode"] == mode]
        if not rows:
            continue
        for variant in VARIANTS:
            mine = [r for r in rows if r["variant"] == variant]
            per_comp = statistics.median(r["save_s"] / r["components"] for r in mine) * 1000
            trips = statistics.median(r["round_trips"] / r["components"] for r in mine)
            execute = statistics.median(r["execute_s"] for r in mine)
            goal = ""
            if variant == "task_state":
                goal = "  goal ≤ 10 ms: " + ("met" if per_comp <= 10 else "missed")
            print(f"{mode:<11}{LABELS[variant]:<44}{per_comp:>11.1f} ms{trips:>21.2f}{execute:>12.2f} s{goal}")
        print(
            "           samples (ms / component, task state store): "
            + ", ".join(f"{r['save_s'] / r['components'] * 1000:.1f}" for r in rows if r["variant"] == "task_state")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="measured DAG runs per mode (default 5)")
    parser.add_argument("--modes", default="dag-test,api-server", help="dag-test, api-server or both (default)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (Airflow homes, logs)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    root = Path(tempfile.mkdtemp(prefix="ppf-task-state-bench-"))
    reports: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        # The real stack first: dag-test sets this process's AIRFLOW_HOME, which the stack must not inherit.
        if "api-server" in modes:
            reports += run_api_server(args.rounds, root)
        if "dag-test" in modes:
            reports += run_dag_test(args.rounds, root)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(reports, args.rounds)
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
